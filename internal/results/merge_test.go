package results

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herd-replay/herd/internal/golden"
)

// simReq is one request as replay's aggregator sees it, on a step's clock.
type simReq struct {
	step, route      int
	due, sent, done  int64 // ns from the start of the step
	status           int
	class            string // error class, "" for a usable response
	mismatch, unsent bool
}

var simRoutes = [][2]string{{"GET", "/api/items/:id"}, {"POST", "/login"}, {"GET", "/api/search"}}

// simulate draws requests for two steps, the second slower and failing
// more, from a seeded source: a known set of latencies.
func simulate(n int) []simReq {
	rng := rand.New(rand.NewPCG(6, 6))
	var out []simReq
	for step := range 2 {
		for range n {
			r := simReq{step: step, route: rng.IntN(len(simRoutes)), due: int64(rng.Float64() * 10e9)}
			if rng.Float64() < 0.005 {
				r.unsent = true
				out = append(out, r)
				continue
			}
			r.sent = r.due + int64(rng.ExpFloat64()*float64(50*time.Microsecond))
			service := int64(math.Exp(rng.NormFloat64()*0.6+math.Log(float64(8*time.Millisecond)))) * int64(step*6+1)
			if r.route == 1 {
				service *= 3
			}
			r.done = r.sent + service
			r.status = 200
			switch x := rng.Float64(); {
			case x < 0.01*float64(step*4+1):
				r.class, r.status = "http_5xx", 503
			case x < 0.012*float64(step*4+1):
				r.class, r.status = "timeout", 0
			case rng.Float64() < 0.02:
				r.mismatch, r.status = true, 404
			}
			out = append(out, r)
		}
	}
	return out
}

// build aggregates requests into a results file the way replay/aggregate.go
// does: latencies of requests that got a response, by due second in the
// timeline, successes counted by completion time.
func build(reqs []simReq, shard string) *File {
	const dur = 10.0
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f := &File{
		Schema: Schema, Kind: "ramp", Target: "http://127.0.0.1:8080", Tape: "peak.tape", StartedAt: start,
		Window: Window{Spec: "peak:10s", Start: start.Add(-time.Hour), DurationS: dur, Skipped: Counts{}},
		Params: Params{ScaleMode: "clone", Pacing: "session", TimeoutS: 5, StepS: dur, SLOs: []string{"p99<60ms", "errors<2%"},
			Saturation: 0.9, MaxConns: 100, MaxInflight: 100, Seed: 1, AbortOn: "off", Shard: shard, GOMAXPROCS: 2},
	}
	for step := range 2 {
		st := Step{Scale: float64(step + 1), StartedAt: start.Add(time.Duration(step) * 15 * time.Second), DurationS: dur,
			ErrorClasses: Counts{}, NotSent: Counts{}, Generator: Generator{Notes: []string{}}}
		lat, svc, ttfb, lag, disp := NewHist(), NewHist(), NewHist(), NewHist(), NewHist()
		routeHists := make([]*hdr.Histogram, len(simRoutes))
		routes := make([]Route, len(simRoutes))
		secs := map[int64]*Second{}
		secHists := map[int64]*hdr.Histogram{}
		second := func(t int64) *Second {
			i := t / int64(time.Second)
			if secs[i] == nil {
				secs[i] = &Second{T: i}
				secHists[i] = NewTimelineHist()
			}
			return secs[i]
		}
		for _, r := range reqs {
			if r.step != step {
				continue
			}
			st.Planned++
			if r.unsent {
				st.NotSent["max_inflight"]++
				continue
			}
			f.Window.Requests++
			failed := r.class != ""
			if !failed && r.done < int64(dur*1e9) {
				st.Good++
				second(r.done).Finished++
			}
			st.Sent++
			// The fault counters, drawn from what is already random.
			if r.class != "timeout" || r.due%3 != 0 {
				st.Written++ // a third of the timeouts are connect timeouts
			}
			if r.due%97 == 0 {
				st.Retried++
			}
			if r.due%89 == 0 {
				st.Unsolicited++
			}
			rt := &routes[r.route]
			rt.Sent++
			sec := second(r.due)
			sec.Sent++
			if failed {
				st.Errors++
				st.ErrorClasses[r.class]++
				if st.FirstErrors == nil {
					st.FirstErrors = map[string]string{}
				}
				if _, ok := st.FirstErrors[r.class]; !ok {
					st.FirstErrors[r.class] = "why requests fail with " + r.class
				}
				rt.Errors++
				sec.Errors++
			} else {
				st.Completed++
				rt.Completed++
				sec.Completed++
				if r.mismatch {
					st.Mismatches++
					rt.Mismatches++
					sec.Mismatches++
				}
			}
			if r.status != 0 {
				Record(lat, r.done-r.due)
				Record(svc, r.done-r.sent)
				Record(ttfb, (r.done-r.sent)/2)
				if routeHists[r.route] == nil {
					routeHists[r.route] = NewHist()
				}
				Record(routeHists[r.route], r.done-r.due)
				Record(secHists[r.due/int64(time.Second)], r.done-r.due)
			}
			Record(lag, r.sent-r.due)
			Record(disp, (r.sent-r.due)/3)
		}
		f.Window.Conns += 10
		st.Histograms = Histograms{Latency: Encode(lat), Service: Encode(svc), TTFB: Encode(ttfb), ScheduleLag: Encode(lag), DispatchLag: Encode(disp)}
		for i, rt := range routes {
			if rt.Sent == 0 {
				continue
			}
			rt.Method, rt.Route = simRoutes[i][0], simRoutes[i][1]
			if routeHists[i] != nil {
				rt.Histogram = Encode(routeHists[i])
			}
			st.Routes = append(st.Routes, rt)
		}
		for t := int64(0); t <= 10; t++ {
			if s := secs[t]; s != nil {
				s.Histogram = Encode(secHists[t])
				st.Timeline = append(st.Timeline, *s)
			}
		}
		if err := Summarize(&st); err != nil {
			panic(err)
		}
		f.Steps = append(f.Steps, st)
	}
	f.Window.RPS = Rate(f.Window.Requests, dur)
	slos, _ := ParseSLOs(f.Params.SLOs)
	for i := range f.Steps {
		Evaluate(&f.Steps[i], slos, f.Params.Saturation)
	}
	Analyze(f)
	return f
}

// TestMergeHalvesEqualWhole records the same known latencies into two
// shards and into one whole run: merging the shards gives the whole run,
// step for step, route for route and second for second.
func TestMergeHalvesEqualWhole(t *testing.T) {
	reqs := simulate(4000)
	var a, b []simReq
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range reqs {
		if rng.IntN(2) == 0 {
			a = append(a, r)
		} else {
			b = append(b, r)
		}
	}
	whole := build(reqs, "")
	merged, err := Merge(build(a, "0/2"), build(b, "1/2"))
	if err != nil {
		t.Fatal(err)
	}
	if merged.Params.Shard != "0/2,1/2" {
		t.Errorf("shards %q", merged.Params.Shard)
	}
	if merged.Window.Requests != whole.Window.Requests || merged.Window.RPS != whole.Window.RPS {
		t.Errorf("window: got %d requests at %v req/s, want %d at %v", merged.Window.Requests, merged.Window.RPS, whole.Window.Requests, whole.Window.RPS)
	}
	for i := range whole.Steps {
		got, want := merged.Steps[i], whole.Steps[i]
		if got.Sent != want.Sent || got.Errors != want.Errors || got.Good != want.Good || got.Planned != want.Planned {
			t.Errorf("step %d counts: got sent %d errors %d good %d planned %d, want %d %d %d %d", i+1,
				got.Sent, got.Errors, got.Good, got.Planned, want.Sent, want.Errors, want.Good, want.Planned)
		}
		if got.LatencyMS != want.LatencyMS {
			t.Errorf("step %d latency: got %+v, want %+v", i+1, got.LatencyMS, want.LatencyMS)
		}
		// Everything, down to every route and timeline second and the
		// encoded histograms, is what the whole run recorded.
		if !reflect.DeepEqual(got, want) {
			t.Errorf("step %d: merged differs from the whole run\n got %+v\nwant %+v", i+1, got, want)
		}
	}
	if merged.Verdict != whole.Verdict || !reflect.DeepEqual(merged.BreakingPoint, whole.BreakingPoint) || merged.Capacity != whole.Capacity {
		t.Errorf("analysis: got %q %+v %+v, want %q %+v %+v", merged.Verdict, merged.BreakingPoint, merged.Capacity,
			whole.Verdict, whole.BreakingPoint, whole.Capacity)
	}
	if st := whole.Steps[1]; st.Written == st.Sent || st.Retried == 0 || st.Unsolicited == 0 || len(st.FirstErrors) != 2 {
		t.Fatalf("the simulation should count every fault counter: %+v", st)
	}
	if whole.BreakingPoint == nil || whole.Steps[0].Errors == 0 || whole.Steps[1].Mismatches == 0 {
		t.Fatalf("the simulation should fail its second step, with errors and mismatches: %+v", whole.Steps[1].Violations)
	}

	// And the merged percentiles are those of the exact latencies, within
	// the histograms' precision (three significant digits, whole µs).
	for step := range 2 {
		var exact []float64
		for _, r := range reqs {
			if r.step == step && !r.unsent && r.status != 0 {
				exact = append(exact, float64((r.done-r.due)/1000))
			}
		}
		slices.Sort(exact)
		for _, q := range []struct {
			p   float64
			got float64
		}{{50, merged.Steps[step].LatencyMS.P50}, {99, merged.Steps[step].LatencyMS.P99}, {99.9, merged.Steps[step].LatencyMS.P999}} {
			// The rank hdrhistogram uses: the nearest, at least the first.
			rank := max(int(q.p/100*float64(len(exact))+0.5), 1)
			want := exact[rank-1] / 1000
			if math.Abs(q.got-want) > want*0.001+0.001 {
				t.Errorf("step %d p%v: got %v ms, exact %v ms", step+1, q.p, q.got, want)
			}
		}
	}
}

func TestMergeRefuses(t *testing.T) {
	reqs := simulate(200)
	cases := []struct {
		name   string
		change func(f *File)
		want   string
	}{
		{"target", func(f *File) { f.Target = "http://127.0.0.1:9" }, "target differs"},
		{"tape", func(f *File) { f.Tape = "other.tape" }, "tape differs"},
		{"window", func(f *File) { f.Window.Spec = "peak:60s" }, "window differs"},
		{"window start", func(f *File) { f.Window.Start = f.Window.Start.Add(time.Second) }, "window start differs"},
		{"slos", func(f *File) { f.Params.SLOs = []string{"p99<1s"} }, "--slo differs"},
		{"seed", func(f *File) { f.Params.Seed = 2 }, "--seed differs"},
		{"fewer steps", func(f *File) { f.Steps = f.Steps[:1] }, "steps differ: [1x 2x] and [1x]"},
		{"other scale", func(f *File) { f.Steps[1].Scale = 2.5 }, "step 2 differs: 2x for 10s and 2.5x"},
		{"refinement", func(f *File) { f.Steps[1].Refinement = true }, "~2x"},
		{"same shard twice", func(f *File) { f.Params.Shard = "0/2" }, "shard 0/2 appears twice"},
		{"other split", func(f *File) { f.Params.Shard = "1/3" }, "different splits"},
	}
	for _, c := range cases {
		a, b := build(reqs, "0/2"), build(reqs, "1/2")
		c.change(b)
		_, err := Merge(a, b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
	// Without shards, one start time is one run.
	if _, err := Merge(build(reqs, ""), build(reqs, "")); err == nil || !strings.Contains(err.Error(), "the same run twice") {
		t.Errorf("the same run twice: got %v", err)
	}
	// A histogram of another geometry cannot be merged without loss.
	a, b := build(reqs, "0/2"), build(reqs, "1/2")
	h := hdr.New(1, 1000, 2)
	h.RecordValue(5)
	b.Steps[0].Histograms.Latency = Encode(h)
	if _, err := Merge(a, b); err == nil || !strings.Contains(err.Error(), "herd writes") {
		t.Errorf("foreign histogram: got %v", err)
	}
}

// TestSummarizeMatchesReplay recomputes every step of real runs from their
// counters and histograms: the figures are those replay wrote.
func TestSummarizeMatchesReplay(t *testing.T) {
	for _, p := range golden.Glob(t, "../../testdata/results/*.json") {
		f, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Steps {
			want := f.Steps[i]
			got := want
			got.Routes = slices.Clone(want.Routes)
			got.Timeline = slices.Clone(want.Timeline)
			got.OfferedRPS, got.AchievedRPS, got.ErrorRate, got.MismatchRate = 0, 0, 0, 0
			got.LatencyMS, got.ServiceMS, got.TTFBMS, got.ScheduleLagMS, got.DispatchLagMS = Percentiles{}, Percentiles{}, Percentiles{}, Percentiles{}, Percentiles{}
			slices.Reverse(got.Routes)
			for j := range got.Routes {
				got.Routes[j].LatencyMS, got.Routes[j].ErrorRate = Percentiles{}, 0
			}
			for j := range got.Timeline {
				got.Timeline[j].P50MS, got.Timeline[j].P99MS, got.Timeline[j].MaxMS = 0, 0, 0
			}
			if err := Summarize(&got); err != nil {
				t.Fatalf("%s step %d: %v", p, i+1, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s step %d: recomputed\n%+v\nwant\n%+v", filepath.Base(p), i+1, got, want)
			}
		}
		// Merging a file alone changes nothing but what merge defines.
		m, err := Merge(f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Steps, f.Steps) || m.Verdict != f.Verdict {
			t.Errorf("%s: merged alone, the steps or the verdict changed:\n%s\n%s", filepath.Base(p), m.Verdict, f.Verdict)
		}
	}
}

func TestDecode(t *testing.T) {
	h := NewHist()
	Record(h, 1_500_000)
	good := Encode(h)
	foreign := hdr.New(1, 1_000_000, 3)
	foreign.RecordValue(10)
	cases := []struct {
		name, in, err string
	}{
		{"empty is empty", "", ""},
		{"herd's", good, ""},
		{"timeline", Encode(NewTimelineHist()), ""},
		{"not base64", "HISTF!!!!!!!!!!!!!", "not base64"},
		{"short", "HIST", "too short"},
		{"other cookie", "AAAAAAAAAAAAAAAA", "cookie"},
		{"truncated", good[:len(good)-8], "decode histogram"},
		{"other geometry", Encode(foreign), "herd writes"},
		{"huge", strings.Repeat("A", maxEncoded+1), "more than"},
	}
	for _, c := range cases {
		h, err := Decode(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.err)
		case c.err == "" && c.in == good && h.TotalCount() != 1:
			t.Errorf("%s: %d values", c.name, h.TotalCount())
		}
	}
}

func TestRouteViolations(t *testing.T) {
	slos, _ := ParseSLOs([]string{"p99<500ms", "errors<1%", "p50(POST /login)<100ms"})
	cases := []struct {
		r    Route
		want []string
	}{
		{route("/a", 100, 0), nil},
		{route("/a", 900, 0), []string{"p99 900ms > 500ms"}},
		{route("/a", 100, 5), []string{"errors 5% > 1%"}},
		{Route{Method: "POST", Route: "/login", Sent: 100, Completed: 100, LatencyMS: Percentiles{P50: 150, P99: 200}},
			[]string{"p50 150ms > 100ms on POST /login"}},
		{Route{Method: "GET", Route: "/login", Sent: 100, Completed: 100, LatencyMS: Percentiles{P50: 150, P99: 200}}, nil},
		{Route{Route: "/thin", Sent: MinRouteSample - 1, Completed: 10, LatencyMS: Percentiles{P99: 5000}}, nil},
	}
	for _, c := range cases {
		if got := RouteViolations(&c.r, slos); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s: got %q, want %q", c.r.Method, c.r.Route, got, c.want)
		}
	}
}

// TestSortedRoutesTotal: routes come out in one order whatever order they
// came in (merge collects them from a map), ties in count broken by method,
// then route.
func TestSortedRoutesTotal(t *testing.T) {
	want := []Route{
		{Method: "GET", Route: "/b", Sent: 9},
		{Method: "GET", Route: "/a/b", Sent: 5},
		{Method: "GET", Route: "/b", Sent: 5},
		{Method: "GET-X", Route: "/a", Sent: 5},
		{Method: "POST", Route: "/a", Sent: 5},
		{Method: "GET", Route: "/a", Sent: 1},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		in := slices.Clone(want)
		rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		if got := SortedRoutes(in); !reflect.DeepEqual(got, want) {
			t.Fatalf("SortedRoutes(%v) = %v, want %v", in, got, want)
		}
	}
}
