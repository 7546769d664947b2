// Package golden compares test output with golden files, and rewrites
// them when the tests run with -update; it also finds the committed files
// tests and fuzz seeds read. Only tests import it.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Update reports whether the tests run with -update.
func Update() bool { return *update }

// File compares got with the file at path, or writes got there with
// -update.
func File(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Glob returns the files matching pattern, and fails tb on a bad pattern
// or when none match: a test over committed files must not pass by
// finding nothing.
func Glob(tb testing.TB, pattern string) []string {
	tb.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil {
		tb.Fatalf("glob %q: %v", pattern, err)
	}
	if len(paths) == 0 {
		tb.Fatalf("no file matches %q", pattern)
	}
	return paths
}

// Seed adds the files matching pattern (Glob) to f's seed corpus, and
// returns their contents.
func Seed(f *testing.F, pattern string) [][]byte {
	f.Helper()
	var out [][]byte
	for _, p := range Glob(f, pattern) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		out = append(out, b)
	}
	return out
}
