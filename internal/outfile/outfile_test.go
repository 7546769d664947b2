package outfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckInputs: an output that is an input, however it is spelled or
// linked, is refused with and without force.
func TestCheckInputs(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pcap")
	mustWrite(t, in, "input", 0o400)
	if err := os.Symlink(in, filepath.Join(dir, "link.pcap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(in, filepath.Join(dir, "hard.pcap")); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.tape") // an input that does not exist (yet)
	t.Chdir(sub)
	for _, force := range []bool{false, true} {
		for _, out := range []string{
			in, "../in.pcap", filepath.Join(dir, "link.pcap"), filepath.Join(dir, "hard.pcap"),
			filepath.Join(dir, "alias", "in.pcap"), "../sub/../in.pcap",
			filepath.Join(dir, "alias", "missing.tape"), "../missing.tape",
		} {
			g := New(force)
			g.Input(in, "-", missing)
			err := g.Check("-o", out)
			var ie *InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), "-o "+out) || !strings.Contains(err.Error(), "never writes over its input") {
				t.Errorf("force %v, -o %s: got %v, want an InputError naming -o and the file", force, out, err)
			}
		}
	}
	if got := readFile(t, in); got != "input" {
		t.Errorf("the input changed: %q", got)
	}
}

// TestCheckExisting: an existing output is refused without force and
// allowed with it; standard output, devices and new files always pass.
func TestCheckExisting(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	mustWrite(t, old, "old", 0o644)
	dangling := filepath.Join(dir, "dangling.json")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{old, dangling} {
		err := New(false).Check("--json", p)
		var ee *ExistsError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), "--json "+p) || !strings.Contains(err.Error(), "--force") {
			t.Errorf("%s without force: got %v, want an ExistsError naming --json, the file and --force", p, err)
		}
		if err := New(true).Check("--json", p); err != nil {
			t.Errorf("%s with force: %v", p, err)
		}
	}
	for _, p := range []string{"-", "", os.DevNull, filepath.Join(dir, "new.json")} {
		if err := New(false).Check("--json", p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	if err := New(true).Check("--json", dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: got %v", err)
	}
}

// TestCheckOutputsApart: two outputs of one command may not share a file.
func TestCheckOutputsApart(t *testing.T) {
	dir := t.TempDir()
	g := New(true)
	p := filepath.Join(dir, "run.json")
	if err := g.Check("--json", p); err != nil {
		t.Fatal(err)
	}
	err := g.Check("--html", filepath.Join(dir, ".", "run.json"))
	if err == nil || !strings.Contains(err.Error(), "--html") || !strings.Contains(err.Error(), "also the output of --json") {
		t.Errorf("got %v, want --html refused as --json's output", err)
	}
}

// TestCheckTape: a tape writer's NAME.partial and rotated names count as
// outputs too.
func TestCheckTape(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cap.tape")
	mustWrite(t, out+".partial", "a crashed capture", 0o600)
	if err := New(false).CheckTape("-o", out, false); err == nil || !strings.Contains(err.Error(), "cap.tape.partial") {
		t.Errorf("an existing NAME.partial: got %v", err)
	}
	g := New(true)
	g.Input(out + ".partial")
	if err := g.CheckTape("-o", out, false); err == nil || !strings.Contains(err.Error(), "never writes over its input") {
		t.Errorf("NAME.partial is the input: got %v", err)
	}

	if err := New(true).CheckTape("-o", "-", false); err == nil || !strings.Contains(err.Error(), "give a file name") {
		t.Errorf("-o -: got %v", err)
	}

	rot := filepath.Join(dir, "rot.tape")
	if err := New(false).CheckTape("-o", rot, true); err != nil {
		t.Errorf("no rotated file yet: %v", err)
	}
	mustWrite(t, filepath.Join(dir, "rot-0002.tape"), "x", 0o600)
	if err := New(false).CheckTape("-o", rot, true); err == nil || !strings.Contains(err.Error(), "rot-0002.tape") {
		t.Errorf("an existing rotated file: got %v", err)
	}
	if err := New(true).CheckTape("-o", rot, true); err != nil {
		t.Errorf("an existing rotated file with force: %v", err)
	}
	g = New(true)
	g.Input(filepath.Join(dir, "rot-0002.tape"))
	if err := g.CheckTape("-o", rot, true); err == nil || !strings.Contains(err.Error(), "never writes over its input") {
		t.Errorf("a rotated name is the input: got %v", err)
	}
}

// TestWrite: whole files, mode 0600, no temporary file left, and a file
// that appears between Check and Write survives, the output kept beside it.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	g := New(false)
	if err := g.Check("--json", p); err != nil {
		t.Fatal(err)
	}
	if err := g.Write("--json", p, writeString("results")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != Mode || readFile(t, p) != "results" {
		t.Fatalf("wrote %v %v", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the directory, want only the output", len(entries))
	}

	// A failed render leaves nothing behind.
	q := filepath.Join(dir, "q.json")
	if err := g.Write("--json", q, func(io.Writer) error { return errors.New("render failed") }); err == nil {
		t.Error("a failed render reported success")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files after a failed render, want 1", len(entries))
	}

	// The name was taken while the command ran.
	late := filepath.Join(dir, "late.json")
	if err := g.Check("--html", late); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, late, "someone else's", 0o644)
	err = g.Write("--html", late, writeString("report"))
	var ee *ExistsError
	if !errors.As(err, &ee) || ee.Kept == "" {
		t.Fatalf("got %v, want an ExistsError keeping the output", err)
	}
	if readFile(t, late) != "someone else's" || readFile(t, ee.Kept) != "report" {
		t.Errorf("the late file or the kept output changed")
	}

	// With force the file is replaced, and a hard link to it elsewhere
	// keeps its content.
	mustWrite(t, filepath.Join(dir, "f.json"), "old", 0o644)
	if err := os.Link(filepath.Join(dir, "f.json"), filepath.Join(dir, "f-link.json")); err != nil {
		t.Fatal(err)
	}
	f := New(true)
	if err := f.Check("--json", filepath.Join(dir, "f.json")); err != nil {
		t.Fatal(err)
	}
	if err := f.Write("--json", filepath.Join(dir, "f.json"), writeString("new")); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "f.json")) != "new" || readFile(t, filepath.Join(dir, "f-link.json")) != "old" {
		t.Error("force: want the new content at the name and the old one at the other link")
	}

	// Devices are written in place.
	if err := New(false).Write("--json", os.DevNull, writeString("x")); err != nil {
		t.Errorf("%s: %v", os.DevNull, err)
	}
}

// TestCreate: a streamed output is created 0600, never over an existing
// file without force, and with force without touching other links.
func TestCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "raw.zst")
	f, err := New(false).Create("--raw", p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := os.Stat(p); fi.Mode().Perm() != Mode {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), Mode)
	}
	var ee *ExistsError
	if _, err := New(false).Create("--raw", p); !errors.As(err, &ee) {
		t.Errorf("existing, no force: got %v", err)
	}
	mustWrite(t, p, "old", 0o600)
	if err := os.Link(p, p+".link"); err != nil {
		t.Fatal(err)
	}
	f, err = New(true).Create("--raw", p)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	f.Close()
	if readFile(t, p) != "new" || readFile(t, p+".link") != "old" {
		t.Error("force: want the new content at the name and the old one at the other link")
	}
}
