package replay

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/testca"
	"golang.org/x/net/http2/hpack"
)

// TestH2CountIdentity: over h2c and over TLS (h2 by ALPN, a private CA),
// the server sees HTTP/2.0, one connection, and exactly the streams herd
// reports, every one answered.
func TestH2CountIdentity(t *testing.T) {
	ca := testca.New(t)
	for _, c := range []struct {
		name string
		ca   *testca.CA
	}{{"h2c", nil}, {"h2-tls", ca}} {
		t.Run(c.name, func(t *testing.T) {
			srv := newH2Target(t, c.ca, func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(5 * time.Millisecond)
				io.WriteString(w, "ok")
			}, nil)
			cl := h2cClient(srv)
			if c.ca != nil {
				cl = h2tlsClient(srv, c.ca)
			}
			const n = 60
			reqs := h2Reqs(n, "/count")
			// Bursts of concurrent streams: three requests due at once.
			dues := make([]time.Duration, n)
			for i := range dues {
				dues[i] = time.Duration(i/3) * 5 * time.Millisecond
			}
			run := runH2(t, cl, reqs, dues, Session, 5*time.Second)
			paths, protos := srv.received()
			if got := run.classes(); got["ok"] != n || len(run.outcomes) != n {
				t.Errorf("herd: %v, want %d ok", got, n)
			}
			if len(paths) != n || protos["HTTP/2.0"] != n || srv.conns.Load() != 1 {
				t.Errorf("server: %d requests %v on %d connections, want %d HTTP/2.0 on 1", len(paths), protos, srv.conns.Load(), n)
			}
			if srv.peak.Load() < 2 {
				t.Errorf("server saw at most %d streams at once: the bursts were not concurrent", srv.peak.Load())
			}
			for _, o := range run.outcomes {
				if lag := o.res.sent - o.res.due; lag > int64(50*time.Millisecond) && o.connect == 0 {
					t.Errorf("request %d sent %v late", o.res.req, time.Duration(lag))
				}
			}
			if run.outcomes[0].connect <= 0 {
				t.Errorf("the first request carries no connection setup time")
			}
		})
	}
}

// TestH2MaxConcurrentStreams: a target that allows one stream at a time
// gets one at a time; the others wait for the slot, the wait counted as
// schedule lag and in latency, none refused.
func TestH2MaxConcurrentStreams(t *testing.T) {
	srv := newH2Target(t, nil, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(40 * time.Millisecond)
		io.WriteString(w, "ok")
	}, &http.HTTP2Config{MaxConcurrentStreams: 1})
	const n = 5
	run := runH2(t, h2cClient(srv), h2Reqs(n, "/one"), make([]time.Duration, n), Strict, 5*time.Second)
	if got := run.classes(); got["ok"] != n {
		t.Fatalf("herd: %v, want %d ok", got, n)
	}
	if p := srv.peak.Load(); p != 1 {
		t.Errorf("server saw %d streams at once, want 1", p)
	}
	waited := 0
	var maxLag int64
	for _, o := range run.outcomes {
		if o.slotWait > 0 {
			waited++
		}
		maxLag = max(maxLag, o.res.sent-o.res.due)
		if lat := o.res.done - o.res.due; lat < o.res.sent-o.res.due {
			t.Errorf("latency %v shorter than the lag", time.Duration(lat))
		}
	}
	if waited != n-1 || maxLag < int64(4*35*time.Millisecond) {
		t.Errorf("%d streams waited for a slot (want %d), max lag %v (want >= 140ms)", waited, n-1, time.Duration(maxLag))
	}
}

// TestH2StallingTarget: coordinated omission. A target that stalls for a
// second still receives the requests due during the stall at their due
// times (HTTP/2 does not queue them behind the stalled ones), and their
// latencies, measured from the due time, carry the rest of the stall.
func TestH2StallingTarget(t *testing.T) {
	var stallUntil atomic.Int64
	srv := newH2Target(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if d := time.Until(time.Unix(0, stallUntil.Load())); d > 0 {
			time.Sleep(d)
		}
		io.WriteString(w, "ok")
	}, nil)
	const n = 40
	stallUntil.Store(time.Now().Add(time.Second).UnixNano())
	run := runH2(t, h2cClient(srv), h2Reqs(n, "/stall"), every(n, 20*time.Millisecond), Strict, 5*time.Second)
	if got := run.classes(); got["ok"] != n {
		t.Fatalf("herd: %v", got)
	}
	_, _ = srv.received()
	srv.mu.Lock()
	arrivals := append([]time.Time(nil), srv.at...)
	srv.mu.Unlock()
	stallEnd := time.Unix(0, stallUntil.Load())
	// Every request is due before the stall ends; queued behind it, none
	// would arrive before its end. Allow a loaded machine some stragglers.
	early := 0
	for _, at := range arrivals {
		if at.Before(stallEnd.Add(-200 * time.Millisecond)) {
			early++
		}
	}
	carried := 0
	for _, o := range run.outcomes {
		rest := stallEnd.Sub(clockTime(o.res.due))
		if lat := time.Duration(o.res.done - o.res.due); lat >= rest-20*time.Millisecond {
			carried++
		}
	}
	if early < n*3/4 || carried != n {
		t.Errorf("%d of %d requests reached the server during the stall (want most); %d latencies carry the stall (want %d)", early, n, carried, n)
	}
}

// TestH2SessionPacingWaits: a request the recorded client sent only after
// the previous response waits for it under session pacing; strict pacing
// never waits.
func TestH2SessionPacingWaits(t *testing.T) {
	srv := newH2Target(t, nil, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "ok")
	}, nil)
	for _, c := range []struct {
		pacing  Pacing
		waitMin time.Duration
	}{{Session, 90 * time.Millisecond}, {Strict, 0}} {
		reqs := h2Reqs(2, "/dep")
		reqs[1].H2.After = true
		run := runH2(t, h2cClient(srv), reqs, []time.Duration{0, 10 * time.Millisecond}, c.pacing, 5*time.Second)
		lag := time.Duration(run.outcomes[1].res.sent - run.outcomes[1].res.due)
		if c.pacing == Session && lag < c.waitMin || c.pacing == Strict && lag > 30*time.Millisecond {
			t.Errorf("%v: the second request left %v after its due time", c.pacing, lag)
		}
	}
}

// TestH2Timeout: a stream with no answer times out, is reset (the server
// sees its request cancelled), and is a timeout.
func TestH2Timeout(t *testing.T) {
	srv := newH2Target(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "ok")
	}, nil)
	reqs := append(h2Reqs(2, "/hang"), h2Reqs(2, "/fine")...)
	run := runH2(t, h2cClient(srv), reqs, every(4, 5*time.Millisecond), Strict, 300*time.Millisecond)
	if got := run.classes(); got[ClassTimeout] != 2 || got["ok"] != 2 {
		t.Errorf("herd: %v", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for srv.cancels.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c := srv.cancels.Load(); c != 2 {
		t.Errorf("server saw %d requests reset, want 2", c)
	}
}

// TestH2ResetAndBodies: a stream the target resets is an error of the
// reset's code; request bodies larger than the target's windows arrive
// whole, with their trailers.
func TestH2ResetAndBodies(t *testing.T) {
	var got atomic.Int64
	srv := newH2Target(t, nil, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/upload":
			b, _ := io.ReadAll(r.Body)
			if bytes.Equal(b, bytes.Repeat([]byte{'u'}, 1<<20)) && r.Trailer.Get("X-Sum") == "ok" {
				got.Add(1)
			}
		case "/big":
			w.Write(bytes.Repeat([]byte{'b'}, 3<<20))
			return
		}
		io.WriteString(w, "ok")
	}, &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10})
	reqs := append(h2Reqs(1, "/abort"), h2Reqs(3, "/upload")...)
	reqs = append(reqs, h2Reqs(2, "/big")...)
	for i := 1; i <= 3; i++ {
		reqs[i].H2.Method = "POST"
		reqs[i].H2.Body = bytes.Repeat([]byte{'u'}, 1<<20)
		reqs[i].H2.Header = append(reqs[i].H2.Header, hpack.HeaderField{Name: "trailer", Value: "X-Sum"})
		reqs[i].H2.Trailer = []hpack.HeaderField{{Name: "x-sum", Value: "ok"}}
	}
	run := runH2(t, h2cClient(srv), reqs, make([]time.Duration, len(reqs)), Strict, 10*time.Second)
	if c := run.classes(); c["h2_rst_internal_error"] != 1 || c["ok"] != 5 {
		t.Errorf("herd: %v", c)
	}
	if got.Load() != 3 {
		t.Errorf("the server received %d whole bodies with their trailers, want 3", got.Load())
	}
	for _, o := range run.outcomes[4:] {
		if o.res.bytes < 3<<20 {
			t.Errorf("response body %d bytes read, want 3 MiB", o.res.bytes)
		}
	}
}

// TestH2GRPC replays gRPC calls against an echo server written with plain
// net/http: framed bodies and trailers go out and come back; a
// grpc-status other than recorded is a mismatch, a failure where the
// recording had success an error.
func TestH2GRPC(t *testing.T) {
	var echoed atomic.Int64
	srv := newH2Target(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") || r.Header.Get("Te") != "trailers" {
			w.WriteHeader(415)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		if len(b) < 5 || int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4]) != len(b)-5 {
			w.Header().Set("Grpc-Status", "3")
			return
		}
		w.Write(b)
		echoed.Add(1)
		switch string(b[5:]) {
		case "fail":
			w.Header().Set("Grpc-Status", "13")
		default:
			w.Header().Set("Grpc-Status", "0")
		}
	}, nil)
	call := func(msg, recorded string) Req {
		return Req{Status: 200, H2: &H2Req{Method: "POST", Scheme: "http", Authority: "grpc.test", Path: "/echo.Echo/Say",
			Header: []hpack.HeaderField{{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}},
			Body:   grpcFrame(msg), GRPC: true, GRPCStatus: recorded}}
	}
	reqs := []Req{call("hello", "0"), call("fail", "0"), call("fail", "13"), call("hello", "5")}
	run := runH2(t, h2cClient(srv), reqs, every(len(reqs), 5*time.Millisecond), Strict, 5*time.Second)
	want := []string{"ok", ClassGRPC, "ok", "mismatch"}
	for i, o := range run.outcomes {
		got := "ok"
		switch {
		case o.res.class != "":
			got = o.res.class
		case o.res.mismatch:
			got = "mismatch"
		}
		if got != want[i] {
			t.Errorf("call %d: %s, want %s (err %v)", i, got, want[i], o.err)
		}
	}
	if echoed.Load() != 4 {
		t.Errorf("the server echoed %d framed messages, want 4", echoed.Load())
	}
}
