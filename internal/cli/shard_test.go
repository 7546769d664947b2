package cli

import (
	"os"
	"strings"
	"testing"
)

// TestShardFlag: shards are numbered from 0; auto/N reads the index of a
// Kubernetes Indexed Job's pod; anything else is a usage error.
func TestShardFlag(t *testing.T) {
	cases := []struct {
		flag, env string // env "-" leaves JOB_COMPLETION_INDEX unset
		want      string // the shard, or the error's text
		ok        bool
	}{
		{"0/2", "-", "0/2", true},
		{"1/2", "-", "1/2", true},
		{"2/2", "-", "0 <= i < N", false},
		{"1/2/3", "-", "use i/N", false},
		{"-1/2", "-", "use i/N", false},
		{"1/0", "-", "use i/N", false},
		{"x/2", "-", "use i/N", false},
		{"auto/4", "3", "3/4", true},
		{"auto/4", "0", "0/4", true},
		{"auto/4", "4", "JOB_COMPLETION_INDEX=\"4\"", false},
		{"auto/4", "", "JOB_COMPLETION_INDEX=\"\"", false},
		{"auto/4", "-", "JOB_COMPLETION_INDEX is not set", false},
		{"auto/x", "1", "use i/N", false},
	}
	for _, c := range cases {
		if c.env == "-" {
			t.Setenv("JOB_COMPLETION_INDEX", "")
			unsetenv(t, "JOB_COMPLETION_INDEX")
		} else {
			t.Setenv("JOB_COMPLETION_INDEX", c.env)
		}
		sh, err := parseShard(c.flag)
		switch {
		case c.ok && err != nil:
			t.Errorf("--shard %s (index %q): %v", c.flag, c.env, err)
		case c.ok && sh.String() != c.want:
			t.Errorf("--shard %s (index %q): got %s, want %s", c.flag, c.env, sh, c.want)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("--shard %s (index %q): got %v, want an error with %q", c.flag, c.env, err, c.want)
		}
	}
	// On the command line, a bad shard is a usage error (exit 2).
	unsetenv(t, "JOB_COMPLETION_INDEX")
	for _, bad := range []string{"1/2/3", "2/2", "auto/4"} {
		_, stderr, code := run(t, "ramp", sampleTape, "--target", "http://127.0.0.1:1", "--shard", bad)
		if code != ExitUsage || !strings.Contains(stderr, "--shard") {
			t.Errorf("herd ramp --shard %s: exit %d, want %d\n%s", bad, code, ExitUsage, stderr)
		}
	}
}

// unsetenv removes a variable for the rest of the test (t.Setenv first, so
// that it is restored).
func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}
