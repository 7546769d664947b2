package version

import (
	"runtime/debug"
	"testing"
)

func TestCommitOf(t *testing.T) {
	cases := []struct {
		name     string
		version  string
		settings map[string]string
		want     string
	}{
		{"vcs stamp", "(devel)", map[string]string{"vcs.revision": "0123456789abcdef0123456789abcdef01234567"}, "0123456789abcdef0123456789abcdef01234567"},
		{"dirty tree", "(devel)", map[string]string{"vcs.revision": "0123456789abcdef", "vcs.modified": "true"}, "0123456789abcdef-dirty"},
		{"clean tree", "(devel)", map[string]string{"vcs.revision": "0123456789abcdef", "vcs.modified": "false"}, "0123456789abcdef"},
		{"pseudo-version", "v0.0.0-20260102150405-abcdef123456", nil, "abcdef123456"},
		{"pseudo-version after a tag", "v1.2.4-0.20260102150405-abcdef123456+dirty", nil, "abcdef123456"},
		{"tag", "v1.2.3", nil, ""},
		{"prerelease tag", "v1.2.3-rc.1", nil, ""},
		{"nothing", "(devel)", nil, ""},
	}
	for _, c := range cases {
		bi := &debug.BuildInfo{Main: debug.Module{Version: c.version}}
		for k, v := range c.settings {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
		}
		if got := commitOf(bi); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestLinkTimeValuesWin(t *testing.T) {
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "v9.9.9", "feedface"
	if got, want := Full(), "v9.9.9 (commit feedface)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
