package cli

import (
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/version"
)

// TestVersion: herd version and herd --version print one line with the
// version and the commit, the link-time values when set.
func TestVersion(t *testing.T) {
	defer func(v, c string) { version.Version, version.Commit = v, c }(version.Version, version.Commit)
	version.Version, version.Commit = "v1.2.3", "0123456789abcdef0123456789abcdef01234567"
	a, _, code := run(t, "version")
	b, _, code2 := run(t, "--version")
	want := "herd v1.2.3 (commit 0123456789abcdef0123456789abcdef01234567) (tape format"
	if code != 0 || code2 != 0 || !strings.HasPrefix(a, want) || a != b || strings.Count(a, "\n") != 1 {
		t.Errorf("herd version: %q (exit %d); herd --version: %q (exit %d); want one line starting %q", a, code, b, code2, want)
	}
}
