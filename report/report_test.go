package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	goldenfile "github.com/herd-replay/herd/internal/golden"
	"github.com/herd-replay/herd/internal/results"
)

// fixtures are results files of real runs (testdata/results/README.md).
var fixtures = []string{"demo-ramp", "replay-http-server", "demo-retries"}

func fixture(t testing.TB, name string) *results.File {
	t.Helper()
	f, err := results.ReadFile(filepath.Join("..", "testdata", "results", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.File(t, filepath.Join("testdata", "golden", name), got)
}

func render(t testing.TB, f *results.File, format string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, f, format); err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	for _, name := range fixtures {
		f := fixture(t, name)
		for _, c := range []struct{ format, ext string }{
			{"text", "txt"}, {"csv", "csv"}, {"hgrm", "hgrm"}, {"openmetrics", "om"},
		} {
			t.Run(name+"/"+c.format, func(t *testing.T) {
				golden(t, name+"."+c.ext, render(t, f, c.format))
			})
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, name := range fixtures {
		want, err := os.ReadFile(filepath.Join("..", "testdata", "results", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := render(t, fixture(t, name), "json"); got != string(want) {
			t.Errorf("%s: --format json is not the results file as written", name)
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	if err := Write(&bytes.Buffer{}, fixture(t, "demo-ramp"), "pdf"); err == nil || !strings.Contains(err.Error(), "openmetrics") {
		t.Errorf("got %v", err)
	}
}

// hgrmRow is a percentile line of outputPercentileDistribution: "%12.3f
// %2.12f %10d %14.2f", 53 characters while the numbers fit; the last line,
// at 100%, lacks the fourth column.
var (
	hgrmRow  = regexp.MustCompile(`^ *\d+\.\d{3} \d\.\d{12} +\d+ +\d+\.\d{2}$`)
	hgrmLast = regexp.MustCompile(`^ *\d+\.\d{3} 1\.000000000000 +\d+$`)
)

// TestHgrmFormat checks the text column for column against Java's
// outputPercentileDistribution and value for value against hdrhistogram-go's
// own percentile printer.
func TestHgrmFormat(t *testing.T) {
	h := results.NewHist()
	for i := int64(1); i <= 10000; i++ {
		results.Record(h, i*i*37) // 37 ns to 3.7 s, skewed to the tail
	}
	var b strings.Builder
	writePercentileDistribution(&b, h, 5, 1000)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if lines[0] != "       Value     Percentile TotalCount 1/(1-Percentile)" || lines[1] != "" {
		t.Fatalf("header %q %q", lines[0], lines[1])
	}
	// hdrhistogram-go prints the same iteration with other columns.
	var lib bytes.Buffer
	if _, err := h.PercentilesPrint(&lib, 5, 1000); err != nil {
		t.Fatal(err)
	}
	libLines := strings.Split(strings.TrimSpace(lib.String()), "\n")
	libRows := libLines[2 : len(libLines)-3]
	rows := lines[2 : len(lines)-3]
	if len(rows) != len(libRows) || len(rows) < 50 {
		t.Fatalf("%d rows, hdrhistogram-go prints %d", len(rows), len(libRows))
	}
	for i, r := range rows {
		last := i == len(rows)-1
		if !last && (!hgrmRow.MatchString(r) || len(r) != 53) || last && (!hgrmLast.MatchString(r) || len(r) != 38) {
			t.Errorf("row %d %q is not in outputPercentileDistribution's format", i, r)
		}
		got, want := strings.Fields(r), strings.Fields(libRows[i])
		gv, _ := strconv.ParseFloat(got[0], 64)
		wv, _ := strconv.ParseFloat(want[0], 64)
		gp, _ := strconv.ParseFloat(got[1], 64)
		wp, _ := strconv.ParseFloat(want[1], 64)
		if gv != wv || got[2] != want[2] || fmt.Sprintf("%.6f", gp) != fmt.Sprintf("%.6f", wp) {
			t.Errorf("row %d: %q, hdrhistogram-go %q", i, r, libRows[i])
		}
	}
	// The footer, with the geometry hdrhistogram-go prints.
	foot := lines[len(lines)-3:]
	libFoot := libLines[len(libLines)-3:]
	for i := range foot {
		if strings.Join(strings.Fields(foot[i]), " ") != strings.Join(strings.Fields(libFoot[i]), " ") {
			t.Errorf("footer %q, hdrhistogram-go %q", foot[i], libFoot[i])
		}
	}
	if foot[2] != "#[Buckets =           22, SubBuckets     =         2048]" {
		t.Errorf("footer %q", foot[2])
	}
}

func TestGeometry(t *testing.T) {
	for _, h := range []*hdr.Histogram{results.NewHist(), results.NewTimelineHist(), hdr.New(1, 30_000_000, 3), hdr.New(1000, 1e12, 2), hdr.New(1, 1e15, 5)} {
		var lib bytes.Buffer
		h.PercentilesPrint(&lib, 5, 1)
		lines := strings.Split(strings.TrimSpace(lib.String()), "\n")
		buckets, sub := geometry(h)
		want := strings.Join(strings.Fields(lines[len(lines)-1]), " ")
		if got := fmt.Sprintf("#[Buckets = %d, SubBuckets = %d]", buckets, sub); got != want {
			t.Errorf("geometry of %d..%d at %d digits: %s, hdrhistogram-go %s", h.LowestTrackableValue(), h.HighestTrackableValue(), h.SignificantFigures(), got, want)
		}
	}
}

// TestHgrmPlotterReads reads the output the way HdrHistogram's plotter
// (GoogleChartsExample/plotFiles.html) does: lines of four fields that do
// not start with '#', the latency in the first and 1/(1-percentile) in the
// fourth.
func TestHgrmPlotterReads(t *testing.T) {
	f := fixture(t, "replay-http-server")
	out := render(t, f, "hgrm")
	if strings.HasPrefix(out, "#") {
		t.Error("a one-step file starts with a comment; Java's output starts with the header")
	}
	var xs, ys []float64
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		v := strings.Fields(line)
		if line == "" || line[0] == '#' || len(v) != 4 {
			continue
		}
		y, err1 := strconv.ParseFloat(v[0], 64)
		x, err2 := strconv.ParseFloat(v[3], 64)
		if err1 != nil || err2 != nil {
			continue // the header
		}
		xs, ys = append(xs, x), append(ys, y)
	}
	if len(xs) < 20 {
		t.Fatalf("the plotter would read %d points", len(xs))
	}
	for i := 1; i < len(xs); i++ {
		if xs[i] < xs[i-1] || ys[i] < ys[i-1] {
			t.Fatalf("point %d (%v, %v) goes back from (%v, %v)", i, xs[i], ys[i], xs[i-1], ys[i-1])
		}
	}
	if p50 := f.Steps[0].LatencyMS.P50; !containsNear(ys, p50) {
		t.Errorf("p50 %v ms is not among the plotted values", p50)
	}
}

func containsNear(vs []float64, x float64) bool {
	for _, v := range vs {
		if v > x*0.999 && v < x*1.001 {
			return true
		}
	}
	return false
}

func TestHgrmEmpty(t *testing.T) {
	var b strings.Builder
	writePercentileDistribution(&b, results.NewHist(), 5, 1000)
	want := "       Value     Percentile TotalCount 1/(1-Percentile)\n\n" +
		"#[Mean    =        0.000, StdDeviation   =        0.000]\n" +
		"#[Max     =        0.000, Total count    =            0]\n" +
		"#[Buckets =           22, SubBuckets     =         2048]\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestCSV(t *testing.T) {
	for _, name := range fixtures {
		f := fixture(t, name)
		rows, err := csv.NewReader(strings.NewReader(render(t, f, "csv"))).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := 1
		for _, st := range f.Steps {
			want += 1 + len(st.Routes)
		}
		if len(rows) != want {
			t.Errorf("%s: %d rows, want %d", name, len(rows), want)
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		for _, r := range rows[1:] {
			if len(r) != len(rows[0]) {
				t.Fatalf("%s: a row of %d cells under %d columns", name, len(r), len(rows[0]))
			}
		}
		if got := rows[1][col["p99_ms"]]; got != strconv.FormatFloat(f.Steps[0].LatencyMS.P99, 'f', -1, 64) {
			t.Errorf("%s: p99 %s, want %v", name, got, f.Steps[0].LatencyMS.P99)
		}
	}
}

// omLine is a sample: a metric name, optional labels, a value.
var omLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*")*)?\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?|\+Inf|-Inf|NaN)$`)

// TestOpenMetricsValid checks the exposition against the rules of the
// OpenMetrics text format: metadata before samples, every family declared
// once and its samples together, sample names that fit the family's type,
// units that end the name, unique label sets, and # EOF last.
func TestOpenMetricsValid(t *testing.T) {
	for _, name := range fixtures {
		out := render(t, fixture(t, name), "openmetrics")
		if !strings.HasSuffix(out, "\n# EOF\n") {
			t.Fatalf("%s: does not end with # EOF", name)
		}
		types := map[string]string{}
		var family string
		seen := map[string]bool{}
		samples := 0
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for i, line := range lines[:len(lines)-1] {
			fail := func(why string) { t.Fatalf("%s line %d %q: %s", name, i+1, line, why) }
			if strings.HasPrefix(line, "# ") {
				f := strings.SplitN(line, " ", 4)
				if len(f) < 4 {
					fail("short metadata")
				}
				switch f[1] {
				case "TYPE":
					if _, dup := types[f[2]]; dup {
						fail("family declared twice")
					}
					if !map[string]bool{"gauge": true, "counter": true, "summary": true, "info": true}[f[3]] {
						fail("unknown type")
					}
					types[f[2]], family = f[3], f[2]
				case "UNIT":
					if f[2] != family || !strings.HasSuffix(f[2], "_"+f[3]) {
						fail("a unit must end the family's name")
					}
				case "HELP":
					if f[2] != family {
						fail("HELP of another family")
					}
				default:
					fail("unknown metadata")
				}
				continue
			}
			m := omLine.FindStringSubmatch(line)
			if m == nil {
				fail("not a sample")
			}
			suffix := strings.TrimPrefix(m[1], family)
			ok := map[string][]string{"gauge": {""}, "counter": {"_total"}, "summary": {"", "_count"}, "info": {"_info"}}[types[family]]
			if m[1] == suffix || !slices.Contains(ok, suffix) {
				fail("sample " + m[1] + " does not belong to family " + family + " (" + types[family] + ")")
			}
			if types[family] == "summary" && suffix == "" && !strings.Contains(m[2], `quantile="`) {
				fail("summary sample without a quantile")
			}
			key := m[1] + m[2]
			if seen[key] {
				fail("duplicate sample")
			}
			seen[key] = true
			samples++
		}
		if samples < 50 {
			t.Errorf("%s: only %d samples", name, samples)
		}
	}
}

// TestOpenMetricsHistHelp: every histogram of a step has its family's help.
func TestOpenMetricsHistHelp(t *testing.T) {
	for _, x := range new(results.Step).Hists() {
		if stepSummaries[x.Name].help == "" {
			t.Errorf("no help for herd_step_%s_seconds", x.Name)
		}
	}
}

func TestOpenMetricsEscapes(t *testing.T) {
	f := fixture(t, "replay-http-server")
	f.Steps[0].Routes[0].Route = "/a\"b\\c\nd"
	out := render(t, f, "openmetrics")
	if !strings.Contains(out, `route="/a\"b\\c\nd"`) {
		t.Errorf("label value not escaped:\n%s", out)
	}
}
