package replay

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/tape"
)

// feed plays a capture into l as it would arrive: conns connections,
// one request on each every gap, from now until until, each due delay
// after its start. It returns the requests it handed over, by the reason
// Add gave ("" for taken).
func feed(t *testing.T, l *Live, conns int, gap, delay time.Duration, until time.Time) map[string]int {
	t.Helper()
	got := map[string]int{}
	seq := make([]uint32, conns)
	for n := 0; time.Now().Before(until); n++ {
		for c := 0; c < conns; c++ {
			now := time.Now()
			e := tape.Exchange{ConnID: uint64(c + 1), Seq: seq[c], ReqStart: now.UnixNano(), ReqEnd: now.UnixNano(),
				Client: netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:4000", c+1)), Server: netip.MustParseAddrPort("10.0.1.1:80"),
				Method: "GET", Target: fmt.Sprintf("/c/%d/r/%d", c+1, seq[c]), Proto: "HTTP/1.1",
				ReqHeader: []tape.Field{{Name: "Host", Value: "prod.example.com"}}, Flags: tape.NoResponse}
			got[l.Add(&e, now.Add(delay))]++
			seq[c]++
		}
		time.Sleep(gap)
	}
	return got
}

// runLive runs l in the background; the function it returns waits for
// the results.
func runLive(t *testing.T, l *Live) func() *results.File {
	t.Helper()
	type out struct {
		f   *results.File
		err error
	}
	done := make(chan out, 1)
	go func() {
		f, err := l.Run(context.Background())
		done <- out{f, err}
	}()
	return func() *results.File {
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.f
	}
}

// unavailable is a server that answers every request 503.
func unavailable(t *testing.T) *server {
	return newServer(t, func(w *bufio.Writer, target string, n int) bool {
		fmt.Fprintf(w, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		return true
	})
}

func liveSteps(f *results.File) (sent, notSent, planned int64) {
	for _, st := range f.Steps {
		sent += st.Sent
		planned += st.Planned
		for _, n := range st.NotSent {
			notSent += n
		}
	}
	return
}

// TestLiveCounts hands a live replay requests as a capture would, at 2x:
// the server receives exactly twice what was taken, each request after
// its due time and within the lateness bound, in steps of the interval.
func TestLiveCounts(t *testing.T) {
	srv := newServer(t, nil)
	const delay = 300 * time.Millisecond
	start := time.Now().Add(delay)
	l, err := NewLive(PlanOptions{Target: srv.url()}, LiveOptions{Settings: Settings{Target: srv.url()}, Scale: 2,
		Interval: time.Second, Duration: 3 * time.Second, Start: start, MaxLate: delay})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLive(t, l)
	added := feed(t, l, 5, 50*time.Millisecond, delay, l.End().Add(-delay))
	f := wait()
	if len(added) != 1 || added[""] < 200 {
		t.Fatalf("Add answered %v, want every request taken", added)
	}
	got := srv.arrivals()
	sent, notSent, planned := liveSteps(f)
	if len(got) != 2*added[""] || sent != int64(len(got)) || planned != sent || notSent != 0 {
		t.Fatalf("server got %d, steps sent %d of %d planned (%d not sent); %d taken at 2x", len(got), sent, planned, notSent, added[""])
	}
	if len(f.Steps) != 3 || f.Kind != "shadow" || f.Window.Requests != int64(added[""]) || f.Window.Conns != 5 {
		t.Fatalf("%d steps of kind %s, window %+v", len(f.Steps), f.Kind, f.Window)
	}
	// Each copy of /c/N/r/M reached the server once per copy.
	seen := map[string]int{}
	for _, a := range got {
		seen[a.target]++
	}
	for target, n := range seen {
		if n != 2 {
			t.Fatalf("%s arrived %d times, want 2", target, n)
		}
	}
	if f.BreakingPoint != nil || !strings.Contains(f.Verdict, "Shadowed") {
		t.Fatalf("breaking point %v, verdict %q", f.BreakingPoint, f.Verdict)
	}
	if st := l.Stats(); st.Held != 0 || st.PeakHeld == 0 {
		t.Fatalf("held %d bytes after the run (peak %d)", st.Held, st.PeakHeld)
	}
}

// TestLiveLateAndStatus: a request complete only after its due time is
// not taken (late_capture); a recorded status given before the send makes
// a different answer a mismatch.
func TestLiveLateAndStatus(t *testing.T) {
	srv := newServer(t, nil)
	start := time.Now()
	l, err := NewLive(PlanOptions{Target: srv.url()}, LiveOptions{Settings: Settings{Target: srv.url()}, Scale: 1,
		Interval: time.Second, Duration: time.Second, Start: start, MaxLate: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLive(t, l)
	mk := func(seq uint32, target string) *tape.Exchange {
		return &tape.Exchange{ConnID: 9, Seq: seq, Method: "GET", Target: target, Proto: "HTTP/1.1", Flags: tape.NoResponse,
			ReqHeader: []tape.Field{{Name: "Host", Value: "x"}}}
	}
	if why := l.Add(mk(0, "/late"), time.Now().Add(-time.Second)); why != SkipLateCapture {
		t.Fatalf("a request due a second ago: %q", why)
	}
	if why := l.Add(mk(1, "/on-time"), time.Now().Add(300*time.Millisecond)); why != "" {
		t.Fatalf("a request due soon: %q", why)
	}
	l.Status(9, 1, 404) // the production answer came before the send
	f := wait()
	st := f.Steps[0]
	if len(srv.arrivals()) != 1 || st.Sent != 1 || st.Mismatches != 1 || f.Window.Skipped[SkipLateCapture] != 1 {
		t.Fatalf("server got %d; sent %d, mismatches %d, skipped %v", len(srv.arrivals()), st.Sent, st.Mismatches, f.Window.Skipped)
	}
}

// TestLiveSlowTarget: a target far slower than the traffic. Memory stays
// within its bound, what could not be sent in time is counted as not sent
// (late) or not taken (memory_limit), and what the server received is
// exactly what the steps say was sent.
func TestLiveSlowTarget(t *testing.T) {
	var mu sync.Mutex
	var served int
	srv := newServer(t, func(w *bufio.Writer, target string, n int) bool {
		time.Sleep(400 * time.Millisecond)
		mu.Lock()
		served++
		mu.Unlock()
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	const delay = 200 * time.Millisecond
	const maxHeld = 16 << 10
	l, err := NewLive(PlanOptions{Target: srv.url()}, LiveOptions{Settings: Settings{Target: srv.url(), Timeout: 2 * time.Second},
		Scale: 1, Interval: time.Second, Duration: 2 * time.Second, Start: time.Now().Add(delay), MaxLate: delay, MaxHeld: maxHeld})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLive(t, l)
	// 20 connections, a request on each every 10 ms: 2000 req/s offered to
	// a server that answers each connection 2.5 times a second.
	added := feed(t, l, 20, 10*time.Millisecond, delay, l.End().Add(-delay))
	f := wait()
	st := l.Stats()
	sent, notSent, planned := liveSteps(f)
	var late int64
	for _, s := range f.Steps {
		late += s.NotSent[NotSentLate]
	}
	t.Logf("%s\nstats %+v added %v", f.Verdict, st, added)
	if st.PeakHeld > maxHeld {
		t.Fatalf("held up to %d bytes, bound %d", st.PeakHeld, maxHeld)
	}
	if late == 0 || added[SkipMemoryLimit] == 0 || int64(added[SkipMemoryLimit]) != f.Window.Skipped[SkipMemoryLimit] {
		t.Fatalf("late %d, memory_limit %d (window %v): want both, counted", late, added[SkipMemoryLimit], f.Window.Skipped)
	}
	if sent+notSent != planned || planned != int64(added[""]) {
		t.Fatalf("sent %d + not sent %d != planned %d; taken %d", sent, notSent, planned, added[""])
	}
	mu.Lock()
	defer mu.Unlock()
	if got := len(srv.arrivals()); int64(got) != sent {
		t.Fatalf("the server got %d, the steps sent %d", got, sent)
	}
}

// TestLiveEmergencyStop: a target that fails every request trips the
// emergency stop in the first interval, and the run ends there, long
// before its duration, marked aborted.
func TestLiveEmergencyStop(t *testing.T) {
	srv := unavailable(t)
	abort, err := ParseAbort("errors>50%/1s")
	if err != nil {
		t.Fatal(err)
	}
	const delay = 200 * time.Millisecond
	l, err := NewLive(PlanOptions{Target: srv.url()}, LiveOptions{Settings: Settings{Target: srv.url(), Abort: abort}, Scale: 1,
		Interval: time.Second, Duration: 10 * time.Second, Start: time.Now().Add(delay), MaxLate: delay})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wait := runLive(t, l)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(t, l, 5, 20*time.Millisecond, delay, time.Now().Add(3*time.Second))
	}()
	defer func() { <-fed }()
	f := wait()
	if !f.Aborted || time.Since(start) > 5*time.Second || len(f.Steps) > 3 {
		t.Fatalf("aborted %v after %v with %d steps: %s", f.Aborted, time.Since(start), len(f.Steps), f.Verdict)
	}
	if !strings.Contains(f.Verdict, "emergency stop") {
		t.Fatalf("verdict %q", f.Verdict)
	}
}

// TestLiveRetries: client emulation applies to live traffic as to a
// tape's. A target that answers every attempt 503 receives each request
// three times under fixed:2/50ms, and the steps count the attempts the
// target received.
func TestLiveRetries(t *testing.T) {
	srv := unavailable(t)
	retry, err := ParseRetryPolicy("fixed:2/50ms")
	if err != nil {
		t.Fatal(err)
	}
	const delay = 200 * time.Millisecond
	l, err := NewLive(PlanOptions{Target: srv.url()}, LiveOptions{Settings: Settings{Target: srv.url(), Retry: retry, Abort: AbortRule{Off: true}},
		Scale: 1, Interval: time.Second, Duration: 2 * time.Second, Start: time.Now().Add(delay), MaxLate: delay})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLive(t, l)
	added := feed(t, l, 2, 100*time.Millisecond, delay, l.End().Add(-delay-300*time.Millisecond))
	f := wait()
	var sent, attempts, gaveUp int64
	for _, st := range f.Steps {
		sent += st.Sent
		attempts += st.Attempts
		gaveUp += st.ErrorClasses[ClassGaveUp]
	}
	got := int64(len(srv.arrivals()))
	if sent != int64(added[""]) || attempts != 3*sent || got != attempts || gaveUp != sent {
		t.Fatalf("taken %d, sent %d, attempts %d, gave up %d; the server got %d", added[""], sent, attempts, gaveUp, got)
	}
}

func TestConnCounter(t *testing.T) {
	var c connCounter
	for _, id := range []uint64{5, 5, 3, 7, 6, 7, 3, 100000, 99999, 5, 100000 + connWindow + 3, 100000} {
		c.add(id)
	}
	// 5, 3, 7, 6, 100000, 99999, 100000+window+3; the last 5 and 100000
	// fall before the window and count as seen.
	if c.n != 7 {
		t.Fatalf("counted %d connections, want 7", c.n)
	}
	var d connCounter
	for id := uint64(1); id <= 3*connWindow; id++ {
		d.add(id)
		if id%3 == 0 {
			d.add(id - 2) // a request on a connection opened a little earlier
		}
	}
	if d.n != 3*connWindow {
		t.Fatalf("counted %d of %d", d.n, 3*connWindow)
	}
}
