package replay

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/tape"
)

// mixedTape writes a tape whose requests ask a mixedAnswer server for
// every kind of answer: GET, HEAD and POST with a body, on connections of
// 1 to 7 requests, and one of 200 (more than a connection pass keeps
// before its copies have taken them). Request i of connection c has the
// target /c/<c>/r/<i>/<kind>.
func mixedTape(t *testing.T) string {
	t.Helper()
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	kinds := []string{"ok", "chunked", "interim", "missing", "error", "close", "drop", "empty", "ok", "ok"}
	var exs []tape.Exchange
	for c := 0; c < 61; c++ {
		n, gap := 1+c%7, 40*time.Millisecond
		if c == 60 {
			n, gap = 200, 6*time.Millisecond
		}
		for i := 0; i < n; i++ {
			start := base + int64(c%60)*int64(23*time.Millisecond) + int64(i)*int64(gap)
			kind := kinds[(c*3+i)%len(kinds)]
			ex := tape.Exchange{
				ConnID: uint64(c + 1), Seq: uint32(i),
				Client: netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:4000", c+1)), Server: netip.MustParseAddrPort("10.0.1.1:80"),
				ReqStart: start, ReqEnd: start + 1000, RespStart: start + 2e6, RespEnd: start + 3e6,
				Method: "GET", Target: fmt.Sprintf("/c/%d/r/%d/%s", c+1, i, kind), Proto: "HTTP/1.1",
				ReqHeader: []tape.Field{{Name: "Host", Value: "shop.example.com"}},
				Status:    200, RespProto: "HTTP/1.1",
			}
			switch {
			case (c+i)%5 == 1:
				ex.Method = "POST"
				ex.ReqBody = []byte(strings.Repeat("b", 10+c))
				ex.ReqBodyLen = int64(len(ex.ReqBody))
			case (c+i)%5 == 2:
				ex.Method = "HEAD"
			}
			exs = append(exs, ex)
		}
	}
	path := filepath.Join(t.TempDir(), "mixed.tape")
	if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1, ChunkRecords: 16}, exs); err != nil {
		t.Fatal(err)
	}
	return path
}

// mixedAnswer answers a mixedTape request by the kind its target names,
// the same way whatever the timing, so that two runs see the same.
func mixedAnswer(w *bufio.Writer, target string, _ int) bool {
	switch target[strings.LastIndexByte(target, '/')+1:] {
	case "chunked":
		w.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	case "interim":
		w.WriteString("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	case "missing":
		w.WriteString("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") // a mismatch: 200 was recorded
	case "error":
		w.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
	case "close":
		w.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
		return false
	case "drop":
		return false // read, and closed without an answer
	case "empty":
		w.WriteString("HTTP/1.1 204 No Content\r\n\r\n")
	default:
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
	return true
}

// countsOf is what a step counted, as two engines must count it alike.
func countsOf(st *results.Step) string {
	var b strings.Builder
	fmt.Fprintf(&b, "planned %d sent %d written %d completed %d errors %d mismatches %d retried %d unsolicited %d\n",
		st.Planned, st.Sent, st.Written, st.Completed, st.Errors, st.Mismatches, st.Retried, st.Unsolicited)
	fmt.Fprintf(&b, "classes %v not sent %v attempts %d retries %v\n", st.ErrorClasses, st.NotSent, st.Attempts, st.Retries)
	for _, r := range st.Routes {
		fmt.Fprintf(&b, "%s %s: sent %d completed %d errors %d mismatches %d\n", r.Method, r.Route, r.Sent, r.Completed, r.Errors, r.Mismatches)
	}
	return b.String()
}

// TestEnginesAgree replays one tape against one server with each engine,
// and with the plan held and streamed, in both modes and with emulated
// clients that retry: the target must read the same requests on the same
// number of connections, and the steps must count them alike, class by
// class and route by route.
func TestEnginesAgree(t *testing.T) {
	path := mixedTape(t)
	type runKind struct {
		engine Engine
		held   int64
	}
	kinds := []runKind{{EngineGoroutine, 0}, {EngineGoroutine, -1}}
	if loopSupported {
		kinds = append(kinds, runKind{EngineLoop, 0}, runKind{EngineLoop, -1})
	}
	retry, _ := ParseRetryPolicy("fixed:2/5ms")
	for _, run := range []struct {
		mode  Mode
		retry RetryPolicy
	}{{Clone, RetryPolicy{}}, {Compress, RetryPolicy{}}, {Clone, retry}} {
		mode := run.mode
		var wantCounts string
		var wantTargets map[string]int
		wantConns := 0
		for _, k := range kinds {
			srv := newServer(t, mixedAnswer)
			r, err := tape.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Load(context.Background(), r, PlanOptions{Window: WindowSpec{Kind: "all", Text: "all"}, Target: srv.url(), MaxHeld: k.held})
			if err != nil {
				t.Fatal(err)
			}
			if p.Streamed() != (k.held < 0) {
				t.Fatalf("MaxHeld %d: streamed %v", k.held, p.Streamed())
			}
			sched := NewSchedule(mode, 2.5, 3, p.Length, 0)
			st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: sched, Engine: k.engine, Abort: AbortRule{Off: true},
				Retry: run.retry})
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			targets := map[string]int{}
			for _, a := range srv.arrivals() {
				targets[a.target]++
			}
			srv.mu.Lock()
			conns := srv.conns
			srv.mu.Unlock()
			got := countsOf(st)
			name := fmt.Sprintf("%v engine %v, streamed %v, retries %q", mode, k.engine, p.Streamed(), run.retry.Text)
			t.Logf("%s: %d connections\n%s", name, conns, got)
			attempts := max(st.Attempts, st.Written)
			if st.Errors == 0 || st.Mismatches == 0 || st.Sent != st.Completed+st.Errors || st.Sent != st.Planned ||
				int64(len(srv.arrivals())) != attempts || (run.retry.On() && st.Attempts <= st.Sent) {
				t.Fatalf("%s: the mix did not happen, or the counts do not add up:\n%s", name, got)
			}
			if wantTargets == nil {
				wantCounts, wantTargets, wantConns = got, targets, conns
				continue
			}
			if got != wantCounts {
				t.Errorf("%s counted\n%s\nthe goroutine engine with the plan held counted\n%s", name, got, wantCounts)
			}
			if !maps.Equal(targets, wantTargets) || conns != wantConns {
				t.Errorf("%s: the target read %d requests on %d connections; with the goroutine engine, %d on %d (or other targets)",
					name, len(srv.arrivals()), conns, total(wantTargets), wantConns)
			}
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestBoundsHonoured: against a target that takes 200 ms a request, a
// replay whose copies want far more connections than --max-conns (and
// requests in flight than --max-inflight) never has more open at the
// target, counts what it could not send by reason, and does not wait for
// a slot longer than a request's timeout.
func TestBoundsHonoured(t *testing.T) {
	forEngines(t, func(t *testing.T, eng Engine) {
		for _, b := range []struct {
			conns, inflight int
			reason          string
		}{{6, 1000, "max_conns"}, {1000, 4, "max_inflight"}} {
			var mu sync.Mutex
			var open, busy, mostOpen, mostBusy int
			srv := newServer(t, func(w *bufio.Writer, _ string, n int) bool {
				mu.Lock()
				if n == 0 {
					open++
					mostOpen = max(mostOpen, open)
				}
				busy++
				mostBusy = max(mostBusy, busy)
				mu.Unlock()
				time.Sleep(200 * time.Millisecond)
				w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				mu.Lock()
				busy--
				mu.Unlock()
				return true
			})
			srv.hooks(func() {
				mu.Lock()
				open--
				mu.Unlock()
			}, nil)
			path := testTape(t, 10, 3, 30*time.Millisecond, 100*time.Millisecond)
			p := loadPlan(t, path, srv.url(), "all")
			st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 5, 1, p.Length, 0),
				MaxConns: b.conns, MaxInflight: b.inflight, Timeout: time.Second, Engine: eng, Abort: AbortRule{Off: true}})
			if err != nil {
				t.Fatal(err)
			}
			var notSent int64
			for _, n := range st.NotSent {
				notSent += n
			}
			mu.Lock()
			t.Logf("bounds %d conns %d in flight: target saw %d open, %d busy at most; sent %d, not sent %v", b.conns, b.inflight, mostOpen, mostBusy, st.Sent, st.NotSent)
			// A connection carries one request at a time: the requests
			// the target works on at once are bounded by both. (It sees a
			// connection herd closed only after the close arrives, so its
			// count of open ones may run a little over the bound.)
			if mostBusy > min(b.conns, b.inflight) || mostOpen > 2*b.conns {
				t.Errorf("the target had %d requests in flight, and %d connections open; the bounds are %d connections, %d in flight", mostBusy, mostOpen, b.conns, b.inflight)
			}
			mu.Unlock()
			if st.NotSent[b.reason] == 0 || st.Sent+notSent != st.Planned || st.Sent != st.Completed+st.Errors {
				t.Errorf("planned %d, sent %d (completed %d, errors %v), not sent %v: want some %s", st.Planned, st.Sent, st.Completed, st.ErrorClasses, st.NotSent, b.reason)
			}
		}
	})
}

// TestLargeBodies: requests whose bodies fill the socket's buffers many
// times over (written in pieces as the target reads them) and responses
// as large, on both engines: every byte arrives, and the counts hold.
func TestLargeBodies(t *testing.T) {
	forEngines(t, func(t *testing.T, eng Engine) {
		const size = 6 << 20
		base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
		var exs []tape.Exchange
		for c := 0; c < 3; c++ {
			for i := 0; i < 2; i++ {
				start := base + int64(c)*int64(10*time.Millisecond) + int64(i)*int64(200*time.Millisecond)
				body := []byte(strings.Repeat(string(rune('a'+c)), size))
				exs = append(exs, tape.Exchange{ConnID: uint64(c + 1), Seq: uint32(i), ReqStart: start, ReqEnd: start + 1e6,
					RespStart: start + 2e6, RespEnd: start + 3e6, Method: "POST", Target: fmt.Sprintf("/up/%d/%d", c, i), Proto: "HTTP/1.1",
					ReqHeader: []tape.Field{{Name: "Content-Length", Value: fmt.Sprint(size)}}, ReqBody: body, ReqBodyLen: size, Status: 200})
			}
		}
		path := filepath.Join(t.TempDir(), "big.tape")
		if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1}, exs); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got int64
		srv := newServer(t, func(w *bufio.Writer, _ string, _ int) bool {
			w.WriteString(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size))
			w.Write(make([]byte, size))
			return true
		})
		srv.hooks(nil, func(n int) {
			mu.Lock()
			got += int64(n)
			mu.Unlock()
		})
		p := loadPlan(t, path, srv.url(), "all")
		st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Engine: eng})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if st.Sent != 6 || st.Completed != 6 || st.Errors != 0 || got != 6*size {
			t.Fatalf("sent %d completed %d errors %v; the target read %d body bytes, want %d", st.Sent, st.Completed, st.ErrorClasses, got, 6*size)
		}
		if r := st.Routes[0]; r.Completed != 6 {
			t.Fatalf("route %+v", r)
		}
	})
}
