package replay

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// TestProgressMeasured: the snapshot's Measured is absent during the
// settle time, grows with the run, and at the end is the step its results
// report, count for count and percentile for percentile, routes included:
// the live verdict judges what the results will say.
func TestProgressMeasured(t *testing.T) {
	srv := newServer(t, func(w *bufio.Writer, target string, n int) bool {
		if strings.HasSuffix(target, "/r/3") {
			fmt.Fprintf(w, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
			return true
		}
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	path := testTape(t, 30, 8, 40*time.Millisecond, 150*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	var mu sync.Mutex
	var snaps []Progress
	o := Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 3*time.Second), Settle: time.Second, Abort: AbortRule{Off: true},
		ProgressEvery: 50 * time.Millisecond, Progress: func(pr Progress) {
			mu.Lock()
			snaps = append(snaps, pr)
			mu.Unlock()
		}}
	st, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(snaps) < 10 || !snaps[len(snaps)-1].Done {
		t.Fatalf("%d snapshots, the last done: %v", len(snaps), len(snaps) > 0 && snaps[len(snaps)-1].Done)
	}
	var last *results.Step
	for _, s := range snaps {
		switch {
		case s.Elapsed < o.Settle && s.Measured != nil:
			t.Fatalf("a measured step at %v, during the settle time", s.Elapsed)
		case s.Measured == nil && s.Elapsed >= o.Settle:
			t.Fatalf("no measured step at %v, after the settle time", s.Elapsed)
		case s.Measured != nil && last != nil && s.Measured.Sent < last.Sent:
			t.Fatalf("measured sent went down from %d to %d", last.Sent, s.Measured.Sent)
		}
		if s.Measured != nil {
			last = s.Measured
		}
	}
	m := snaps[len(snaps)-1].Measured
	if m.Sent != st.Sent || m.Completed != st.Completed || m.Errors != st.Errors || m.Good != st.Good || st.Errors == 0 {
		t.Errorf("measured sent %d completed %d errors %d good %d; the step: %d %d %d %d",
			m.Sent, m.Completed, m.Errors, m.Good, st.Sent, st.Completed, st.Errors, st.Good)
	}
	if m.LatencyMS != st.LatencyMS || m.ErrorRate != st.ErrorRate {
		t.Errorf("measured latency %+v errors %v; the step: %+v %v", m.LatencyMS, m.ErrorRate, st.LatencyMS, st.ErrorRate)
	}
	var routeSent, compared int64
	for _, r := range m.Routes {
		routeSent += r.Sent
		if r.Sent < results.MinRouteSample {
			continue
		}
		compared++
		// The route's figures are the results', but the mean, which no
		// SLO bounds and the live view does not read.
		for _, sr := range st.Routes {
			if sr.Method == r.Method && sr.Route == r.Route {
				want := sr.LatencyMS
				want.Mean = 0
				if r.LatencyMS != want || r.LatencyMS.P99 == 0 {
					t.Errorf("route %s: measured %+v, the step's %+v", r.Route, r.LatencyMS, sr.LatencyMS)
				}
			}
		}
	}
	if compared == 0 {
		t.Error("no route large enough to compare")
	}
	if routeSent != st.Sent {
		t.Errorf("the measured routes sent %d, the step %d", routeSent, st.Sent)
	}
	// The live verdict and the final one agree.
	slos, _ := results.ParseSLOs([]string{"errors<1%"})
	live := *m
	results.Evaluate(&live, slos, 0)
	if live.Passed || len(live.Violations) != 1 || st.Passed {
		results.Evaluate(st, slos, 0)
		t.Errorf("live verdict %v %q, the step's %v %q", live.Passed, live.Violations, st.Passed, st.Violations)
	}
}

// BenchmarkMeasuredSoFar is the cost of one Progress.Measured, computed
// once a second: 50 routes (the plan's default bound) of 20,000 latencies
// each, spread from 1 ms to 2 s.
func BenchmarkMeasuredSoFar(b *testing.B) {
	const routes = 50
	a := &aggregator{r: &run{p: &Plan{}, s: Schedule{Scale: 1}}, end: int64(time.Minute), latency: results.NewHist(), routes: make([]routeAgg, routes)}
	for i := range a.routes {
		a.r.p.Routes = append(a.r.p.Routes, RouteKey{Method: "GET", Route: fmt.Sprintf("/r/%d", i)})
		r := &a.routes[i]
		r.hist = results.NewHist()
		for j := int64(0); j < 20000; j++ {
			ns := int64(time.Millisecond) + j*int64(100*time.Microsecond)
			results.Record(r.hist, ns)
			results.Record(a.latency, ns)
		}
		r.sent, r.completed = 20000, 20000
		a.sent += 20000
		a.completed += 20000
	}
	b.ReportAllocs()
	for b.Loop() {
		a.measuredSoFar(int64(30*time.Second), true)
	}
}
