package replay_test

// The fault oracle: real misbehaving HTTP servers on 127.0.0.1, herd driven
// through its command line (cli.Main) with a tape on disk, and the truth
// about what herd sent counted where it arrives, at the server. Nothing
// here reaches into the replay engine, so any engine behind `herd replay`
// must pass these tests unchanged.
//
// The rules they hold herd to (docs/replay.md, "What herd sends and counts
// under faults"), for every step:
//
//   - sent = completed + errors, and planned = sent + the not_sent reasons;
//   - the target read exactly `written` requests: a request is resent only
//     after an attempt that wrote not one byte of it, so `retried` never
//     adds a duplicate; the only requests herd wrote that a target does not
//     read are those that arrived as it closed the connection (counted as
//     idle_closed errors) or reset it (among the reset errors: herd cannot
//     tell those from a reset after the read, so there it is a bound);
//   - bytes that arrive with no request outstanding are never a response:
//     each arrival is counted once, as unsolicited_response when herd found
//     it on an idle connection, or as an idle_closed error when it crossed
//     the next request;
//   - every error class carries the message of its first error.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/cli"
	"github.com/herd-replay/herd/tape"
)

// The oracle tape: tapeConns recorded connections of tapePerConn requests
// each, 50 ms apart; every third request is a POST with a body. Request i
// of recorded connection c has the target /c/<c>/r/<i>, so a server knows
// which request of its recorded connection it is answering.
const (
	tapeConns   = 32
	tapePerConn = 8
	tapeGap     = 50 * time.Millisecond
	tapeStagger = 20 * time.Millisecond
)

func oracleTape(t *testing.T) string {
	t.Helper()
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	var exs []tape.Exchange
	for c := range tapeConns {
		for i := range tapePerConn {
			start := base + int64(c)*int64(tapeStagger) + int64(i)*int64(tapeGap)
			ex := tape.Exchange{
				ConnID: uint64(c + 1), Seq: uint32(i),
				Client:   netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:4000", c+1)),
				Server:   netip.MustParseAddrPort("10.0.1.1:80"),
				ReqStart: start, ReqEnd: start + 1000, RespStart: start + 2e6, RespEnd: start + 3e6,
				Method: "GET", Target: fmt.Sprintf("/c/%d/r/%d", c+1, i), Proto: "HTTP/1.1",
				ReqHeader: []tape.Field{{Name: "Host", Value: "shop.example.com"}},
				Status:    200, RespProto: "HTTP/1.1",
			}
			if i%3 == 1 {
				ex.Method = "POST"
				ex.ReqBody = []byte(fmt.Sprintf("order=%d-%d&items=3&note=%s", c+1, i, strings.Repeat("x", 24)))
				ex.ReqBodyLen = int64(len(ex.ReqBody))
				ex.ReqHeader = append(ex.ReqHeader, tape.Field{Name: "Content-Type", Value: "application/x-www-form-urlencoded"},
					tape.Field{Name: "Content-Length", Value: strconv.Itoa(len(ex.ReqBody))})
			}
			exs = append(exs, ex)
		}
	}
	path := filepath.Join(t.TempDir(), "oracle.tape")
	if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1}, exs); err != nil {
		t.Fatal(err)
	}
	return path
}

// request is one request as a fault target read it.
type request struct {
	method, target string
	last           bool // the last request of its recorded connection
	nth            int64
}

// action is what a fault target does once it has answered (or not).
type action int

const (
	keepOpen  action = iota // a complete response written; read the next request
	closeConn               // a complete response written, then FIN
	cutConn                 // a response cut short (or the client went away), then FIN
	invalid                 // bytes that are no HTTP response written; read on
	resetConn               // RST, nothing answered
	stall                   // answer nothing; read on until the client gives up
)

// idleAct is what a fault target does to a keep-alive connection left
// idle for idleAfter after a response.
type idleAct int

const (
	idleNothing idleAct = iota
	// idle408 writes an unsolicited 408 Request Timeout with Connection:
	// close and half-closes; it then reads on, counting (never answering)
	// any request that crossed its 408. It is armed only when another
	// request of the recorded connection is still to come, so that herd
	// always has a chance to see it.
	idle408
	idleReset // RST the idle connection
)

// faultTarget is a real HTTP/1.1 server on 127.0.0.1 that misbehaves on
// purpose and counts exactly what it read: complete requests, by method,
// their bytes, and the bytes that formed no complete request.
type faultTarget struct {
	ln        net.Listener
	tls       *tls.Config // nil for plain HTTP
	answer    func(w *bufio.Writer, rq request) action
	idleAfter time.Duration
	idleDo    idleAct

	mu       sync.Mutex
	conns    int64
	requests int64
	methods  map[string]int64
	bytes    int64
	stray    int64 // bytes of requests cut short
	answered int64 // responses the answer function wrote in full
	resets   int64 // requests answered by a reset
	lies     int64 // responses followed by bytes of no request (counted by the answer function)
	sent408  int64 // unsolicited 408s written on idle connections
	after408 int64 // requests read after the connection's 408

	nth  atomic.Int64
	live sync.WaitGroup
}

func okAnswer(w *bufio.Writer, _ request) action {
	w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	return keepOpen
}

// always answers every request with act alone.
func always(act action) func(*bufio.Writer, request) action {
	return func(*bufio.Writer, request) action { return act }
}

// newFaultTarget starts a fault target answering with answer (nil: 200
// ok), over TLS with tlsConf when it is not nil.
func newFaultTarget(t *testing.T, answer func(w *bufio.Writer, rq request) action, tlsConf *tls.Config) *faultTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if answer == nil {
		answer = okAnswer
	}
	s := &faultTarget{ln: ln, answer: answer, tls: tlsConf, methods: map[string]int64{}}
	s.live.Add(1)
	go func() {
		defer s.live.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			s.live.Add(1)
			go s.serve(c.(*net.TCPConn))
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *faultTarget) url() string {
	if s.tls != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// settle stops accepting and waits until every connection has ended: herd
// has closed all of its own when its run returns, so after this the
// counters are final.
func (s *faultTarget) settle(t *testing.T) {
	t.Helper()
	s.ln.Close()
	done := make(chan struct{})
	go func() {
		s.live.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the target's connections did not end within 10 s of the run")
	}
}

func (s *faultTarget) add(p *int64, n int64) {
	s.mu.Lock()
	*p += n
	s.mu.Unlock()
}

func (s *faultTarget) serve(tcp *net.TCPConn) {
	defer s.live.Done()
	var c interface {
		net.Conn
		CloseWrite() error
	} = tcp
	if s.tls != nil {
		c = tls.Server(tcp, s.tls)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	armed, closing := false, false
	for {
		if armed && !closing && s.idleDo != idleNothing {
			c.SetReadDeadline(time.Now().Add(s.idleAfter))
			_, err := br.Peek(1)
			c.SetReadDeadline(time.Time{})
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded) && s.idleDo == idleReset:
				tcp.SetLinger(0)
				return
			case errors.Is(err, os.ErrDeadlineExceeded):
				bw.WriteString("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				if bw.Flush() != nil {
					return
				}
				s.add(&s.sent408, 1)
				c.CloseWrite()
				closing = true
			case err != nil:
				return
			}
		}
		rq, n, err := readRequest(br)
		if err != nil {
			s.add(&s.stray, n)
			return
		}
		rq.nth = s.nth.Add(1)
		s.mu.Lock()
		s.requests++
		s.methods[rq.method]++
		s.bytes += n
		if closing {
			s.after408++
		}
		s.mu.Unlock()
		if closing {
			continue
		}
		act := s.answer(bw, rq)
		if act == resetConn {
			s.add(&s.resets, 1)
			tcp.SetLinger(0)
			return
		}
		if act == stall {
			continue
		}
		if bw.Flush() != nil || act == cutConn {
			return
		}
		if act == invalid {
			continue
		}
		s.add(&s.answered, 1)
		if act == closeConn {
			return
		}
		armed = s.idleDo == idleReset || (s.idleDo == idle408 && !rq.last)
	}
}

// readRequest reads one request, returning the bytes it took; on an error,
// the bytes of the request cut short.
func readRequest(br *bufio.Reader) (request, int64, error) {
	var rq request
	var n int64
	length := 0
	for i := 0; ; i++ {
		line, err := br.ReadString('\n')
		n += int64(len(line))
		if err != nil {
			return rq, n, err
		}
		if i == 0 {
			f := strings.Fields(line)
			if len(f) != 3 {
				return rq, n, fmt.Errorf("request line %q", line)
			}
			rq.method, rq.target = f[0], f[1]
			var c, r int
			if _, err := fmt.Sscanf(rq.target, "/c/%d/r/%d", &c, &r); err == nil {
				rq.last = r == tapePerConn-1
			}
			continue
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			if length, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return rq, n, err
			}
		}
	}
	m, err := br.Discard(length)
	n += int64(m)
	return rq, n, err
}

// stepJSON is a step of the results file, read by its documented field
// names (docs/results-format.md): the contract, not the Go types.
type stepJSON struct {
	Planned     int64             `json:"planned"`
	Sent        int64             `json:"sent"`
	Written     int64             `json:"written"` // absent when 0
	Completed   int64             `json:"completed"`
	Errors      int64             `json:"errors"`
	Mismatches  int64             `json:"mismatches"`
	Retried     int64             `json:"retried"`
	Unsolicited int64             `json:"unsolicited_response"`
	Classes     map[string]int64  `json:"errors_by_class"`
	FirstErrors map[string]string `json:"first_errors"`
	NotSent     map[string]int64  `json:"not_sent"`
	Aborted     bool              `json:"aborted"`
	Routes      []struct {
		Method string `json:"method"`
		Sent   int64  `json:"sent"`
	} `json:"routes"`
}

// herdRun is one `herd replay` as a user runs it.
type herdRun struct {
	code           int
	stdout, stderr string
	raw            []byte // the results file
	step           stepJSON
	engine         string // the engine the results say ran
	heapPeak       uint64 // the Go heap's peak during the run, above its size before
}

// replayCLI runs herd replay TAPE --target URL --json FILE args..., measuring
// the Go heap while it runs.
func replayCLI(t *testing.T, tapePath, target string, args ...string) herdRun {
	t.Helper()
	out := filepath.Join(t.TempDir(), "results.json")
	argv := append([]string{"replay", tapePath, "--target", target, "--json", out}, args...)
	runtime.GC()
	base := heapBytes()
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var top uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			top = max(top, heapBytes())
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), argv, cli.IO{In: strings.NewReader(""), Out: &stdout, Err: &stderr})
	close(stop)
	r := herdRun{code: code, stdout: stdout.String(), stderr: stderr.String()}
	if top := <-peak; top > base {
		r.heapPeak = top - base
	}
	var err error
	if r.raw, err = os.ReadFile(out); err != nil {
		t.Fatalf("herd %s: exit %d and no results file: %v\n%s", strings.Join(argv, " "), code, err, r.stderr)
	}
	var f struct {
		Schema int        `json:"schema"`
		Steps  []stepJSON `json:"steps"`
		Params struct {
			Engine string `json:"engine"`
		} `json:"params"`
	}
	if err := json.Unmarshal(r.raw, &f); err != nil || f.Schema != 1 || len(f.Steps) != 1 {
		t.Fatalf("results file: schema %d, %d steps, %v", f.Schema, len(f.Steps), err)
	}
	r.step, r.engine = f.Steps[0], f.Params.Engine
	return r
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// noGoFormatting fails on text that shows Go's formatting of values
// instead of words: map[...], %!v(...), <nil>, &{...}.
func noGoFormatting(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range []string{"map[", "%!", "<nil>", "&{"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s shows Go formatting %q:\n%s", what, bad, s)
		}
	}
}

// faultCaseSpec is one fault of the matrix and what the step must show.
type faultCaseSpec struct {
	name    string
	answer  func(w *bufio.Writer, rq request) action
	idle    time.Duration
	idleDo  idleAct
	args    []string
	tls     bool
	refused bool
	// what the step must show
	exit    int
	class   string // every error is of this class ("" for none)
	message string // in the first error of that class
	// timeout: the fault is a response that never completes, checked
	// with a 1 s --timeout. The others run with 10 s, so that a
	// starved test machine cannot turn slowness into errors.
	timeout bool
	// unread bounds the requests herd wrote that the target never
	// read, because it closed or reset the connection as they
	// arrived; nil: none.
	unread func(st stepJSON) (lo, hi int64)
	check  func(t *testing.T, s *faultTarget, r herdRun)
}

// TestFaultMatrix replays the oracle tape against one misbehaving target
// per fault and checks, for each: the exit code, the results file, the
// step's own identities, what the target read against herd's counts, the
// error class and its first message, and the Go heap.
func TestFaultMatrix(t *testing.T) {
	tp := oracleTape(t)
	cases := []faultCaseSpec{
		{
			name: "stall", timeout: true,
			answer: always(stall),
			exit:   cli.ExitRequirement, class: "timeout", message: "no response byte within the 1s timeout",
		},
		{
			name:   "reset",
			answer: always(resetConn),
			exit:   cli.ExitRequirement, class: "reset", message: "connection reset by peer",
		},
		{
			// Issue 9, item 2: herd resent requests after a reset, POSTs
			// included, and counted fewer resets than the target sent.
			name: "reset every 10th",
			answer: func(w *bufio.Writer, rq request) action {
				if rq.nth%10 == 0 {
					return resetConn
				}
				return okAnswer(w, rq)
			},
			args: []string{"--scale", "2"},
			exit: cli.ExitOK, class: "reset", message: "connection reset by peer",
			check: func(t *testing.T, s *faultTarget, r herdRun) {
				st := r.step
				if st.Classes["reset"] != s.resets || st.Errors != s.resets {
					t.Errorf("herd counted %d resets (%d errors), the target reset %d requests", st.Classes["reset"], st.Errors, s.resets)
				}
				if st.Retried != 0 {
					t.Errorf("retried %d: no request is resent after it was written", st.Retried)
				}
				if s.resets < st.Sent/10-2 {
					t.Errorf("the target reset only %d of %d requests", s.resets, st.Sent)
				}
			},
		},
		{
			name: "slow body", timeout: true,
			answer: func(w *bufio.Writer, _ request) action {
				w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
				for range 100 {
					if w.WriteByte('x') != nil || w.Flush() != nil {
						return cutConn
					}
					time.Sleep(20 * time.Millisecond)
				}
				return keepOpen
			},
			exit: cli.ExitRequirement, class: "timeout", message: "response incomplete after the 1s timeout",
		},
		{
			// 1 GiB bodies as fast as loopback goes; after the first
			// eight, the target only stalls, to spare the test machine.
			name: "huge body", timeout: true,
			answer: func(w *bufio.Writer, rq request) action {
				if rq.nth > 8 {
					return stall
				}
				chunk := make([]byte, 64<<10)
				w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
				for sent := 0; sent < 1<<30; sent += len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return cutConn
					}
				}
				return keepOpen
			},
			exit: cli.ExitRequirement, class: "timeout", message: "the 1s timeout",
		},
		{
			name: "huge header",
			answer: func(w *bufio.Writer, _ request) action {
				w.WriteString("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n")
				return invalid
			},
			exit: cli.ExitRequirement, class: "malformed_response", message: "line longer than",
		},
		{
			// Content-Length shorter than what follows: the rest arrives
			// with no request outstanding, and is no response.
			name: "content-length short",
			answer: func(w *bufio.Writer, _ request) action {
				w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				return keepOpen
			},
			exit: cli.ExitOK,
			check: func(t *testing.T, s *faultTarget, r herdRun) {
				if r.step.Unsolicited != s.answered {
					t.Errorf("unsolicited_response %d; every one of the %d responses was followed by bytes of no request", r.step.Unsolicited, s.answered)
				}
			},
		},
		{
			// The target reads each request and closes without a word.
			name:   "close without answer",
			answer: always(cutConn),
			exit:   cli.ExitRequirement, class: "closed", message: "closed the connection before any response byte",
		},
		{
			// Content-Length longer than the body, then a close.
			name: "content-length long",
			answer: func(w *bufio.Writer, _ request) action {
				w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
				return cutConn
			},
			exit: cli.ExitRequirement, class: "closed", message: "closed the connection after",
		},
		{
			name: "garbage",
			answer: func(w *bufio.Writer, _ request) action {
				w.WriteString("SSH-2.0-OpenSSH_9.6\r\n\r\n")
				return invalid
			},
			exit: cli.ExitRequirement, class: "malformed_response", message: `status line "SSH-2.0-OpenSSH_9.6`,
		},
		{
			name: "503",
			answer: func(w *bufio.Writer, _ request) action {
				w.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
				return keepOpen
			},
			exit: cli.ExitRequirement, class: "http_5xx", message: "503",
		},
		{
			name:    "refused",
			refused: true,
			exit:    cli.ExitRequirement, class: "connect_refused", message: "connection refused",
		},
		{
			// A connection the target closes after each response, without
			// saying so: the next request goes on a fresh connection.
			name: "close after response",
			answer: func(w *bufio.Writer, rq request) action {
				okAnswer(w, rq)
				return closeConn
			},
			exit: cli.ExitOK, class: "idle_closed",
			// A request written after the target's FIN is never read; herd
			// sees the close before any response byte: idle_closed.
			unread: func(st stepJSON) (int64, int64) { return st.Classes["idle_closed"], st.Classes["idle_closed"] },
			check: func(t *testing.T, s *faultTarget, r herdRun) {
				if s.conns != s.requests+r.step.Classes["idle_closed"] {
					t.Errorf("%d connections for %d requests", s.conns, s.requests)
				}
			},
		},
		{
			// A target that resets keep-alive connections idle for 10 ms.
			name: "reset idle connections", idle: 10 * time.Millisecond, idleDo: idleReset,
			exit: cli.ExitOK, class: "reset",
			// A request that arrives as the target resets is lost unread;
			// herd sees a reset before any response byte, as it does
			// from a target that reset after reading: it cannot tell them
			// apart, and counts both as reset.
			unread: func(st stepJSON) (int64, int64) { return 0, st.Classes["reset"] },
		},
		{
			// Issue 9, item 1: a 408 written 30 ms into an idle keep-alive
			// connection was credited to the next request.
			name: "unsolicited 408", idle: 30 * time.Millisecond, idleDo: idle408,
			args: []string{"--scale", "2"},
			exit: cli.ExitOK, class: "idle_closed",
			check: func(t *testing.T, s *faultTarget, r herdRun) {
				st := r.step
				if st.Unsolicited+st.Classes["idle_closed"] != s.sent408 {
					t.Errorf("unsolicited_response %d + idle_closed %d; the target wrote %d 408s", st.Unsolicited, st.Classes["idle_closed"], s.sent408)
				}
				if st.Classes["idle_closed"] != s.after408 {
					t.Errorf("idle_closed %d; %d requests crossed the target's 408", st.Classes["idle_closed"], s.after408)
				}
				if st.Unsolicited == 0 || s.sent408 < 10 {
					t.Errorf("the target wrote %d 408s, herd found %d on idle connections: the fault did not happen", s.sent408, st.Unsolicited)
				}
			},
		},
		{
			// The same over TLS, where the idle check must tell the
			// target's data from TLS's own records.
			name: "unsolicited 408 over TLS", idle: 30 * time.Millisecond, idleDo: idle408, tls: true,
			args: []string{"--insecure"},
			exit: cli.ExitOK, class: "idle_closed",
			check: func(t *testing.T, s *faultTarget, r herdRun) {
				st := r.step
				if st.Unsolicited+st.Classes["idle_closed"] != s.sent408 || st.Classes["idle_closed"] != s.after408 {
					t.Errorf("unsolicited_response %d + idle_closed %d; the target wrote %d 408s, %d requests crossed them",
						st.Unsolicited, st.Classes["idle_closed"], s.sent408, s.after408)
				}
				if st.Unsolicited == 0 {
					t.Errorf("the target wrote %d 408s, herd found none on idle connections", s.sent408)
				}
			},
		},
	}
	serverTLS := testTLSConfig(t)
	for _, engine := range engines() {
		t.Run(engine, func(t *testing.T) {
			for _, c := range cases {
				if c.tls && engine == "loop" {
					continue // TLS runs on the goroutine engine: that subtest covers it
				}
				faultCase(t, tp, engine, serverTLS, c)
			}
		})
	}
}

// engines names the engines of this platform, for --engine: each must
// pass the oracle unchanged.
func engines() []string {
	if runtime.GOOS == "linux" {
		return []string{"goroutine", "loop"}
	}
	return []string{"goroutine"}
}

// faultCase replays the oracle tape against one misbehaving target with
// one engine and checks what the target read against herd's counts.
func faultCase(t *testing.T, tp, engine string, serverTLS *tls.Config, c faultCaseSpec) {
	t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
		var conf *tls.Config
		if c.tls {
			conf = serverTLS
		}
		s := newFaultTarget(t, c.answer, conf)
		s.idleAfter, s.idleDo = c.idle, c.idleDo
		target := s.url()
		if c.refused {
			s.settle(t)
		}
		args := []string{"--timeout", "10s", "--slo", "errors<50%"}
		if c.timeout {
			args[1] = "1s"
		}
		if c.exit == cli.ExitOK {
			// The faults here fail a few requests in a row at most,
			// but a starved machine can bunch them into one second.
			args = append(args, "--abort-on", "off")
		}
		args = append(args, c.args...)
		args = append(args, "--engine", engine)
		r := replayCLI(t, tp, target, args...)
		s.settle(t)
		st := r.step
		t.Logf("herd: exit %d, planned %d sent %d written %d completed %d errors %d %v retried %d unsolicited %d mismatches %d not_sent %v; heap peak %d KiB",
			r.code, st.Planned, st.Sent, st.Written, st.Completed, st.Errors, st.Classes, st.Retried, st.Unsolicited, st.Mismatches, st.NotSent, r.heapPeak>>10)
		t.Logf("target: %d connections, %d requests %v, %d bytes (%d stray), %d answered, %d resets, %d 408s (%d requests after them)",
			s.conns, s.requests, s.methods, s.bytes, s.stray, s.answered, s.resets, s.sent408, s.after408)

		if r.code != c.exit {
			t.Errorf("exit %d, want %d\n%s", r.code, c.exit, r.stderr)
		}
		if want := map[bool]string{true: "goroutine", false: engine}[c.tls]; r.engine != want {
			t.Errorf("the results say engine %q; --engine %s against this target runs %q", r.engine, engine, want)
		}
		if st.Sent != st.Completed+st.Errors {
			t.Errorf("sent %d != completed %d + errors %d", st.Sent, st.Completed, st.Errors)
		}
		notSent := int64(0)
		for _, n := range st.NotSent {
			notSent += n
		}
		if st.Planned != st.Sent+notSent {
			t.Errorf("planned %d != sent %d + not sent %d", st.Planned, st.Sent, notSent)
		}
		if st.Aborted != (c.exit == cli.ExitRequirement) {
			t.Errorf("aborted %v, exit %d", st.Aborted, r.code)
		}
		// What the target read, against herd's counts.
		lo, hi := int64(0), int64(0)
		if c.unread != nil {
			lo, hi = c.unread(st)
		}
		if unread := st.Written - s.requests; st.Written < 0 || unread < lo || unread > hi {
			t.Errorf("the target read %d requests; herd wrote %d; want %d to %d of them unread", s.requests, st.Written, lo, hi)
		}
		if c.refused {
			if st.Written != 0 || st.Sent == 0 {
				t.Errorf("refused: sent %d, written %d", st.Sent, st.Written)
			}
		} else if st.Written == st.Sent && s.requests == st.Written {
			// Every request arrived whole, once: by method too.
			byMethod := map[string]int64{}
			for _, rt := range st.Routes {
				byMethod[rt.Method] += rt.Sent
			}
			if fmt.Sprint(byMethod) != fmt.Sprint(s.methods) {
				t.Errorf("herd sent %v by method; the target read %v", byMethod, s.methods)
			}
		}
		if s.stray != 0 {
			t.Errorf("the target read %d bytes of requests cut short", s.stray)
		}
		if s.answered != st.Completed+st.Classes["http_5xx"] {
			t.Errorf("the target answered %d requests; herd completed %d (%d of them 5xx)", s.answered, st.Completed, st.Classes["http_5xx"])
		}
		// The errors, their class and why.
		for class, n := range st.Classes {
			// Where the fault is a timeout, a dial that a starved
			// machine made slower than the timeout is one too.
			if class != c.class && (!c.timeout || class != "connect_timeout") {
				t.Errorf("%d errors of class %s, want only %q", n, class, c.class)
			}
			msg := st.FirstErrors[class]
			if msg == "" {
				t.Errorf("no first error for class %s", class)
			}
			if class == c.class && c.message != "" && !strings.Contains(msg, c.message) {
				t.Errorf("first %s error %q, want it to say %q", class, msg, c.message)
			}
			if line := "first " + class + ": " + msg; !strings.Contains(r.stdout, line) {
				t.Errorf("the text summary lacks %q:\n%s", line, r.stdout)
			}
		}
		if c.exit == cli.ExitRequirement && st.Errors == 0 {
			t.Errorf("no errors: the fault did not happen")
		}
		noGoFormatting(t, "stdout", r.stdout)
		noGoFormatting(t, "stderr", r.stderr)
		noGoFormatting(t, "results", string(r.raw))
		if r.heapPeak > 64<<20 {
			t.Errorf("the Go heap grew by %d MiB during the run", r.heapPeak>>20)
		}
		if c.check != nil {
			c.check(t, s, r)
		}
	})
}

// TestRedirectNotFollowed: a 302 to another host on 127.0.0.1 is a
// response like any other (a mismatch); the other host gets nothing.
func TestRedirectNotFollowed(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine, func(t *testing.T) { testRedirectNotFollowed(t, engine) })
	}
}

func testRedirectNotFollowed(t *testing.T, engine string) {
	tp := oracleTape(t)
	other := newFaultTarget(t, nil, nil)
	s := newFaultTarget(t, func(w *bufio.Writer, _ request) action {
		fmt.Fprintf(w, "HTTP/1.1 302 Found\r\nLocation: %s/stolen\r\nContent-Length: 0\r\n\r\n", other.url())
		return keepOpen
	}, nil)
	r := replayCLI(t, tp, s.url(), "--slo", "errors<1%", "--engine", engine)
	s.settle(t)
	other.settle(t)
	st := r.step
	if r.code != cli.ExitOK || other.requests != 0 || other.conns != 0 {
		t.Fatalf("exit %d; the redirect's host got %d connections and %d requests", r.code, other.conns, other.requests)
	}
	if s.requests != st.Sent || st.Written != st.Sent || st.Mismatches != st.Sent || st.Errors != 0 {
		t.Fatalf("target read %d; sent %d, written %d, mismatches %d, errors %d", s.requests, st.Sent, st.Written, st.Mismatches, st.Errors)
	}
}

// testTLSConfig is a server configuration with httptest's self-signed
// certificate.
func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	defer srv.Close()
	return srv.TLS.Clone()
}

// TestErrorCauses: a target that cannot be reached or trusted says why, in
// the results and in the text summary, in words.
func TestErrorCauses(t *testing.T) {
	tp := oracleTape(t)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	cases := []struct {
		name, target, class, message string
		tls                          bool
	}{
		// A name no resolver can answer (a label longer than 63 bytes is
		// refused before any query leaves the machine).
		{"unresolvable", "http://" + strings.Repeat("a", 64) + ".invalid:8080", "connect_error", "no such host", false},
		{"port 0", "http://127.0.0.1:0", "connect_refused", "127.0.0.1:0: connect: connection refused", false},
		{"self-signed", tlsSrv.URL, "tls_error", "x509: certificate signed by unknown authority", true},
	}
	for _, engine := range engines() {
		for _, c := range cases {
			if c.tls && engine == "loop" {
				continue // TLS runs on the goroutine engine
			}
			t.Run(engine+"/"+strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				r := replayCLI(t, tp, c.target, "--abort-on", "off", "--window", "0s-300ms", "--engine", engine)
				st := r.step
				if st.Sent == 0 || st.Classes[c.class] != st.Sent || st.Written != 0 {
					t.Fatalf("sent %d, written %d, classes %v; want every request a %s", st.Sent, st.Written, st.Classes, c.class)
				}
				msg := st.FirstErrors[c.class]
				if !strings.Contains(msg, c.message) {
					t.Errorf("first %s error %q, want it to say %q", c.class, msg, c.message)
				}
				if line := "first " + c.class + ": " + msg; !strings.Contains(r.stdout, line) {
					t.Errorf("the text summary lacks %q:\n%s", line, r.stdout)
				}
				noGoFormatting(t, "stdout", r.stdout)
				noGoFormatting(t, "stderr", r.stderr)
				noGoFormatting(t, "results", string(r.raw))
			})
		}
	}
}
