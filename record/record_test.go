package record

import (
	"bufio"
	"bytes"
	"context"

	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/tapetest"
	"github.com/herd-replay/herd/tape"
)

// backend is a real server on 127.0.0.1 that counts what it receives.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	got  []string // "METHOD target body-length"
	xff  []string
	body map[string][]byte
}

func newBackend(t testing.TB, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{body: map[string][]byte{}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, fmt.Sprintf("%s %s %d", r.Method, r.RequestURI, len(body)))
		b.xff = append(b.xff, r.Header.Get("X-Forwarded-For"))
		b.body[r.RequestURI] = body
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// proxyRun is a proxy running on 127.0.0.1 in front of upstream, writing
// a tape on disk.
type proxyRun struct {
	addr   string
	path   string
	cancel context.CancelFunc
	done   chan struct{}
	stats  Stats
	err    error
}

func startProxy(t testing.TB, upstream string, opts Options, sink func(path string) tape.Sink) *proxyRun {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	opts.Upstream = u
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pr := &proxyRun{addr: ln.Addr().String(), path: filepath.Join(t.TempDir(), "rec.tape"), done: make(chan struct{})}
	var w *tape.Writer
	var s tape.Sink
	if sink != nil {
		s = sink(pr.path)
	} else {
		w, err = tape.Create(pr.path, tape.Meta{Source: tape.Source{Kind: "proxy"}}, tape.WriterOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		s = w
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr.cancel = cancel
	go func() {
		defer close(pr.done)
		pr.stats, pr.err = Run(ctx, ln, opts, s)
		if w != nil {
			w.SetStats(pr.stats.Tape())
			if err := w.Close(); err != nil && pr.err == nil {
				pr.err = err
			}
		}
	}()
	t.Cleanup(func() { pr.stop(t) })
	return pr
}

func (pr *proxyRun) stop(t testing.TB) Stats {
	t.Helper()
	pr.cancel()
	select {
	case <-pr.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy did not stop")
	}
	if pr.err != nil {
		t.Fatalf("proxy: %v", pr.err)
	}
	return pr.stats
}

func readTape(t testing.TB, path string) []tape.Exchange {
	t.Helper()
	exs, _ := tapetest.Read(t, path)
	return exs
}

// raw sends raw bytes on one connection and reads a response for each of
// methods.
func raw(t *testing.T, addr, req string, methods ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for i, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		out = append(out, resp)
	}
	return out
}

func TestProxyHTTP1(t *testing.T) {
	be := newBackend(t, nil)
	pr := startProxy(t, be.URL, Options{MaxBody: 16}, nil)

	// Keep-alive, a body, a chunked body with a trailer, pipelining, HEAD.
	resps := raw(t, pr.addr, "GET /a?x=1 HTTP/1.1\r\nHost: svc\r\nX-Order: 1\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n20\r\n0123456789abcdef0123456789abcdef\r\n0\r\nX-Sum: 9\r\n\r\n"+
		"HEAD /d HTTP/1.1\r\nHost: svc\r\n\r\n", "GET", "POST", "POST", "HEAD")
	for i, r := range resps {
		if r.StatusCode != 200 {
			t.Errorf("response %d: status %d", i, r.StatusCode)
		}
	}
	if b, _ := io.ReadAll(resps[0].Body); string(b) != "hello /a" {
		t.Errorf("body %q", b)
	}
	st := pr.stop(t)

	got := be.received()
	want := []string{"GET /a?x=1 0", "POST /b 5", "POST /c 36", "HEAD /d 0"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("backend received %q, want %q", got, want)
	}
	if string(be.body["/c"]) != "abcd0123456789abcdef0123456789abcdef" {
		t.Errorf("chunked body arrived as %q", be.body["/c"])
	}
	for _, x := range be.xff {
		if x != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want 127.0.0.1", x)
		}
	}
	exs := readTape(t, pr.path)
	if len(exs) != 4 || st.Exchanges != 4 || st.Requests != 4 || st.Discarded() != 0 {
		t.Fatalf("tape holds %d exchanges; stats %+v", len(exs), st)
	}
	for i, e := range exs {
		if e.ConnID != exs[0].ConnID || e.Seq != uint32(i) {
			t.Errorf("exchange %d: connection %d seq %d, want one connection in order", i, e.ConnID, e.Seq)
		}
		if !e.ResponseComplete() || e.Status != 200 || e.Proto != tape.HTTP11 {
			t.Errorf("exchange %d: status %d flags %b proto %s", i, e.Status, e.Flags, e.Proto)
		}
		if !(e.ReqStart <= e.ReqEnd && e.ReqEnd <= e.RespStart && e.RespStart <= e.RespEnd) {
			t.Errorf("exchange %d: times out of order %d %d %d %d", i, e.ReqStart, e.ReqEnd, e.RespStart, e.RespEnd)
		}
	}
	if e := exs[0]; e.Target != "/a?x=1" || len(e.ReqHeader) != 2 || e.ReqHeader[1] != (tape.Field{Name: "X-Order", Value: "1"}) || e.RespBodyLen != 8 {
		t.Errorf("exchange 0: %+v", e)
	}
	if e := exs[1]; string(e.ReqBody) != "hello" || e.ReqBodyLen != 5 || e.Flags&tape.ReqBodyTruncated != 0 {
		t.Errorf("exchange 1 body %q len %d flags %b", e.ReqBody, e.ReqBodyLen, e.Flags)
	}
	if e := exs[2]; string(e.ReqBody) != "abcd0123456789ab" || e.ReqBodyLen != 36 || e.Flags&tape.ReqBodyTruncated == 0 || len(e.ReqTrailer) != 1 {
		t.Errorf("exchange 2 body %q len %d flags %b trailer %v", e.ReqBody, e.ReqBodyLen, e.Flags, e.ReqTrailer)
	}
	if e := exs[3]; e.Method != "HEAD" || e.RespBodyLen != 0 {
		t.Errorf("exchange 3: %s body %d", e.Method, e.RespBodyLen)
	}
}
