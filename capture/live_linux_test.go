//go:build linux

package capture

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// syncSink collects exchanges from the capture goroutine.
type syncSink struct {
	mu sync.Mutex
	memSink
}

func (s *syncSink) Write(e *tape.Exchange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memSink.Write(e)
}

func (s *syncSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ex)
}

// TestLiveLoopback serves HTTP on 127.0.0.1, captures lo while a client
// sends requests over keep-alive and fresh connections, and checks that
// every request sent is captured once, paired with its response.
func TestLiveLoopback(t *testing.T) {
	testenv.NeedRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Set-Cookie", "sid=1")
		fmt.Fprintf(w, "hello %s %s", r.Method, strings.Repeat("x", 3000))
	})}
	go srv.Serve(ln)
	defer srv.Close()

	src, err := OpenLive(LiveOptions{Interface: "lo", Ports: []int{port}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sink syncSink
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Run(ctx, src, Options{Ports: []int{port}}, &sink, nil)
		done <- result{st, err}
	}()

	const keepAlive, fresh = 40, 20
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	ka := &http.Client{Timeout: 5 * time.Second}
	for i := range keepAlive {
		body := strings.NewReader(strings.Repeat("b", i*100))
		resp, err := ka.Post(fmt.Sprintf("%s/ka/%d", url, i), "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for i := range fresh {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(fmt.Sprintf("%s/fresh/%d", url, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ka.CloseIdleConnections()
	// Wait (bounded) until the capture has read them all; keep-alive
	// exchanges are settled as their responses complete.
	for deadline := time.Now().Add(10 * time.Second); sink.count() < keepAlive+fresh && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // any duplicate would show now
	cancel()
	res := <-done
	if res.err != context.Canceled {
		t.Fatalf("Run: %v", res.err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if got := len(sink.ex); got != keepAlive+fresh {
		t.Fatalf("captured %d exchanges, sent %d requests (stats %+v)", got, keepAlive+fresh, res.st)
	}
	seen := make(map[string]bool)
	for _, e := range sink.ex {
		if seen[e.Target] {
			t.Errorf("%s captured twice", e.Target)
		}
		seen[e.Target] = true
		if e.Status != 200 || e.Flags&^tape.Redacted != 0 || e.RespBodyLen != int64(len("hello ")+len(e.Method)+1+3000) {
			t.Errorf("%s %s: status %d flags %b body %d", e.Method, e.Target, e.Status, e.Flags, e.RespBodyLen)
		}
		if e.Server.Port() != uint16(port) {
			t.Errorf("server %s, want port %d", e.Server, port)
		}
	}
	if res.st.KernelDrops != 0 {
		t.Logf("kernel drops: %d", res.st.KernelDrops)
	}
}
