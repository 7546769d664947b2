package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/herd-replay/herd/internal/golden"
	"github.com/spf13/cobra"
)

// run executes herd with args and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.File(t, filepath.Join("testdata", name), got)
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"bogus"}, ExitUsage, "unknown command"},
		{[]string{"inspect"}, ExitUsage, "needs a tape file"},
		{[]string{"inspect", "a", "b"}, ExitUsage, "needs a tape file"},
		{[]string{"inspect", "--no-such-flag", "x"}, ExitUsage, "unknown flag"},
		{[]string{"inspect", "--window", "1.5s", "../../testdata/sample.tape"}, ExitUsage, "whole number of seconds"},
		{[]string{"inspect", "/nonexistent/x.tape"}, ExitFailure, "no such file"},
		{[]string{"inspect", "cli.go"}, ExitFailure, "not a tape file"},
		{[]string{"version"}, ExitOK, ""},
		{[]string{"completion", "bash"}, ExitOK, ""},
		{[]string{"completion", "tcsh"}, ExitUsage, "unknown shell"},
	}
	for _, c := range cases {
		_, stderr, code := run(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.err) {
			t.Errorf("herd %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.err)
		}
	}
}

func TestExitCodeMapping(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{usageErrorf("x"), 2},
		{&RequirementError{Msg: "below 2x"}, 3},
		{context.Canceled, 130},
		{os.ErrNotExist, 1},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestEveryCommandHasExamples walks the command tree: every command that a
// person can run documents itself with examples.
func TestEveryCommandHasExamples(t *testing.T) {
	root, _ := newRootCmd(IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no examples in --help", c.CommandPath())
		}
		if c.Short == "" {
			t.Errorf("%q has no short description", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	out, _, code := run(t, "inspect", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--json") {
		t.Errorf("inspect --help: exit %d\n%s", code, out)
	}
}

func TestInspectGolden(t *testing.T) {
	for _, c := range []struct{ name, golden string }{
		{"text", "inspect-sample.txt"},
		{"json", "inspect-sample.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"inspect", "../../testdata/sample.tape"}
			if c.name == "json" {
				args = append(args, "--json")
			}
			out, stderr, code := run(t, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			golden(t, c.golden, out)
		})
	}
}

// TestInspectDamagedMeta flips a byte of the sample tape's metadata block:
// inspect says the metadata is damaged and never shows the zero value's
// defaults ("redaction off") in its place.
func TestInspectDamagedMeta(t *testing.T) {
	b, err := os.ReadFile("../../testdata/sample.tape")
	if err != nil {
		t.Fatal(err)
	}
	b[16+40+3] ^= 0x55 // inside the META payload: file header 16, block header 40
	path := filepath.Join(t.TempDir(), "damaged.tape")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := run(t, "inspect", path)
	if code != ExitOK || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, "redaction  unknown") || strings.Contains(out, "redaction  off") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	js, _, code := run(t, "inspect", "--json", path)
	if code != ExitOK || !strings.Contains(js, `"meta": null`) || !strings.Contains(js, `"meta_damage"`) {
		t.Fatalf("exit %d\n%s", code, js)
	}
}
