package replay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The fault matrix (faultmatrix_test.go) holds the engine to its counts
// from outside, through the command line. The tests here check the rules
// it relies on from inside: judge's table, and the resend path, which no
// target can trigger on purpose from the far end.

func TestJudge(t *testing.T) {
	get, post, put := []byte("GET / HTTP/1.1\r\n\r\n"), []byte("POST / HTTP/1.1\r\n\r\n"), []byte("PUT / HTTP/1.1\r\n\r\n")
	reset := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	cases := []struct {
		name string
		wire []byte
		a    attempt
		want verdict
	}{
		{"response", get, attempt{reused: true, written: 18, got: true, status: 200}, verdict{response: true}},
		{"5xx", post, attempt{written: 20, got: true, status: 503}, verdict{class: ClassHTTP5xx, response: true}},
		{"408 on a fresh connection is an answer", get, attempt{written: 18, got: true, status: 408}, verdict{response: true}},
		{"408 on a reused connection is an idle close", get, attempt{reused: true, written: 18, got: true, status: 408}, verdict{class: ClassIdleClosed}},
		{"EOF before any byte, reused", post, attempt{reused: true, written: 20, err: io.EOF}, verdict{class: ClassIdleClosed}},
		{"EOF before any byte, fresh", get, attempt{written: 18, err: io.EOF}, verdict{class: ClassClosed}},
		{"EOF mid-response", get, attempt{reused: true, written: 18, got: true, err: io.ErrUnexpectedEOF}, verdict{class: ClassClosed}},
		{"reset after the write, GET, reused: may have been read", get, attempt{reused: true, written: 18, err: reset}, verdict{class: ClassReset}},
		{"write refused, GET, reused: resent", get, attempt{reused: true, err: reset}, verdict{class: ClassReset, resend: true}},
		{"write refused, PUT, reused: resent", put, attempt{reused: true, err: reset}, verdict{class: ClassReset, resend: true}},
		{"write refused, POST, reused: not resent", post, attempt{reused: true, err: reset}, verdict{class: ClassReset}},
		{"write refused, GET, fresh: not resent", get, attempt{err: reset}, verdict{class: ClassReset}},
		{"timeout", get, attempt{reused: true, written: 18, err: os.ErrDeadlineExceeded}, verdict{class: ClassTimeout}},
		{"malformed", get, attempt{written: 18, got: true, err: malformed("status line")}, verdict{class: ClassMalformed}},
	}
	for _, c := range cases {
		if got := judge(c.wire, c.a); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestResendOnlyWhatWasNotWritten: on a reused connection whose write
// fails before one byte is accepted, a GET is resent once, on a fresh
// connection, and counted; a POST is an error, not resent. The target
// reads each request at most once.
func TestResendOnlyWhatWasNotWritten(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	read := map[string]int{}
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						<-hold // keep the connection open: herd must not see it end
						return
					}
					for h, _ := br.ReadString('\n'); h != "\r\n" && h != ""; h, _ = br.ReadString('\n') {
					}
					mu.Lock()
					f := strings.Fields(line)
					read[f[0]+" "+f[1]]++
					mu.Unlock()
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
			}()
		}
	}()
	target := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	cl, err := newClient(Options{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method        string
		retried, sent bool
	}{{"GET", true, true}, {"POST", false, false}} {
		e := &engine{run: &run{o: Options{Timeout: 5 * time.Second}, results: make(chan result, 4)}, cl: cl,
			connSlots: make(chan struct{}, 2), inflight: make(chan struct{}, 1), dialer: context.Background()}
		// A connection that carried one exchange, then can no longer be
		// written: the next write fails with nothing accepted.
		e.connSlots <- struct{}{}
		cn, _, err := cl.dial(context.Background(), time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if a, _ := cn.roundTrip([]byte("GET /warm HTTP/1.1\r\nHost: x\r\n\r\n"), false, time.Now().Add(5*time.Second)); a.err != nil {
			t.Fatal(a.err)
		}
		cn.done++
		cn.raw.(*net.TCPConn).CloseWrite()
		wire := []byte(c.method + " /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		e.exec(&cn, &Req{Wire: wire}, reqID{}, nanotime(), nanotime())
		r := <-e.results
		if cn != nil {
			e.release(cn)
		}
		mu.Lock()
		got := read[c.method+" /x"]
		mu.Unlock()
		if r.retried != c.retried || r.written != c.sent || (r.class == "") != c.sent {
			t.Errorf("%s: retried %v, written %v, class %q; want retried %v, written %v", c.method, r.retried, r.written, r.class, c.retried, c.sent)
		}
		if want := map[bool]int{true: 1, false: 0}[c.sent]; got != want {
			t.Errorf("%s: the target read it %d times, want %d", c.method, got, want)
		}
	}
}

// TestCoordinatedOmission: a server that stalls for a second every ten
// seconds. Every request due during a stall must show it in its latency
// (measured from when it was due): at least the rest of the stall. Service
// time (from the actual send) shows it only for the request that hit the
// stall; the ones queued behind it were sent after it and are fast.
func TestCoordinatedOmission(t *testing.T) { forEngines(t, testCoordinatedOmission) }

func testCoordinatedOmission(t *testing.T, eng Engine) {
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
		LagBound: 50 * time.Millisecond, Engine: eng})
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
func TestEmergencyStop(t *testing.T) { forEngines(t, testEmergencyStop) }

func testEmergencyStop(t *testing.T, eng Engine) {
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
	st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Abort: rule, Engine: eng})
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
func TestInterrupt(t *testing.T) { forEngines(t, testInterrupt) }

func testInterrupt(t *testing.T, eng Engine) {
	srv := newServer(t, nil)
	path := testTape(t, 10, 100, 10*time.Millisecond, 50*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	begin := time.Now()
	st, err := Run(ctx, p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Engine: eng})
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
func TestStrictPacing(t *testing.T) { forEngines(t, testStrictPacing) }

func testStrictPacing(t *testing.T, eng Engine) {
	slow := func(w *bufio.Writer, _ string, _ int) bool {
		time.Sleep(150 * time.Millisecond)
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	}
	for _, pacing := range []Pacing{Session, Strict} {
		srv := newServer(t, slow)
		path := testTape(t, 1, 20, 0, 30*time.Millisecond)
		p := loadPlan(t, path, srv.url(), "all")
		st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Pacing: pacing, Engine: eng})
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
	o := Options{Target: target, Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Abort: AbortRule{Off: true}, Engine: EngineLoop}
	if _, err := Run(context.Background(), p, o); err == nil {
		t.Fatal("the event loops ran a TLS target")
	}
	o.Engine = EngineAuto // the goroutine engine, for TLS
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
func TestProgressRates(t *testing.T) { forEngines(t, testProgressRates) }

func testProgressRates(t *testing.T, eng Engine) {
	srv := newServer(t, func(w *bufio.Writer, _ string, _ int) bool {
		time.Sleep(3 * time.Second)
		return false
	})
	path := testTape(t, 20, 50, 2500*time.Microsecond, 50*time.Millisecond) // 400 req/s
	p := loadPlan(t, path, srv.url(), "all")
	var mu sync.Mutex
	var seen []Progress
	_, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 2500*time.Millisecond),
		Pacing: Strict, Abort: AbortRule{Off: true}, ProgressEvery: 100 * time.Millisecond, Engine: eng,
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
