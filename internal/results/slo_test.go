package results

import "testing"

func TestParseSLO(t *testing.T) {
	cases := []struct {
		in     string
		metric string
		route  string
		method string
		bound  float64
		ok     bool
	}{
		{"p99<500ms", "p99", "", "", 500, true},
		{"p999 < 2s", "p999", "", "", 2000, true},
		{"max<=1s", "max", "", "", 1000, true},
		{"errors<1%", "errors", "", "", 0.01, true},
		{"errors<0.5", "errors", "", "", 0.005, true},
		{"mismatches<5%", "mismatches", "", "", 0.05, true},
		{"p99(/login)<300ms", "p99", "/login", "", 300, true},
		{"p99(POST /login)<300ms", "p99", "/login", "POST", 300, true},
		{"p99>1s", "", "", "", 0, false},
		{"p98<1s", "", "", "", 0, false},
		{"mean<1s", "", "", "", 0, false},
		{"p99<fast", "", "", "", 0, false},
		{"errors<200%", "", "", "", 0, false},
		{"p99(login)<1s", "", "", "", 0, false},
		{"p99(/login<1s", "", "", "", 0, false},
	}
	for _, c := range cases {
		s, err := ParseSLO(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		if c.ok && (s.Metric != c.metric || s.Route != c.route || s.Method != c.method || s.Bound != c.bound) {
			t.Errorf("%q: got %+v", c.in, s)
		}
	}
}

func step(p99, errRate float64, routes ...Route) *Step {
	st := &Step{Sent: 1000, Completed: 1000 - int64(errRate*1000), Errors: int64(errRate * 1000), OfferedRPS: 100, AchievedRPS: 99}
	st.LatencyMS.P99 = p99
	st.Routes = routes
	return st
}

// route is a route of 100 requests, all with latency p99 ms (so its
// histogram agrees with its percentiles), errs of them failed.
func route(name string, p99 float64, errs int64) Route {
	return routeOf(name, 100, errs, map[float64]int64{p99: 100})
}

// routeOf is a route of n requests, errs of them failed, whose latencies
// are the counts of each value in ms.
func routeOf(name string, n, errs int64, latencies map[float64]int64) Route {
	h := NewHist()
	for ms, c := range latencies {
		for i := int64(0); i < c; i++ {
			if err := h.RecordValue(int64(ms * 1000)); err != nil {
				panic(err)
			}
		}
	}
	r := Route{Method: "GET", Route: name, Sent: n, Completed: n - errs, Errors: errs, Histogram: Encode(h)}
	r.LatencyMS = Summary(h)
	return r
}

func TestEvaluate(t *testing.T) {
	slos, _ := ParseSLOs([]string{"p99<500ms", "errors<1%", "p99(/login)<300ms"})
	cases := []struct {
		name       string
		st         *Step
		sat        float64
		violations int
		route      string
	}{
		{"pass", step(100, 0, route("/a", 100, 0), route("/login", 200, 0)), 0.9, 0, ""},
		{"p99 failed everywhere alike: no route named", step(900, 0, route("/a", 900, 0), route("/b", 950, 0)), 0.9, 1, ""},
		{"p99 failed on one route", step(600, 0, route("/a", 100, 0), route("/slow", 2000, 0)), 0.9, 1, "/slow"},
		{"errors concentrated on one route", step(100, 0.05, route("/a", 100, 0), route("/bad", 100, 50)), 0.9, 1, "/bad"},
		{"per-route SLO", step(100, 0, route("/a", 100, 0), route("/login", 400, 0)), 0.9, 1, "/login"},
		{"saturation", func() *Step { s := step(100, 0); s.AchievedRPS = 80; return s }(), 0.9, 1, ""},
	}
	for _, c := range cases {
		Evaluate(c.st, slos, c.sat)
		if len(c.st.Violations) != c.violations || c.st.Passed != (c.violations == 0) || c.st.FailedRoute != c.route {
			t.Errorf("%s: violations %v, passed %v, route %q; want %d violations, route %q",
				c.name, c.st.Violations, c.st.Passed, c.st.FailedRoute, c.violations, c.route)
		}
	}
}

func TestAnalyze(t *testing.T) {
	mk := func(scale float64, passed bool, achieved float64) Step {
		return Step{Scale: scale, Passed: passed, AchievedRPS: achieved, OfferedRPS: scale * 100, Sent: 100,
			Violations: map[bool][]string{false: {"p99 2s > 1s"}}[passed]}
	}
	f := &File{Kind: "ramp", Window: Window{RPS: 100}, Steps: []Step{mk(1, true, 100), mk(2, true, 200), mk(3, false, 240)}}
	f.Steps = append(f.Steps, Step{Scale: 2.5, Refinement: true, Passed: true, AchievedRPS: 245, OfferedRPS: 250, Sent: 100})
	Analyze(f)
	bp := f.BreakingPoint
	if bp == nil || bp.Scale != 3 || bp.LastGoodScale != 2 || bp.RefinedScale == nil || *bp.RefinedScale != 2.75 {
		t.Fatalf("breaking point %+v", bp)
	}
	if f.Capacity.RPS != 245 || f.Capacity.Scale != 2.45 || !f.Capacity.Reached {
		t.Fatalf("capacity %+v", f.Capacity)
	}
	// No failure: no breaking point, and capacity is only a lower bound.
	g := &File{Kind: "ramp", Window: Window{RPS: 100}, Steps: []Step{mk(1, true, 100), mk(2, true, 199)}}
	Analyze(g)
	if g.BreakingPoint != nil || g.Capacity.Reached || g.Capacity.Scale != 1.99 {
		t.Fatalf("no failure: %+v %+v", g.BreakingPoint, g.Capacity)
	}
	// A generator-limited step is never the breaking point.
	h := &File{Kind: "ramp", Window: Window{RPS: 100}, Steps: []Step{mk(1, true, 100), mk(2, false, 150)}}
	h.Steps[1].Generator = Generator{Limited: true, Notes: []string{"dispatch lag"}}
	Analyze(h)
	if h.BreakingPoint != nil || !h.Generator.Limited {
		t.Fatalf("generator-limited: %+v %+v", h.BreakingPoint, h.Generator)
	}
}

// TestParseSLOsExact: an empty list is no objective; the defaults are the
// CLI's to apply, so a results file without SLOs is read as it is.
func TestParseSLOsExact(t *testing.T) {
	if got, err := ParseSLOs(nil); err != nil || len(got) != 0 {
		t.Errorf("ParseSLOs(nil) = %v, %v; want none", got, err)
	}
	got, err := ParseSLOs(DefaultSLOs)
	if err != nil || len(got) != len(DefaultSLOs) {
		t.Fatalf("ParseSLOs(DefaultSLOs) = %v, %v", got, err)
	}
	for i := range got {
		if got[i].Text != DefaultSLOs[i] {
			t.Errorf("SLO %d: got %q, want %q", i, got[i].Text, DefaultSLOs[i])
		}
	}
}

func TestPercentilesMetric(t *testing.T) {
	p := Percentiles{P50: 1, P90: 2, P95: 3, P99: 4, P999: 5, Max: 6, Mean: 7}
	for i, name := range []string{"p50", "p90", "p95", "p99", "p999", "max", "mean"} {
		if v, ok := p.Metric(name); !ok || v != float64(i+1) {
			t.Errorf("Metric(%q) = %v, %v; want %d, true", name, v, ok, i+1)
		}
	}
	for _, name := range []string{"errors", "p98", "P99", ""} {
		if v, ok := p.Metric(name); ok {
			t.Errorf("Metric(%q) = %v, true; want false", name, v)
		}
	}
}
