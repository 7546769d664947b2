package replay

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// runH2Emulated replays an HTTP/2 tape of 4 connections of 5 streams (20
// requests) once, at 1x, with client emulation, against handler on h2c.
func runH2Emulated(t *testing.T, ctx context.Context, handler http.HandlerFunc, o Options) (*results.Step, *h2Target) {
	t.Helper()
	path := h2Tape(t, 4, 5)
	srv := newH2Target(t, nil, handler, nil)
	target, _ := url.Parse(srv.url)
	p := loadPlanWith(t, path, PlanOptions{Target: target, HTTP2: true})
	o.Target, o.Schedule = target, NewSchedule(Clone, 1, 1, p.Length, 0)
	o.Abort = AbortRule{Off: true}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	st, err := Run(ctx, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

// TestH2Retries: the retry policy on HTTP/2. A target that answers 503
// twice to every path, then 200, receives exactly three streams per
// request, on the recorded connections (a retry is a new stream on the
// same connection, as gRPC and browsers send it), and herd counts what it
// received: 60 attempts of 20 requests, 40 retries on http_5xx, none an
// error. A target that always answers 503 gets the first attempt and
// three retries of each, and every request ends given up.
func TestH2Retries(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	thirdTime := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tries[r.URL.Path]++
		n := tries[r.URL.Path]
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}
	retry, err := ParseRetryPolicy("fixed:3/20ms")
	if err != nil {
		t.Fatal(err)
	}
	st, srv := runH2Emulated(t, context.Background(), thirdTime, Options{Protocol: ProtoH2C, Retry: retry})
	paths, protos := srv.received()
	if st.Sent != 20 || st.Completed != 20 || st.Errors != 0 || st.Attempts != 60 || st.Retries[Trigger5xx] != 40 || st.Amplification != 3 {
		t.Errorf("herd: sent %d completed %d errors %d %v attempts %d retries %v amplification %v; want 20, 20, 0, 60, 40 http_5xx, 3",
			st.Sent, st.Completed, st.Errors, st.ErrorClasses, st.Attempts, st.Retries, st.Amplification)
	}
	if len(paths) != 60 || protos["HTTP/2.0"] != 60 || srv.conns.Load() != 4 {
		t.Errorf("the target received %d requests %v on %d connections; want 60 HTTP/2.0 on the 4 recorded", len(paths), protos, srv.conns.Load())
	}
	// A request waited through two 20 ms retry delays.
	if st.LatencyMS.P50 < 40 || st.AttemptLatencyMS == nil || st.AttemptLatencyMS.P50 >= st.LatencyMS.P50 {
		t.Errorf("request latency p50 %.1f ms, attempt latency %+v", st.LatencyMS.P50, st.AttemptLatencyMS)
	}
	for _, n := range st.Generator.Notes {
		t.Log(n)
	}

	always := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
	st, srv = runH2Emulated(t, context.Background(), always, Options{Protocol: ProtoH2C, Retry: retry})
	paths, _ = srv.received()
	if st.Errors != 20 || st.ErrorClasses[ClassGaveUp] != 20 || st.Attempts != 80 || int64(len(paths)) != st.Attempts {
		t.Errorf("errors %d by class %v, attempts %d, the target received %d; want 20 gave_up of 80 attempts, all received",
			st.Errors, st.ErrorClasses, st.Attempts, len(paths))
	}
}

// TestH2ClientTimeout: the emulated client gives up on a stream after
// --client-timeout and resets it (the target sees its request cancelled),
// then retries as its policy says; every attempt reaches the target, and
// the slow answers are client_timeout, never herd's own timeout.
func TestH2ClientTimeout(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
			io.WriteString(w, "late")
		case <-r.Context().Done():
		}
	}
	st, srv := runH2Emulated(t, context.Background(), slow, Options{Protocol: ProtoH2C, ClientTimeout: 100 * time.Millisecond})
	if st.Sent != 20 || st.ErrorClasses[ClassClientTimeout] != 20 || st.Attempts != 20 || st.FirstErrors[ClassClientTimeout] == "" {
		t.Errorf("sent %d errors %v attempts %d first %v; want 20 client_timeout", st.Sent, st.ErrorClasses, st.Attempts, st.FirstErrors)
	}
	waitFor(t, func() bool { return srv.cancels.Load() == 20 }, "the target to see 20 streams reset")

	retry, err := ParseRetryPolicy("exp:2/20ms/100ms")
	if err != nil {
		t.Fatal(err)
	}
	st, srv = runH2Emulated(t, context.Background(), slow, Options{Protocol: ProtoH2C, ClientTimeout: 100 * time.Millisecond, Retry: retry})
	paths, _ := srv.received()
	if st.Sent != 20 || st.Attempts != 60 || int64(len(paths)) != 60 || st.ErrorClasses[ClassGaveUp] != 20 || st.Retries[TriggerClientTimeout] != 40 {
		t.Errorf("sent %d attempts %d (the target received %d) errors %v retries %v; want 60 attempts received, 40 retried on client_timeout, 20 given up",
			st.Sent, st.Attempts, len(paths), st.ErrorClasses, st.Retries)
	}
	waitFor(t, func() bool { return srv.cancels.Load() == 60 }, "the target to see 60 streams reset")
}

// TestH2RetryCutByStop: a stop while HTTP/2 clients wait to retry sends
// nothing more, and every request sent has an outcome: its last attempt's.
func TestH2RetryCutByStop(t *testing.T) {
	always := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
	retry, err := ParseRetryPolicy("fixed:3/2s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	st, srv := runH2Emulated(t, ctx, always, Options{Protocol: ProtoH2C, Retry: retry})
	paths, _ := srv.received()
	if !st.Interrupted || st.Sent == 0 || st.Sent != st.Completed+st.Errors || st.Attempts != st.Sent || int64(len(paths)) != st.Attempts {
		t.Errorf("interrupted %v: planned %d sent %d completed %d errors %d attempts %d (received %d) not sent %v",
			st.Interrupted, st.Planned, st.Sent, st.Completed, st.Errors, st.Attempts, len(paths), st.NotSent)
	}
	if st.ErrorClasses[ClassHTTP5xx] != st.Errors {
		t.Errorf("errors by class %v: a request cut off while waiting to retry fails with its last attempt's class", st.ErrorClasses)
	}
}

// waitFor polls cond for up to 2 s: the target's handlers see a reset
// stream a moment after herd has reported it.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(2 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("waited 2 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestH2MaxRate: the rate cap holds on HTTP/2 as on HTTP/1.x: the target
// receives no more streams than the cap lets through, and herd counts
// the rest as not sent (max_rate), every request one or the other.
func TestH2MaxRate(t *testing.T) {
	path := h2Tape(t, 8, 25) // 200 streams over 0.35 s
	srv := newH2Target(t, nil, nil, nil)
	target, _ := url.Parse(srv.url)
	p := loadPlanWith(t, path, PlanOptions{Target: target, HTTP2: true})
	const rate = 100.0
	start := time.Now()
	f, err := Replay(context.Background(), p, ReplayOptions{Settings: Settings{Target: target, MaxRate: rate, Protocol: ProtoH2C}, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start).Seconds()
	st := &f.Steps[0]
	paths, protos := srv.received()
	got := int64(len(paths))
	if bound := int64(rate*elapsed) + capBurst(rate); got > bound || got == 0 {
		t.Errorf("the target got %d streams in %.2f s under a cap of %g/s; want at most %d", got, elapsed, rate, bound)
	}
	if int64(protos["HTTP/2.0"]) != got || st.Sent != got || st.Sent+st.NotSent["max_rate"] != 200 {
		t.Errorf("herd sent %d, not sent %v; the target got %d %v of 200", st.Sent, st.NotSent, got, protos)
	}
}
