package cli

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/outfile"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/report"
)

// Results files of real runs (testdata/results/README.md): the demo
// service as it was, and with its fix.
const (
	demoResults   = "../../testdata/results/demo-ramp.json"
	fixedResults  = "../../testdata/results/demo-fixed-ramp.json"
	replayResults = "../../testdata/results/replay-http-server.json"
)

func TestReportFormats(t *testing.T) {
	dir := t.TempDir()
	for _, format := range report.Formats {
		stdout, stderr, code := run(t, "report", demoResults, "--format", format)
		if code != 0 || stderr != "" || len(stdout) < 500 {
			t.Fatalf("--format %s: exit %d, %d bytes\n%s", format, code, len(stdout), stderr)
		}
		out := filepath.Join(dir, "report."+format)
		if _, stderr, code := run(t, "report", demoResults, "--format", format, "-o", out); code != 0 {
			t.Fatalf("-o: exit %d\n%s", code, stderr)
		}
		if b, err := os.ReadFile(out); err != nil || string(b) != stdout {
			t.Errorf("--format %s -o wrote other bytes than stdout (%v)", format, err)
		}
	}
	// Text is the default, and what herd ramp printed.
	stdout, _, _ := run(t, "report", demoResults)
	if !strings.HasPrefix(stdout, "herd ramp:") || !strings.Contains(stdout, "The target breaks at 4x") {
		t.Errorf("default format:\n%s", stdout)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(report.Formats) {
		t.Errorf("the output directory holds %d files, want the %d reports and no temporary file", len(entries), len(report.Formats))
	}
}

func TestReportHgrmStep(t *testing.T) {
	stdout, stderr, code := run(t, "report", demoResults, "--format", "hgrm", "--step", "300%")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.HasPrefix(stdout, "#") || strings.Count(stdout, "Value     Percentile") != 1 || !strings.Contains(stdout, "Total count    =         1368]") {
		t.Errorf("one step, as HdrHistogram writes it:\n%s", stdout)
	}
	stdout, _, code = run(t, "report", demoResults, "--format", "hgrm", "--step", "1x", "--step", "4x")
	if code != 0 || strings.Count(stdout, "#[herd step") != 2 {
		t.Errorf("two steps: exit %d\n%s", code, stdout)
	}
}

func TestReportUsage(t *testing.T) {
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"report"}, "needs one results file"},
		{[]string{"report", demoResults, fixedResults}, "needs one results file"},
		{[]string{"report", demoResults, "--format", "pdf"}, "use one of text, json, html"},
		{[]string{"report", demoResults, "--step", "2x"}, "--format hgrm only"},
		{[]string{"report", demoResults, "--format", "hgrm", "--step", "9x"}, "the steps are 1x, 2x, 3x, 4x, ~3.5x, ~3.25x"},
		{[]string{"report", demoResults, "--format", "hgrm", "--step", "fast"}, "--step"},
		{[]string{"report", "compare", demoResults}, "needs a base and a candidate"},
		{[]string{"report", "compare", demoResults, fixedResults, "--max-regression", "p98=10%"}, "METRIC one of"},
		{[]string{"report", "compare", demoResults, fixedResults, "--max-regression", "p99=lots"}, "not a percentage"},
		{[]string{"report", "compare", demoResults, fixedResults, "--max-capacity-drop", "150%"}, "from 0% to 100%"},
		{[]string{"report", "compare", demoResults, fixedResults, "--route-min-requests", "0"}, "at least 1"},
		{[]string{"report", "merge", demoResults}, "at least two results files"},
		{[]string{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--json", "-", "--html", "-"}, "both want standard output"},
	}
	for _, c := range cases {
		_, stderr, code := run(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.err) {
			t.Errorf("herd %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.err)
		}
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":7}`), 0o644)
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"report", "compar"}, "did you mean herd report compare?"},
		{[]string{"report", filepath.Join(dir, "none.json")}, "no such file"},
		{[]string{"report", bad}, "results schema 7, this herd reads 1"},
		{[]string{"report", "merge", demoResults, replayResults}, demoResults + " and " + replayResults + " are not parts of one run: kind differs"},
		{[]string{"report", "merge", demoResults, demoResults}, "the same run twice"},
		{[]string{"report", "merge", demoResults, "other"}, "target differs"},
	}
	// demoResults twice is not "target differs": make the second another run
	// of the same plan against another port, as a second machine would.
	b, _ := os.ReadFile(demoResults)
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(strings.Replace(string(b), "127.0.0.1:40865", "127.0.0.1:1", 1)), 0o644)
	cases[5].args[3] = other
	for _, c := range cases {
		_, stderr, code := run(t, c.args...)
		if code != ExitFailure || !strings.Contains(stderr, c.err) {
			t.Errorf("herd %v: exit %d, stderr %q; want exit 1 and %q", c.args, code, stderr, c.err)
		}
	}
}

// TestReportCompareGate compares two real runs of the demo: with the fix
// (base) and without it (candidate) is a regression, exit 3, and JUnit
// says so; the other way round is an improvement, exit 0.
func TestReportCompareGate(t *testing.T) {
	junit := filepath.Join(t.TempDir(), "compare.xml")
	stdout, stderr, code := run(t, "report", "compare", fixedResults, demoResults, "--junit", junit)
	if code != ExitRequirement {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"capacity        578.9 req/s (4.745x)  369.6 req/s (3.03x)  -36.2%", "breaking point  6x", "REGRESSION", "regressions (", "only in base: 5x"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "regressions against "+fixedResults+", the first: run capacity") {
		t.Errorf("stderr %q", stderr)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Failures int `xml:"failures,attr"`
		Tests    int `xml:"tests,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testsuite>testcase"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("--junit is not XML: %v", err)
	}
	if doc.Failures == 0 || doc.Tests != len(doc.Cases) || doc.Cases[0].Name != "capacity" || doc.Cases[0].Failure == nil {
		t.Errorf("junit: %d failures of %d tests, first %+v", doc.Failures, doc.Tests, doc.Cases[0])
	}

	// The file exists now: replacing it takes --force.
	if _, stderr, code := run(t, "report", "compare", demoResults, fixedResults, "--junit", junit); code != ExitUsage || !strings.Contains(stderr, "--junit "+junit+": the file exists; pass --force") {
		t.Errorf("--junit over an existing file: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code = run(t, "report", "compare", demoResults, fixedResults, "--junit", junit, "--force")
	if code != 0 || !strings.Contains(stdout, "no regression") {
		t.Fatalf("improvement: exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, _ = os.ReadFile(junit)
	if err := xml.Unmarshal(b, &doc); err != nil || doc.Failures != 0 {
		t.Errorf("junit of a pass: %v, %d failures", err, doc.Failures)
	}
	// The same run against itself passes; with the capacity gate only,
	// the fixed service against the broken one still fails on capacity.
	if _, _, code := run(t, "report", "compare", demoResults, demoResults); code != 0 {
		t.Errorf("a run against itself: exit %d", code)
	}
	stdout, _, code = run(t, "report", "compare", fixedResults, demoResults, "--max-regression", "none", "--max-capacity-drop", "50%")
	if code != ExitRequirement || !strings.Contains(stdout, "breaking point") || strings.Contains(stdout, "run capacity") {
		t.Errorf("--max-regression none: exit %d\n%s", code, stdout)
	}
}

// TestReportCompareDefaults: the flags' defaults, and the help's, are
// report.DefaultCompareOptions.
func TestReportCompareDefaults(t *testing.T) {
	def := report.DefaultCompareOptions()
	cmd := newReportCompareCmd(IO{})
	drop, err := parsePercent(cmd.Flags().Lookup("max-capacity-drop").DefValue)
	if err != nil || drop != def.MaxCapacityDrop {
		t.Errorf("--max-capacity-drop defaults to %v (%v), want %v", drop, err, def.MaxCapacityDrop)
	}
	for _, want := range []string{"(default 10%)", "Default: p99=10% and errors=1%."} {
		if !strings.Contains(cmd.Long, want) {
			t.Errorf("the help lacks %q", want)
		}
	}
	if usage := cmd.Flags().Lookup("max-regression").Usage; !strings.Contains(usage, "default p99=10%, errors=1%") {
		t.Errorf("--max-regression: %q", usage)
	}
}

// TestReportMerge merges two shards of a replay (the same run written as
// shards 0/2 and 1/2): counts double, the rate of the window too, and the
// merged file renders.
func TestReportMerge(t *testing.T) {
	dir := t.TempDir()
	f, err := results.ReadFile(replayResults)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, shard := range []string{"1/2", "0/2"} { // out of order: merge sorts them
		f.Params.Shard = shard
		p := filepath.Join(dir, "shard-"+shard[:1]+".json")
		if err := writeOutput(IO{}, outfile.New(false), "-o", p, f.Write); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out := filepath.Join(dir, "merged.json")
	_, stderr, code := run(t, append(append([]string{"report", "merge"}, paths...), "-o", out)...)
	if code != 0 || !strings.Contains(stderr, "herd: merged 2 results: Replayed 650 requests") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Window struct {
			Requests int64   `json:"requests"`
			RPS      float64 `json:"rps"`
		} `json:"window"`
		Params struct {
			Shard string `json:"shard"`
		} `json:"params"`
		Steps []struct {
			Sent    int64 `json:"sent"`
			Errors  int64 `json:"errors"`
			Latency struct {
				P99 float64 `json:"p99"`
			} `json:"latency_ms"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	st := f.Steps[0]
	if m.Window.Requests != 2*f.Window.Requests || m.Window.RPS != 2*f.Window.RPS || m.Params.Shard != "0/2,1/2" {
		t.Errorf("window %+v, shards %q", m.Window, m.Params.Shard)
	}
	if m.Steps[0].Sent != 2*st.Sent || m.Steps[0].Errors != 2*st.Errors || m.Steps[0].Latency.P99 != st.LatencyMS.P99 {
		t.Errorf("merged step %+v; each shard sent %d, errors %d, p99 %v", m.Steps[0], st.Sent, st.Errors, st.LatencyMS.P99)
	}
	if _, stderr, code := run(t, "report", out, "--format", "html", "-o", filepath.Join(dir, "merged.html")); code != 0 {
		t.Errorf("render the merged file: exit %d\n%s", code, stderr)
	}
	// The same shard twice is refused.
	if _, stderr, code := run(t, "report", "merge", paths[0], paths[0]); code != ExitFailure || !strings.Contains(stderr, "shard 1/2 appears twice") {
		t.Errorf("the same shard twice: exit %d\n%s", code, stderr)
	}
}

// TestReplayHTML: herd replay --html writes the report next to the JSON,
// and --html - puts it on stdout instead of the text summary.
func TestReplayHTML(t *testing.T) {
	srv, _ := okServer(t, 0)
	dir := t.TempDir()
	page, js := filepath.Join(dir, "run.html"), filepath.Join(dir, "run.json")
	stdout, stderr, code := run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:2s", "--json", js, "--html", page,
		"--generator-lag", "1s") // about the page, not about how much CPU a loaded machine leaves herd
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), "SLOs met at 1x") {
		t.Fatalf("--html: %v\n%.400s", err, b)
	}
	if !strings.Contains(stdout, "Replayed") {
		t.Errorf("the text summary is still printed:\n%s", stdout)
	}
	// Without --slo, the run is held to the defaults, and says so.
	res, err := results.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Params.SLOs, results.DefaultSLOs) {
		t.Errorf("SLOs recorded without --slo: got %q, want %q", res.Params.SLOs, results.DefaultSLOs)
	}
	// The report renders again from the JSON, the same page.
	again, _, _ := run(t, "report", js, "--format", "html")
	if again != string(b) {
		t.Errorf("herd report --format html of the results differs from --html")
	}
	stdout, _, code = run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:2s", "--html", "-")
	if code != 0 || !strings.HasPrefix(stdout, "<!DOCTYPE html>") || strings.Contains(stdout, "\nwindow   ") {
		t.Errorf("--html -: exit %d\n%.300s", code, stdout)
	}
	// --json - puts the results there instead, and both files were
	// written whole, with no temporary file left beside them.
	stdout, _, code = run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:2s", "--json", "-")
	if _, err := results.Read(strings.NewReader(stdout)); code != 0 || err != nil {
		t.Errorf("--json -: exit %d, %v\n%.300s", code, err, stdout)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("the output directory holds %d files, want run.json and run.html", len(entries))
	}
}
