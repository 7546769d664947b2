package replay

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/testca"
	"golang.org/x/net/http2/hpack"
)

// h2Target is a Go net/http server on 127.0.0.1 speaking HTTP/2, over TLS
// (h2 by ALPN, a certificate of a test CA) or cleartext (h2c). It counts
// what it received: requests by protocol, connections, streams at once.
type h2Target struct {
	ln      net.Listener
	srv     *http.Server
	url     string
	tls     bool
	mu      sync.Mutex
	reqs    []string    // paths, in arrival order
	at      []time.Time // their arrival times
	protos  map[string]int
	conns   atomic.Int64
	cur     atomic.Int64
	peak    atomic.Int64
	cancels atomic.Int64 // requests whose stream the client reset
}

func newH2Target(t testing.TB, ca *testca.CA, handler http.HandlerFunc, conf *http.HTTP2Config) *h2Target {
	t.Helper()
	s := &h2Target{protos: map[string]int{}}
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
	}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.reqs = append(s.reqs, r.URL.Path)
			s.at = append(s.at, time.Now())
			s.protos[r.Proto]++
			s.mu.Unlock()
			n := s.cur.Add(1)
			for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
			}
			defer s.cur.Add(-1)
			handler(w, r)
			if r.Context().Err() != nil {
				s.cancels.Add(1)
			}
		}),
		HTTP2: conf,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
	}
	var p http.Protocols
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	if ca != nil {
		cert := ca.Server(t, time.Now().Add(time.Hour), "127.0.0.1", "staging.test").TLS
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		s.srv.Protocols = &p
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.tls = true
		s.url = "https://" + ln.Addr().String()
		go s.srv.ServeTLS(ln, "", "")
	} else {
		p.SetUnencryptedHTTP2(true)
		p.SetHTTP1(true)
		s.srv.Protocols = &p
		s.url = "http://" + ln.Addr().String()
		go s.srv.Serve(ln)
	}
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *h2Target) received() (paths []string, protos map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	protos = make(map[string]int)
	for k, v := range s.protos {
		protos[k] = v
	}
	return append([]string(nil), s.reqs...), protos
}

// h2Run is one session's jobs run against a client, with the engine's
// parts a session needs made here: the dispatcher, unbounded slots, and
// the outcomes collected.
type h2Run struct {
	mu       sync.Mutex
	outcomes []h2Outcome
	conns    atomic.Int64 // connection slots taken and not given back
	t0       int64
}

// runH2 replays reqs, due at the offsets given, on one session.
func runH2(t testing.TB, cl *h2Client, reqs []Req, dues []time.Duration, pacing Pacing, timeout time.Duration) *h2Run {
	t.Helper()
	disp := newDispatcher()
	defer disp.close()
	run := &h2Run{t0: nanotime() + int64(20*time.Millisecond)}
	ctx := context.Background()
	ch := make(chan struct{}, 1)
	s := &h2Session{cl: cl, env: h2Env{
		timeout: timeout, pacing: pacing, stop: ctx, dial: ctx,
		sleepUntil:      func(due int64) error { return disp.sleepUntil(ctx, due, ch) },
		acquireInflight: func(int64) bool { return true },
		releaseInflight: func() {},
		acquireConn:     func(int64) bool { run.conns.Add(1); return true },
		releaseConn:     func() { run.conns.Add(-1) },
		report: func(o h2Outcome) {
			run.mu.Lock()
			run.outcomes = append(run.outcomes, o)
			run.mu.Unlock()
		},
	}}
	jobs := make([]*h2Job, len(reqs))
	for i := range reqs {
		jobs[i] = &h2Job{r: &reqs[i], due: run.t0 + int64(dues[i]), id: reqID{req: int32(i)}, finished: make(chan struct{})}
	}
	s.run(jobs)
	deadline := time.Now().Add(2 * time.Second)
	for run.conns.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := run.conns.Load(); n != 0 {
		t.Errorf("%d connection slots still taken after the session", n)
	}
	sort.Slice(run.outcomes, func(i, j int) bool { return run.outcomes[i].res.req < run.outcomes[j].res.req })
	return run
}

// classes counts the outcomes by error class ("ok" for none, "mismatch"
// for a mismatch).
func (r *h2Run) classes() map[string]int {
	m := map[string]int{}
	for _, o := range r.outcomes {
		switch {
		case o.res.notSent != "":
			m["not_sent:"+o.res.notSent]++
		case o.res.class != "":
			m[o.res.class]++
		case o.res.mismatch:
			m["mismatch"]++
		default:
			m["ok"]++
		}
	}
	return m
}

// h2Reqs makes n GET requests for path (HTTP/2 form), recorded with 200.
func h2Reqs(n int, path string) []Req {
	reqs := make([]Req, n)
	for i := range reqs {
		reqs[i] = Req{Status: 200, H2: &H2Req{Method: "GET", Scheme: "http", Authority: "staging.test", Path: path,
			Header: []hpack.HeaderField{{Name: "user-agent", Value: "herd-test"}}}}
	}
	return reqs
}

func every(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i) * d
	}
	return out
}

func h2cClient(s *h2Target) *h2Client { return &h2Client{addr: s.ln.Addr().String()} }

func h2tlsClient(s *h2Target, ca *testca.CA) *h2Client {
	return &h2Client{addr: s.ln.Addr().String(), tls: &tls.Config{RootCAs: ca.Pool, ServerName: "staging.test", NextProtos: []string{"h2"}}}
}

// grpcFrame frames one gRPC message.
func grpcFrame(msg string) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}
