package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportCompareHTML: --html writes the comparison page beside the
// text (exit 3 on a regression all the same), --html - writes it in place
// of the text; an existing file is replaced only with --force, an input
// never.
func TestReportCompareHTML(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "compare.html")
	stdout, stderr, code := run(t, "report", "compare", fixedResults, demoResults, "--html", page)
	if code != ExitRequirement || !strings.Contains(stdout, "regressions") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil || !strings.HasPrefix(string(b), "<!DOCTYPE html>") || !strings.Contains(string(b), "regressions (") || !strings.Contains(string(b), "<svg") {
		t.Fatalf("--html: %v\n%.300s", err, b)
	}
	if _, stderr, code := run(t, "report", "compare", fixedResults, demoResults, "--html", page); code != ExitUsage || !strings.Contains(stderr, "--force") {
		t.Errorf("--html over an existing file: exit %d\n%s", code, stderr)
	}
	if _, _, code := run(t, "report", "compare", fixedResults, demoResults, "--html", page, "--force"); code != ExitRequirement {
		t.Errorf("--html --force: exit %d", code)
	}
	stdout, _, code = run(t, "report", "compare", demoResults, fixedResults, "--html", "-")
	if code != ExitOK || !strings.HasPrefix(stdout, "<!DOCTYPE html>") || strings.Contains(stdout, "herd report compare:") {
		t.Errorf("--html -: exit %d\n%.300s", code, stdout)
	}
	// An input as the output: refused before anything is written.
	in := filepath.Join(dir, "base.json")
	orig, err := os.ReadFile(demoResults)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, "report", "compare", in, fixedResults, "--html", in)
	if after, _ := os.ReadFile(in); code != ExitUsage || string(after) != string(orig) || !strings.Contains(stderr, "never writes over its input") {
		t.Errorf("--html over an input: exit %d, file changed %v\n%s", code, string(after) != string(orig), stderr)
	}
}
