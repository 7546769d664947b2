// Package testenv says whether a test has what it needs from outside the
// repository: the shared captures and imports beside the checkout, root
// for live capture. Outside CI a test without them is skipped; under CI=true, which
// always has them, it fails. Only tests import it.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedPcaps returns the shared captures' directory, shared/testdata/pcaps
// beside the checkout (the directory holding go.mod).
func SharedPcaps(t testing.TB) string {
	t.Helper()
	return shared(t, "pcaps")
}

// SharedImports returns the directory of the shared files of other tools
// (.gor, HAR, access logs), shared/testdata/imports beside the checkout.
func SharedImports(t testing.TB) string {
	t.Helper()
	return shared(t, "imports")
}

func shared(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// A test runs in its package's directory, somewhere below go.mod.
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the test's directory")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "testdata", name)
	if _, err := os.Stat(d); err != nil {
		missing(t, "the shared test files are missing: "+err.Error())
	}
	return d
}

// NeedRoot is for a test that opens AF_PACKET sockets: those need root,
// and CI runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "live capture (AF_PACKET) needs root; run the tests as root to include it")
	}
}

// missing skips the test, or fails it under CI, which has everything.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI must have it)", why)
	}
	t.Skip(why)
}
