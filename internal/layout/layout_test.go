package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/herd-replay/herd"

// deps lists, for every package of the module, the packages it depends on
// (transitively), as go list -deps reports them.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-test=false", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && strings.HasPrefix(f[0], module) {
			m[f[0]] = f[1:]
		}
	}
	if len(m) == 0 {
		t.Fatal("go list found no packages")
	}
	return m
}

func TestDependencyDirection(t *testing.T) {
	all := deps(t)
	libs := []string{"capture", "replay", "report"}
	for _, a := range libs {
		for _, d := range all[module+"/"+a] {
			for _, b := range libs {
				if b != a && (d == module+"/"+b || strings.HasPrefix(d, module+"/"+b+"/")) {
					t.Errorf("%s depends on %s: capture, replay and report must not import each other", a, b)
				}
			}
		}
	}
	// The other ways in (the recording proxy, the importers) write tapes
	// beside capture and import none of the three.
	for _, a := range []string{"record", "importer"} {
		for _, d := range all[module+"/"+a] {
			for _, b := range libs {
				if d == module+"/"+b || strings.HasPrefix(d, module+"/"+b+"/") {
					t.Errorf("%s depends on %s: the ways in import neither capture, replay nor report", a, b)
				}
			}
		}
	}
	// Live shadowing joins capture and replay; no library imports it,
	// and it imports no report.
	for pkg, ds := range all {
		for _, d := range ds {
			if d == module+"/shadow" && pkg != module+"/internal/cli" && !strings.HasPrefix(pkg, module+"/cmd/") {
				t.Errorf("%s depends on shadow: only the command line does", pkg)
			}
		}
	}
	for _, d := range all[module+"/shadow"] {
		if d == module+"/report" || strings.HasPrefix(d, module+"/report/") {
			t.Errorf("shadow depends on %s: it measures as replay does, and leaves rendering to report", d)
		}
	}
	for pkg, ds := range all {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if rel == "internal/cli" || strings.HasPrefix(rel, "cmd/") {
			continue
		}
		for _, d := range ds {
			if strings.HasPrefix(d, "github.com/spf13/cobra") || strings.HasPrefix(d, "github.com/vbauerster/mpb") {
				t.Errorf("%s depends on %s: only internal/cli may use cobra and mpb", pkg, d)
			}
		}
	}
}

// TestGopacketAssembly guards a known trap: tcpassembly and reassembly
// register the same flag and panic when linked together.
func TestGopacketAssembly(t *testing.T) {
	for pkg, ds := range deps(t) {
		for _, d := range ds {
			if strings.HasSuffix(d, "/gopacket/tcpassembly") {
				t.Errorf("%s depends on %s: use gopacket/reassembly only", pkg, d)
			}
		}
	}
}
