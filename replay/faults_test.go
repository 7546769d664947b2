package replay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// runAgainst replays the standard test tape (conns × perConn requests)
// against a server answering with handle.
func runAgainst(t *testing.T, conns, perConn int, o Options, handle func(w *bufio.Writer, target string, n int) bool) (*server, *Plan, Options) {
	t.Helper()
	srv := newServer(t, handle)
	path := testTape(t, conns, perConn, 10*time.Millisecond, 30*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	o.Target = srv.url()
	if o.Schedule.Scale == 0 {
		o.Schedule = NewSchedule(Clone, 1, 1, p.Length, 0)
	}
	return srv, p, o
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name    string
		handle  func(w *bufio.Writer, target string, n int) bool
		class   string
		timeout time.Duration
	}{
		{"closed", func(w *bufio.Writer, _ string, _ int) bool { return false }, ClassClosed, 0},
		{"reset", nil, ClassReset, 0},
		{"garbage", func(w *bufio.Writer, _ string, _ int) bool {
			w.WriteString("SSH-2.0-OpenSSH_9.6\r\n\r\n")
			return true
		}, ClassMalformed, 0},
		{"huge header", func(w *bufio.Writer, _ string, _ int) bool {
			w.WriteString("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n")
			return true
		}, ClassMalformed, 0},
		{"silent", func(w *bufio.Writer, _ string, _ int) bool {
			time.Sleep(3 * time.Second)
			return false
		}, ClassTimeout, 300 * time.Millisecond},
		{"500", func(w *bufio.Writer, _ string, _ int) bool {
			w.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
			return true
		}, ClassHTTP5xx, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			handle := c.handle
			if handle == nil { // the reset case
				handle = func(w *bufio.Writer, _ string, _ int) bool { return false }
			}
			srv, p, o := runAgainst(t, 3, 2, Options{Timeout: c.timeout, Abort: AbortRule{Off: true}}, handle)
			srv.reset.Store(c.handle == nil)
			start := time.Now()
			st, err := Run(context.Background(), p, o)
			if err != nil {
				t.Fatal(err)
			}
			if st.Sent != 6 || st.Errors != 6 || st.Completed != 0 || st.ErrorClasses[c.class] != 6 {
				t.Fatalf("sent %d errors %d completed %d classes %v; want 6 errors of class %s", st.Sent, st.Errors, st.Completed, st.ErrorClasses, c.class)
			}
			if c.timeout > 0 && time.Since(start) > 3*time.Second {
				t.Fatalf("timeout %v not honoured: the run took %v", c.timeout, time.Since(start))
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	srv, p, o := runAgainst(t, 2, 2, Options{Abort: AbortRule{Off: true}}, nil)
	srv.ln.Close()
	st, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 4 || st.ErrorClasses[ClassConnectRefused] != 4 {
		t.Fatalf("sent %d, classes %v", st.Sent, st.ErrorClasses)
	}
}

// TestHugeBody streams a 1 GB body: herd reads and discards it, the
// timeout cuts it off, and memory does not grow with it.
func TestHugeBody(t *testing.T) {
	chunk := strings.Repeat("x", 64<<10)
	handle := func(w *bufio.Writer, _ string, _ int) bool {
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
		for sent := 0; sent < 1<<30; sent += len(chunk) {
			if _, err := w.WriteString(chunk); err != nil {
				return false
			}
		}
		return false
	}
	_, p, o := runAgainst(t, 1, 1, Options{Timeout: 500 * time.Millisecond, Abort: AbortRule{Off: true}}, handle)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if st.ErrorClasses[ClassTimeout] != 1 {
		t.Fatalf("classes %v, want a timeout", st.ErrorClasses)
	}
	if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 64<<20 {
		t.Fatalf("reading the body allocated %d MB", grew>>20)
	}
}

// TestRedirectNotFollowed: a 302 to another host is a response like any
// other; nothing else is contacted.
func TestRedirectNotFollowed(t *testing.T) {
	other := newServer(t, nil)
	loc := other.url().String() + "/stolen"
	srv, p, o := runAgainst(t, 2, 2, Options{}, func(w *bufio.Writer, _ string, _ int) bool {
		fmt.Fprintf(w, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n", loc)
		return true
	})
	st, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(other.arrivals()) != 0 {
		t.Fatalf("the redirect target got %d requests", len(other.arrivals()))
	}
	if len(srv.arrivals()) != 4 || st.Mismatches != 4 || st.Errors != 0 {
		t.Fatalf("target got %d, mismatches %d, errors %d", len(srv.arrivals()), st.Mismatches, st.Errors)
	}
}

// TestCoordinatedOmission: a server that stalls for a second every ten
// seconds. Every request due during a stall must show it in its latency
// (measured from when it was due): at least the rest of the stall. Service
// time (from the actual send) shows it only for the request that hit the
// stall; the ones queued behind it were sent after it and are fast.
func TestCoordinatedOmission(t *testing.T) {
	var stallMu sync.Mutex
	var stalls []time.Time // when each stall started
	begin := time.Now()
	handle := func(w *bufio.Writer, target string, n int) bool {
		stallMu.Lock()
		next := begin.Add(time.Duration(len(stalls))*10*time.Second + 3*time.Second)
		stall := time.Now().After(next)
		if stall {
			stalls = append(stalls, time.Now())
		}
		stallMu.Unlock()
		if stall {
			time.Sleep(time.Second)
		}
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	}
	// One connection, a request every 20 ms for 15 s: two stalls.
	srv := newServer(t, handle)
	path := testTape(t, 1, 750, 0, 20*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	var raw bytes.Buffer
	begin = time.Now()
	// The lag bound is generous for a loaded CI machine; misattributing the
	// target's 1 s stalls to herd would still exceed it twentyfold.
	st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Raw: &raw,
		LagBound: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Completed != 750 || len(stalls) != 2 {
		t.Fatalf("completed %d, stalls %d", st.Completed, len(stalls))
	}
	lines := readRaw(t, &raw)
	// The run's time zero is the first request's due time, about begin.
	t0 := begin
	inStall, hit := 0, 0
	for _, l := range lines {
		due := t0.Add(time.Duration(l.DueMS * float64(time.Millisecond)))
		for _, s := range stalls {
			end := s.Add(time.Second)
			if due.Before(s.Add(-5*time.Millisecond)) || !due.Before(end.Add(-50*time.Millisecond)) {
				continue
			}
			inStall++
			rest := end.Sub(due)
			if got := time.Duration(l.LatencyMS * float64(time.Millisecond)); got < rest-60*time.Millisecond {
				t.Errorf("request due %v before the stall ended has latency %v: the stall is hidden", rest, got)
			}
			if l.ServiceMS > 500 {
				hit++
			}
		}
	}
	if inStall < 80 {
		t.Fatalf("only %d requests were due during the stalls", inStall)
	}
	if hit > 2 {
		t.Errorf("%d requests show the stall in their service time; only the two that hit a stall should", hit)
	}
	if st.ServiceMS.P90 > 50 || st.LatencyMS.P90 < 100 {
		t.Errorf("service p90 %.1f ms, latency p90 %.1f ms", st.ServiceMS.P90, st.LatencyMS.P90)
	}
	if st.DispatchLagMS.P99 > 50 || st.Generator.Limited {
		t.Errorf("dispatch lag p99 %.1f ms, limited %v: waiting on the target is not herd's lag", st.DispatchLagMS.P99, st.Generator.Notes)
	}
}

// readRaw decodes the zstd JSON lines of Options.Raw.
func readRaw(t *testing.T, r io.Reader) []rawLine {
	t.Helper()
	zr, err := zstd.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []rawLine
	dec := json.NewDecoder(zr)
	for {
		var l rawLine
		if err := dec.Decode(&l); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
}

// TestEmergencyStop: a target that starts failing everything is stopped
// within 2 s, in-flight requests finish, and the step is marked aborted.
func TestEmergencyStop(t *testing.T) {
	failFrom := time.Now().Add(time.Hour)
	handle := func(w *bufio.Writer, _ string, _ int) bool {
		if time.Now().After(failFrom) {
			w.WriteString("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
			return true
		}
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	}
	srv := newServer(t, handle)
	path := testTape(t, 50, 100, 20*time.Millisecond, 100*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	rule, _ := ParseAbort(DefaultAbort)
	begin := time.Now()
	failFrom = begin.Add(2 * time.Second)
	st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Abort: rule})
	if err != nil {
		t.Fatal(err)
	}
	stoppedAfter := time.Since(failFrom)
	if !st.Aborted || st.AbortReason == "" {
		t.Fatalf("not aborted: %+v", st.NotSent)
	}
	if stoppedAfter > 2*time.Second {
		t.Fatalf("stopped %v after the target started failing", stoppedAfter)
	}
	// The step's period ends at the stop: what was due before it is sent or
	// counted stopped, what was due after it is remaining, outside it.
	if st.Remaining == 0 || st.Sent+st.NotSent["stopped"] != st.Planned {
		t.Fatalf("accounting: sent %d + stopped %d != planned %d (remaining %d)", st.Sent, st.NotSent["stopped"], st.Planned, st.Remaining)
	}
	if st.Sent != st.Completed+st.Errors {
		t.Fatalf("sent %d != completed %d + errors %d", st.Sent, st.Completed, st.Errors)
	}
}

// TestInterrupt: cancelling the context stops sending at once and returns
// what was measured, marked interrupted.
func TestInterrupt(t *testing.T) {
	srv := newServer(t, nil)
	path := testTape(t, 10, 100, 10*time.Millisecond, 50*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	begin := time.Now()
	st, err := Run(ctx, p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el > 2*time.Second {
		t.Fatalf("took %v after the cancel", el)
	}
	if !st.Interrupted || st.Sent == 0 || st.Remaining == 0 || st.Sent+st.NotSent["stopped"] != st.Planned {
		t.Fatalf("interrupted %v sent %d stopped %d planned %d remaining %d", st.Interrupted, st.Sent, st.NotSent["stopped"], st.Planned, st.Remaining)
	}
}

// TestStrictPacing: with a slow target, strict pacing sends every request
// on time on spare connections; session pacing waits.
func TestStrictPacing(t *testing.T) {
	slow := func(w *bufio.Writer, _ string, _ int) bool {
		time.Sleep(150 * time.Millisecond)
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	}
	for _, pacing := range []Pacing{Session, Strict} {
		srv := newServer(t, slow)
		path := testTape(t, 1, 20, 0, 30*time.Millisecond)
		p := loadPlan(t, path, srv.url(), "all")
		st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Pacing: pacing})
		if err != nil {
			t.Fatal(err)
		}
		if st.Completed != 20 {
			t.Fatalf("%v: completed %d", pacing, st.Completed)
		}
		srv.mu.Lock()
		conns := srv.conns
		srv.mu.Unlock()
		switch pacing {
		case Session:
			if conns != 1 || st.ScheduleLagMS.P50 < 50 {
				t.Errorf("session: %d connections, lag p50 %.1f ms", conns, st.ScheduleLagMS.P50)
			}
		case Strict:
			// Session pacing would show 150 ms waits here; 50 ms leaves room
			// for a loaded CI machine.
			if conns < 4 || st.ScheduleLagMS.P99 > 50 {
				t.Errorf("strict: %d connections, lag p99 %.1f ms", conns, st.ScheduleLagMS.P99)
			}
		}
	}
}

// TestHTTPS replays against a TLS server on 127.0.0.1: keep-alive over
// TLS, and a certificate that does not verify is refused unless the
// caller says so.
func TestHTTPS(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	path := testTape(t, 3, 4, 10*time.Millisecond, 20*time.Millisecond)
	p := loadPlan(t, path, target, "all")
	o := Options{Target: target, Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Abort: AbortRule{Off: true}}
	st, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.ErrorClasses[ClassTLS] != st.Sent || st.Sent == 0 {
		t.Fatalf("an unverified certificate was accepted: %v", st.ErrorClasses)
	}
	conns.Store(0)
	o.TLS = &tls.Config{InsecureSkipVerify: true}
	st, err = Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Completed != 12 || st.Errors != 0 || conns.Load() != 3 {
		t.Fatalf("completed %d, errors %v, connections %d; want 12 requests on 3 keep-alive connections", st.Completed, st.ErrorClasses, conns.Load())
	}
}

// TestProgressRates: against a target that holds every request for 3 s,
// the progress line shows the load herd is offering (requests sent per
// second) and nothing achieved, not an offered rate of zero.
func TestProgressRates(t *testing.T) {
	srv := newServer(t, func(w *bufio.Writer, _ string, _ int) bool {
		time.Sleep(3 * time.Second)
		return false
	})
	path := testTape(t, 20, 50, 2500*time.Microsecond, 50*time.Millisecond) // 400 req/s
	p := loadPlan(t, path, srv.url(), "all")
	var mu sync.Mutex
	var seen []Progress
	_, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 2500*time.Millisecond),
		Pacing: Strict, Abort: AbortRule{Off: true}, ProgressEvery: 100 * time.Millisecond,
		Progress: func(pr Progress) {
			mu.Lock()
			seen = append(seen, pr)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var at2s *Progress
	for i := range seen {
		if seen[i].Elapsed >= 2*time.Second && seen[i].Elapsed < 2500*time.Millisecond {
			at2s = &seen[i]
		}
	}
	if at2s == nil {
		t.Fatalf("no progress between 2 s and 2.5 s in %d reports", len(seen))
	}
	if at2s.OfferedRPS < 300 || at2s.AchievedRPS != 0 {
		t.Fatalf("at %v: offered %.1f/s, achieved %.1f/s; want about 400 offered and none achieved", at2s.Elapsed, at2s.OfferedRPS, at2s.AchievedRPS)
	}
}
