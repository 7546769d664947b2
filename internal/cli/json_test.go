package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJSONPlain: results and inspect JSON keep what people grep for as
// they typed it: "p99<1s", not "p99\u003c1s" (encoding/json's HTML
// escaping, which no JSON reader needs).
func TestJSONPlain(t *testing.T) {
	srv, _ := okServer(t, 0)
	dir := t.TempDir()
	runJSON := filepath.Join(dir, "run.json")
	if _, stderr, code := run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:1s",
		"--slo", "p99<1s", "--slo", "errors<1%", "--abort-on", "errors>50%/5s", "--json", runJSON); code != 0 && code != ExitRequirement {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
	reJSON := filepath.Join(dir, "again.json")
	if _, stderr, code := run(t, "report", demoResults, "--format", "json", "-o", reJSON); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, stderr)
	}
	inspect, _, code := run(t, "inspect", sampleTape, "--json")
	if code != 0 {
		t.Fatalf("inspect: exit %d", code)
	}
	files := map[string]string{"inspect --json": inspect}
	for name, path := range map[string]string{"replay --json": runJSON, "report --format json": reJSON} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
		want := []string{`"p99<1s"`, `"errors<1%"`}
		if name == "replay --json" {
			want = append(want, `"errors>50%/5s"`)
		}
		for _, want := range want {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: grep %s finds nothing", name, want)
			}
		}
	}
	for name, s := range files {
		for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
			if strings.Contains(s, esc) {
				t.Errorf("%s holds %s", name, esc)
			}
		}
	}
}
