package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/outfile"
)

// readOnlyCopy copies src into dir, mode 0400, as a user's input would be.
func readOnlyCopy(t *testing.T, src, dir string) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(p, b, 0o400); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// unchanged fails unless path still holds want.
func unchanged(t *testing.T, path string, want []byte) {
	t.Helper()
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s changed (%v)", path, err)
	}
}

// refused runs herd and wants a usage error naming the flag and the file.
func refused(t *testing.T, flag, path, why string, args ...string) {
	t.Helper()
	_, stderr, code := run(t, args...)
	if code != ExitUsage || !strings.Contains(stderr, flag+" "+path) || !strings.Contains(stderr, why) {
		t.Errorf("herd %s: exit %d, want %d and %q naming %s %s\n%s", strings.Join(args, " "), code, ExitUsage, why, flag, path, stderr)
	}
}

const (
	exists = "the file exists; pass --force"
	input  = "never writes over its input"
)

func wantMode(t *testing.T, path string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != outfile.Mode {
		t.Errorf("%s: %v, want mode %v", path, err, outfile.Mode)
	}
}

// TestCaptureOutputs: the capture of issue 9 (-o its own read-only input)
// is refused with and without --force, and leaves the input whole; so is
// a link to it; an existing tape or NAME.partial needs --force.
func TestCaptureOutputs(t *testing.T) {
	dir := t.TempDir()
	in, orig := readOnlyCopy(t, filepath.Join(edgeDir, "chunked.pcap"), dir)
	partialIn := filepath.Join(dir, "cap.tape.partial")
	if err := os.WriteFile(partialIn, orig, 0o400); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pcap")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	for _, force := range [][]string{nil, {"--force"}} {
		refused(t, "-o", in, input, append([]string{"capture", "--pcap", in, "-o", in}, force...)...)
		refused(t, "-o", link, input, append([]string{"capture", "--pcap", in, "-o", link}, force...)...)
		// -o x writes x.partial first: it must not be the input either.
		refused(t, "-o", partialIn, input, append([]string{"capture", "--pcap", partialIn, "-o", strings.TrimSuffix(partialIn, ".partial")}, force...)...)
	}
	unchanged(t, in, orig)
	unchanged(t, partialIn, orig)

	out := filepath.Join(dir, "out.tape")
	if _, stderr, code := run(t, "capture", "--pcap", in, "-o", out); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	tapeBytes, _ := os.ReadFile(out)
	refused(t, "-o", out, exists, "capture", "--pcap", in, "-o", out)
	unchanged(t, out, tapeBytes)
	if _, stderr, code := run(t, "capture", "--pcap", in, "-o", out, "--force"); code != 0 {
		t.Errorf("--force: exit %d\n%s", code, stderr)
	}
	wantMode(t, out)

	crashed := filepath.Join(dir, "crashed.tape")
	if err := os.WriteFile(crashed+".partial", []byte("a crashed capture"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, "-o", crashed+".partial", exists, "capture", "--pcap", in, "-o", crashed)
	unchanged(t, crashed+".partial", []byte("a crashed capture"))

	// Standard input is no file to protect.
	pcap, _ := os.ReadFile(in)
	var stdout, stderr bytes.Buffer
	if code := Main(t.Context(), []string{"capture", "--pcap", "-", "-o", filepath.Join(dir, "stdin.tape")},
		IO{In: bytes.NewReader(pcap), Out: &stdout, Err: &stderr}); code != 0 {
		t.Errorf("--pcap -: exit %d\n%s", code, stderr.String())
	}
}

// TestReplayOutputs: --json, --html and --raw are checked before a single
// request is sent; the tape is never written over; the files are 0600.
func TestReplayOutputs(t *testing.T) {
	srv, n := okServer(t, 0)
	dir := t.TempDir()
	tp, orig := readOnlyCopy(t, sampleTape, dir)
	base := []string{"replay", tp, "--target", srv.URL, "--window", "peak:1s"}
	for _, flag := range []string{"--json", "--html", "--raw"} {
		refused(t, flag, tp, input, append(base, flag, tp, "--force")...)
		refused(t, flag, tp+".partial", input, append(base, flag, tp+".partial", "--force")...)
	}
	old := filepath.Join(dir, "old.json")
	if err := os.WriteFile(old, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--json", "--html", "--raw"} {
		refused(t, flag, old, exists, append(base, flag, old)...)
	}
	refused(t, "--html", filepath.Join(dir, "same.json"), "also the output of --json",
		append(base, "--json", filepath.Join(dir, "same.json"), "--html", filepath.Join(dir, "same.json"), "--force")...)
	// ramp shares the flags: the same refusals.
	refused(t, "--json", tp, input, "ramp", tp, "--target", srv.URL, "--json", tp, "--force")
	if n.Load() != 0 {
		t.Fatalf("the target got %d requests from refused runs", n.Load())
	}
	unchanged(t, tp, orig)
	unchanged(t, old, []byte("keep me"))

	js, page, raw := filepath.Join(dir, "run.json"), filepath.Join(dir, "run.html"), filepath.Join(dir, "run.raw.zst")
	if _, stderr, code := run(t, append(base, "--json", js, "--html", page, "--raw", raw)...); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, p := range []string{js, page, raw} {
		wantMode(t, p)
	}
	refused(t, "--json", js, exists, append(base, "--json", js)...)
	if _, stderr, code := run(t, append(base, "--json", js, "--html", page, "--raw", raw, "--force")...); code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, stderr)
	}
	// /dev/null is no user's file: no --force needed.
	if _, stderr, code := run(t, append(base, "--json", os.DevNull)...); code != 0 {
		t.Errorf("--json %s: exit %d\n%s", os.DevNull, code, stderr)
	}
}

// TestReportOutputs: herd report -o, report merge -o and report compare
// --junit never write over their inputs, and replace a file only with
// --force.
func TestReportOutputs(t *testing.T) {
	dir := t.TempDir()
	a, origA := readOnlyCopy(t, demoResults, dir)
	b, _ := readOnlyCopy(t, fixedResults, dir)
	for _, force := range [][]string{nil, {"--force"}} {
		refused(t, "-o", a, input, append([]string{"report", a, "-o", a}, force...)...)
		refused(t, "-o", b, input, append([]string{"report", "merge", a, b, "-o", b}, force...)...)
		refused(t, "--junit", a, input, append([]string{"report", "compare", a, b, "--junit", a}, force...)...)
	}
	unchanged(t, a, origA)

	out := filepath.Join(dir, "report.html")
	if _, stderr, code := run(t, "report", a, "--format", "html", "-o", out); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	wantMode(t, out)
	refused(t, "-o", out, exists, "report", a, "-o", out)
	refused(t, "-o", out, exists, "report", "merge", a, b, "-o", out)
	refused(t, "--junit", out, exists, "report", "compare", a, b, "--junit", out)
	if _, stderr, code := run(t, "report", a, "-o", out, "--force"); code != 0 {
		t.Errorf("--force: exit %d\n%s", code, stderr)
	}
	if _, _, code := run(t, "report", "compare", b, a, "--junit", out, "--force"); code != ExitRequirement {
		t.Errorf("compare --junit --force: exit %d", code)
	}
	wantMode(t, out)
}

// TestDemoOutput: herd demo refuses an existing --json at once, before
// its minute and a half of ramping.
func TestDemoOutput(t *testing.T) {
	old := filepath.Join(t.TempDir(), "demo.json")
	if err := os.WriteFile(old, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused(t, "--json", old, exists, "demo", "--json", old)
	unchanged(t, old, []byte("keep me"))
}
