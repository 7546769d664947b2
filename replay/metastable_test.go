package replay

import (
	"bufio"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// slotServer answers each request after its turn on one of slots workers,
// each holding it for work, first come first served, and never cancels
// queued work when the client goes away: a request whose client gave up
// is still worked on when its turn comes. Its capacity is slots/work.
type slotServer struct {
	slots int
	work  time.Duration
	epoch time.Time
	mu    sync.Mutex
	free  []time.Duration // when each slot is next free, since epoch
	got   atomic.Int64    // requests read
}

func newSlotServer(slots int, work time.Duration) *slotServer {
	return &slotServer{slots: slots, work: work, epoch: time.Now(), free: make([]time.Duration, slots)}
}

// backlog is how long a request arriving now would wait for a slot.
func (s *slotServer) backlog() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Since(s.epoch)
	lo := s.free[0]
	for _, f := range s.free {
		lo = min(lo, f)
	}
	return max(lo-now, 0)
}

func (s *slotServer) handle(w *bufio.Writer, _ string, _ int) bool {
	s.got.Add(1)
	s.mu.Lock()
	now := time.Since(s.epoch)
	best := 0
	for i, f := range s.free {
		if f < s.free[best] {
			best = i
		}
	}
	start := max(now, s.free[best])
	s.free[best] = start + s.work
	s.mu.Unlock()
	time.Sleep(time.Until(s.epoch.Add(start + s.work)))
	w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	return true
}

// TestMetastableFailure: a target of 2 slots × 20 ms (100 req/s) replayed
// at 50 req/s is pushed over at 3x, then brought back to 1x. With clients
// that time out after 500 ms and retry three times, it stays broken at 1x:
// every attempt waits longer than its client, the client retries, and the
// target does the work of all four attempts (amplification about 4, above
// capacity over the 1x rate, 2). Without retries it drains its backlog at
// its spare capacity and recovers within the time that takes. The server
// counts every attempt.
func TestMetastableFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s scenario")
	}
	path := testTape(t, 50, 6, 20*time.Millisecond, time.Second) // 50 req/s over ~6 s
	slos, _ := results.ParseSLOs([]string{"p99<400ms", "errors<1%"})
	run := func(t *testing.T, policy string) (*results.File, *slotServer, time.Duration) {
		srv := newSlotServer(2, 20*time.Millisecond)
		hs := newServer(t, srv.handle)
		p := loadPlan(t, path, hs.url(), "peak:2s")
		retry, err := ParseRetryPolicy(policy)
		if err != nil {
			t.Fatal(err)
		}
		var backlog atomic.Int64
		f, err := Ramp(context.Background(), p, RampOptions{
			From: 1, Step: 2, To: 3, StepDuration: 3 * time.Second, Saturation: 0.9,
			Recovery: 8 * time.Second, RecoveryWindow: 2 * time.Second, RecoveryAbort: AbortRule{Off: true},
			Settings: Settings{Target: hs.url(), Mode: Clone, Seed: 1, SLOs: slos, Abort: AbortRule{Off: true},
				LagBound: time.Second, Timeout: 20 * time.Second, ClientTimeout: 500 * time.Millisecond, Retry: retry},
			OnStepDone: func(st *results.Step) {
				if !st.Passed && !st.Recovery {
					backlog.Store(int64(srv.backlog()))
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return f, srv, time.Duration(backlog.Load())
	}
	t.Run("retries keep it broken", func(t *testing.T) {
		f, srv, _ := run(t, "exp:3/100ms/1s")
		if f.BreakingPoint == nil || f.BreakingPoint.Scale != 3 || f.Recovery == nil {
			t.Fatalf("breaking point %+v, recovery %+v: %s", f.BreakingPoint, f.Recovery, f.Verdict)
		}
		r := f.Recovery
		capacityOver1x := 100 / f.Window.RPS
		if r.Recovered || r.Amplification <= capacityOver1x {
			t.Fatalf("recovery %+v: want not recovered, amplification above %.2f", r, capacityOver1x)
		}
		var attempts int64
		for _, st := range f.Steps {
			attempts += st.Attempts
		}
		if got := srv.got.Load(); got != attempts {
			t.Fatalf("the target read %d requests, herd counted %d attempts", got, attempts)
		}
		t.Logf("%s", f.Verdict)
	})
	t.Run("without retries it recovers", func(t *testing.T) {
		f, _, backlog := run(t, "none")
		r := f.Recovery
		if r == nil || !r.Recovered || r.TimeToRecoverS == nil {
			t.Fatalf("recovery %+v: %s", r, f.Verdict)
		}
		// The backlog drains at the spare capacity (100 - 50 req/s of
		// 20 ms requests on 2 slots: half of each second), then a window
		// of good seconds shows it.
		spare := 0.5
		bound := backlog.Seconds()/spare + r.WindowS + 2
		if *r.TimeToRecoverS > bound {
			t.Fatalf("recovered after %.1f s; a backlog of %v drains in %.1f s (bound %.1f s)", *r.TimeToRecoverS, backlog, backlog.Seconds()/spare, bound)
		}
		if r.Amplification != 1 {
			t.Errorf("amplification %.2f without retries", r.Amplification)
		}
		t.Logf("backlog %v, %s", backlog, f.Verdict)
	})
}

// TestRetryAccounting: a target that fails the first two attempts of
// every request with 503 and answers the third: attempts are exactly
// three per request, retries are counted by trigger, and each request's
// latency runs from its first attempt to its last. A target that always
// fails makes every request give up after the policy's attempts.
func TestRetryAccounting(t *testing.T) { forEngines(t, testRetryAccounting) }

func testRetryAccounting(t *testing.T, eng Engine) {
	path := testTape(t, 10, 5, 30*time.Millisecond, 100*time.Millisecond) // 50 requests
	var mu sync.Mutex
	tries := map[string]int{}
	thirdTime := func(w *bufio.Writer, target string, _ int) bool {
		mu.Lock()
		tries[target]++
		n := tries[target]
		mu.Unlock()
		if n < 3 {
			w.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		} else {
			w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		return true
	}
	retry, _ := ParseRetryPolicy("fixed:3/20ms")
	hs := newServer(t, thirdTime)
	p := loadPlan(t, path, hs.url(), "all")
	f, err := Replay(context.Background(), p, ReplayOptions{Scale: 1,
		Settings: Settings{Target: hs.url(), Mode: Clone, Seed: 1, Abort: AbortRule{Off: true}, Retry: retry, Engine: eng}})
	if err != nil {
		t.Fatal(err)
	}
	st := f.Steps[0]
	if st.Sent != 50 || st.Completed != 50 || st.Errors != 0 || st.Attempts != 150 || st.Retries[Trigger5xx] != 100 || st.Amplification != 3 {
		t.Fatalf("sent %d completed %d errors %d attempts %d retries %v amplification %v; want 50, 50, 0, 150, 100 http_5xx, 3",
			st.Sent, st.Completed, st.Errors, st.Attempts, st.Retries, st.Amplification)
	}
	mu.Lock()
	total := 0
	for _, n := range tries {
		total += n
	}
	mu.Unlock()
	if total != 150 {
		t.Fatalf("the target read %d attempts, herd counted %d", total, st.Attempts)
	}
	// A request waited through two 20 ms retry delays at least.
	if st.LatencyMS.P50 < 40 || st.AttemptLatencyMS == nil || st.AttemptLatencyMS.P50 >= st.LatencyMS.P50 {
		t.Fatalf("request latency p50 %.1f ms, attempt latency %+v", st.LatencyMS.P50, st.AttemptLatencyMS)
	}

	always := newServer(t, func(w *bufio.Writer, _ string, _ int) bool {
		w.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		return true
	})
	p = loadPlan(t, path, always.url(), "all")
	f, err = Replay(context.Background(), p, ReplayOptions{Scale: 1,
		Settings: Settings{Target: always.url(), Mode: Clone, Seed: 1, Abort: AbortRule{Off: true}, Retry: retry, Engine: eng}})
	if err != nil {
		t.Fatal(err)
	}
	st = f.Steps[0]
	if st.Errors != 50 || st.ErrorClasses[ClassGaveUp] != 50 || st.Attempts != 200 || st.FirstErrors[ClassGaveUp] == "" {
		t.Fatalf("errors %d by class %v, attempts %d, first %v; want 50 gave_up of 200 attempts",
			st.Errors, st.ErrorClasses, st.Attempts, st.FirstErrors)
	}
}

// TestRetryCutByStop: a stop while clients wait to retry sends nothing
// more, and every request that was sent still has an outcome: its last
// attempt's.
func TestRetryCutByStop(t *testing.T) { forEngines(t, testRetryCutByStop) }

func testRetryCutByStop(t *testing.T, eng Engine) {
	path := testTape(t, 20, 3, 10*time.Millisecond, 50*time.Millisecond)
	always := newServer(t, func(w *bufio.Writer, _ string, _ int) bool {
		w.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		return true
	})
	retry, _ := ParseRetryPolicy("fixed:3/2s")
	p := loadPlan(t, path, always.url(), "all")
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	f, err := Replay(ctx, p, ReplayOptions{Scale: 1,
		Settings: Settings{Target: always.url(), Mode: Clone, Seed: 1, Abort: AbortRule{Off: true}, Retry: retry, Engine: eng}})
	if err != nil {
		t.Fatal(err)
	}
	st := f.Steps[0]
	if !st.Interrupted || st.Sent == 0 || st.Sent != st.Completed+st.Errors || st.Attempts != st.Sent || st.Sent+st.NotSent["stopped"] != st.Planned {
		t.Fatalf("interrupted %v: planned %d sent %d completed %d errors %d attempts %d not sent %v",
			st.Interrupted, st.Planned, st.Sent, st.Completed, st.Errors, st.Attempts, st.NotSent)
	}
	if st.ErrorClasses[ClassHTTP5xx] != st.Errors {
		t.Fatalf("errors by class %v: a request cut off while waiting to retry fails with its last attempt's class", st.ErrorClasses)
	}
}
