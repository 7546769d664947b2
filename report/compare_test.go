package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herd-replay/herd/internal/results"
)

// clone copies f through its JSON.
func clone(t *testing.T, f *results.File) *results.File {
	t.Helper()
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	g, err := results.Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// rescale returns the histogram encoded in enc with every value
// multiplied by factor.
func rescale(t *testing.T, enc string, factor float64) string {
	t.Helper()
	h, err := results.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	out := hdr.New(results.HistLowest, results.HistHighest, int(h.SignificantFigures()))
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			out.RecordValues(min(int64(float64(b.From+b.To)/2*factor), results.HistHighest), b.Count)
		}
	}
	return results.Encode(out)
}

// recompute redoes what follows from f's data: every step's figures, its
// SLO evaluation and the analysis.
func recompute(t *testing.T, f *results.File) {
	t.Helper()
	slos, err := results.ParseSLOs(f.Params.SLOs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Steps {
		if err := results.Summarize(&f.Steps[i]); err != nil {
			t.Fatal(err)
		}
		results.Evaluate(&f.Steps[i], slos, f.Params.Saturation)
	}
	results.Analyze(f)
}

// slower is f with the latencies of the steps at scale from and above
// factor times longer: every histogram, so every figure, consistently.
func slower(t *testing.T, f *results.File, from, factor float64) *results.File {
	g := clone(t, f)
	for i := range g.Steps {
		st := &g.Steps[i]
		if st.Scale < from {
			continue
		}
		st.Histograms.Latency = rescale(t, st.Histograms.Latency, factor)
		st.Histograms.Service = rescale(t, st.Histograms.Service, factor)
		for j := range st.Routes {
			st.Routes[j].Histogram = rescale(t, st.Routes[j].Histogram, factor)
		}
		for j := range st.Timeline {
			st.Timeline[j].Histogram = rescale(t, st.Timeline[j].Histogram, factor)
		}
	}
	recompute(t, g)
	return g
}

func names(cs []Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Scope+" "+c.Name)
	}
	return out
}

func TestCompareSameRun(t *testing.T) {
	for _, name := range fixtures {
		f := fixture(t, name)
		c := Compare(f, clone(t, f), DefaultCompareOptions())
		if reg := c.Regressions(); len(reg) > 0 {
			t.Errorf("%s against itself: %v", name, names(reg))
		}
		if len(c.Pairs) != len(stepsByScale(f)) || len(c.Checks) < 3 {
			t.Errorf("%s: %d pairs, %d checks", name, len(c.Pairs), len(c.Checks))
		}
	}
}

func TestCompareRegressions(t *testing.T) {
	base := fixture(t, "demo-ramp")
	noRoutes := func(o *CompareOptions) { o.RouteMinRequests = 1 << 40 }
	lessCapacity := func() *results.File {
		g := clone(t, base)
		for i := range g.Steps {
			g.Steps[i].Good = g.Steps[i].Good * 8 / 10
		}
		recompute(t, g)
		return g
	}
	cases := []struct {
		name string
		cand func() *results.File
		opts func(o *CompareOptions)
		want []string // regressions, in order
	}{
		{"p99 50% slower from 2x", func() *results.File { return slower(t, base, 2, 1.5) }, noRoutes,
			[]string{"2x p99", "3x p99", "~3.25x p99", "~3.5x p99", "4x p99"}},
		{"routes with 400 requests at a scale", func() *results.File { return slower(t, base, 2, 1.5) },
			func(o *CompareOptions) { o.RouteMinRequests = 400; o.MaxRegression = map[string]float64{"p99": 0.1} },
			[]string{"2x p99", "3x p99", "~3.25x p99", "~3.5x p99", "4x p99", "3x GET /api/items/:id p99",
				"~3.25x GET /api/items/:id p99", "~3.5x GET /api/items/:id p99", "4x GET /api/items/:id p99", "4x GET /api/users/:id p99"}},
		{"5% slower is within 10%", func() *results.File { return slower(t, base, 1, 1.05) }, nil, nil},
		// At 1x and 2x, p50 rose by less than the 1 ms of slack.
		{"5% slower against a 2% bound", func() *results.File { return slower(t, base, 1, 1.05) },
			func(o *CompareOptions) { noRoutes(o); o.MaxRegression = map[string]float64{"p50": 0.02} },
			[]string{"3x p50", "~3.25x p50", "~3.5x p50", "4x p50"}},
		{"3x fails: SLOs and breaking point", func() *results.File { return slower(t, base, 3, 3) },
			func(o *CompareOptions) { o.MaxRegression = map[string]float64{} },
			[]string{"run breaking point", "3x SLOs"}},
		{"capacity 20% down", lessCapacity, func(o *CompareOptions) { o.MaxRegression = nil },
			[]string{"run capacity", "run breaking point", "1x SLOs", "2x SLOs", "3x SLOs"}},
		{"capacity check off", lessCapacity, func(o *CompareOptions) { o.MaxRegression = nil; o.MaxCapacityDrop = -1 },
			[]string{"run breaking point", "1x SLOs", "2x SLOs", "3x SLOs"}},
		{"errors up 2 points at 4x", func() *results.File {
			g := clone(t, base)
			st := &g.Steps[3]
			st.Errors += st.Sent / 50
			st.Completed -= st.Sent / 50
			recompute(t, g)
			return g
		}, nil, []string{"4x errors"}},
		{"herd was the limit at 2x: not compared", func() *results.File {
			g := slower(t, base, 2, 1.5)
			g.Steps[1].Generator.Limited = true
			return g
		}, func(o *CompareOptions) { noRoutes(o); o.MaxCapacityDrop = -1 },
			[]string{"3x p99", "~3.25x p99", "~3.5x p99", "4x p99"}},
	}
	for _, c := range cases {
		o := DefaultCompareOptions()
		o.BaseName, o.CandidateName = "base.json", "candidate.json"
		if c.opts != nil {
			c.opts(&o)
		}
		cmp := Compare(base, c.cand(), o)
		if got := names(cmp.Regressions()); strings.Join(got, ", ") != strings.Join(c.want, ", ") {
			t.Errorf("%s: regressions %q, want %q", c.name, got, c.want)
		}
	}
}

// TestCompareSlack: on a fast target a small absolute rise is noise.
func TestCompareSlack(t *testing.T) {
	base := fixture(t, "replay-http-server") // p99 6.17 ms
	cand := slower(t, base, 1, 1.3)          // p99 about 8 ms
	o := DefaultCompareOptions()
	if reg := Compare(base, cand, o).Regressions(); len(reg) != 1 || reg[0].Name != "p99" {
		t.Errorf("30%% slower by 1.9 ms with 1 ms of slack: %v", names(reg))
	}
	o.LatencySlackMS = 5
	if reg := Compare(base, cand, o).Regressions(); len(reg) != 0 {
		t.Errorf("within 5 ms of slack: %v", names(reg))
	}
}

func TestCompareText(t *testing.T) {
	base := fixture(t, "demo-ramp")
	o := DefaultCompareOptions()
	o.BaseName, o.CandidateName = "demo-ramp.json", "slower.json"
	var b bytes.Buffer
	if err := Compare(base, slower(t, base, 2, 1.5), o).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare-slower.txt", b.String())
}

func TestCompareJUnit(t *testing.T) {
	base := fixture(t, "demo-ramp")
	o := DefaultCompareOptions()
	o.BaseName, o.CandidateName = "base.json", "cand.json"
	c := Compare(base, slower(t, base, 3, 3), o)
	var b bytes.Buffer
	if err := c.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	if !strings.HasPrefix(b.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration")
	}
	reg := c.Regressions()
	if len(reg) == 0 || doc.Failures != len(reg) || len(doc.Suites) != 1 || doc.Suites[0].Failures != len(reg) || doc.Tests != len(c.Checks) {
		t.Fatalf("%d failures, %d tests; want %d regressions of %d checks", doc.Failures, doc.Tests, len(reg), len(c.Checks))
	}
	failed := 0
	for _, tc := range doc.Suites[0].Cases {
		if tc.Failure != nil {
			failed++
			if tc.Failure.Message == "" || !strings.HasPrefix(tc.Classname, "herd.compare.") {
				t.Errorf("failure %s/%s without a message", tc.Classname, tc.Name)
			}
		}
	}
	if failed != len(reg) {
		t.Errorf("%d failed test cases, %d regressions", failed, len(reg))
	}
}
