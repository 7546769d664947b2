package record

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-replay/herd/tape"
)

func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUpstreamTimeout(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
	})
	pr := startProxy(t, be.URL, Options{ResponseTimeout: 200 * time.Millisecond}, nil)
	if code, _ := get(t, http.DefaultClient, "http://"+pr.addr+"/slow"); code != 504 {
		t.Fatalf("slow upstream: status %d, want 504", code)
	}
	if code, _ := get(t, http.DefaultClient, "http://"+pr.addr+"/fast"); code != 200 {
		t.Fatalf("after a timeout: status %d", code)
	}
	st := pr.stop(t)
	exs := readTape(t, pr.path)
	if st.UpstreamTimeouts != 1 || len(exs) != 2 {
		t.Fatalf("timeouts %d, %d exchanges", st.UpstreamTimeouts, len(exs))
	}
	var noResp int
	for _, e := range exs {
		if !e.HasResponse() {
			noResp++
		}
	}
	if noResp != 1 {
		t.Fatalf("%d exchanges without a response, want the timed-out one", noResp)
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	pr := startProxy(t, down, Options{DialTimeout: time.Second}, nil)
	resps := raw(t, pr.addr, "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n", "GET")
	if resps[0].StatusCode != 502 {
		t.Fatalf("status %d, want 502", resps[0].StatusCode)
	}
	st := pr.stop(t)
	exs := readTape(t, pr.path)
	if st.UpstreamErrors != 1 || len(exs) != 1 || exs[0].HasResponse() {
		t.Fatalf("stats %+v, tape %+v", st, exs)
	}
}

// failAfter is a tape destination that fails once it took n bytes, as a
// full disk does.
type failAfter struct {
	mu sync.Mutex
	n  int
}

func (f *failAfter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errors.New("no space left on device")
	}
	f.n -= len(p)
	return len(p), nil
}

// TestTapeWriteFails: when the tape cannot be written the proxy goes on
// forwarding every request, and counts the exchanges it could not record.
func TestTapeWriteFails(t *testing.T) {
	be := newBackend(t, nil)
	var reported atomic.Int32
	var w *tape.Writer
	pr := startProxy(t, be.URL, Options{WriteError: func(error) { reported.Add(1) }}, func(string) tape.Sink {
		var err error
		// Room for the header and a few chunks; each chunk is cut after
		// 16 records.
		w, err = tape.NewWriter(&failAfter{n: 2000}, tape.Meta{}, tape.WriterOptions{ChunkRecords: 16, FlushInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return w
	})
	const n = 300
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for i := 0; i < n; i++ {
		if code, body := get(t, client, fmt.Sprintf("http://%s/r/%d", pr.addr, i)); code != 200 || body != fmt.Sprintf("hello /r/%d", i) {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	st := pr.stop(t)
	if got := len(be.received()); got != n {
		t.Fatalf("backend received %d of %d", got, n)
	}
	if st.WriteFailed == 0 || st.Exchanges+st.WriteFailed != n || st.Requests != n {
		t.Fatalf("requests %d, exchanges %d, tape_write_failed %d", st.Requests, st.Exchanges, st.WriteFailed)
	}
	if reported.Load() != 1 {
		t.Fatalf("write error reported %d times, want once", reported.Load())
	}
}

// TestMemoryBound: with little room for recording, large bodies still go
// through whole, and the exchanges that did not fit are counted.
func TestMemoryBound(t *testing.T) {
	be := newBackend(t, nil)
	hold := make(chan struct{})
	var waiting sync.WaitGroup
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		waiting.Done()
		<-hold // every body is in flight at once
		fmt.Fprintf(w, "%d", len(b))
	})
	pr := startProxy(t, be.URL, Options{MaxBody: 64 << 10, MaxHeld: 200 << 10}, nil)
	const n = 8
	waiting.Add(n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post("http://"+pr.addr+"/up", "application/octet-stream", strings.NewReader(strings.Repeat("x", 64<<10)))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprint(64<<10) {
				t.Errorf("upstream got %s bytes", b)
			}
		}()
	}
	waiting.Wait()
	close(hold)
	wg.Wait()
	st := pr.stop(t)
	if st.MemoryLimit == 0 || st.Exchanges+st.Discarded() != n || st.Exchanges == 0 {
		t.Fatalf("exchanges %d, discarded %d (memory_limit %d), want some of %d over the bound", st.Exchanges, st.Discarded(), st.MemoryLimit, n)
	}
}

func TestMalformedRequests(t *testing.T) {
	be := newBackend(t, nil)
	pr := startProxy(t, be.URL, Options{}, nil)
	if r := raw(t, pr.addr, "GARBAGE\r\n\r\n", "GET"); r[0].StatusCode != 400 {
		t.Errorf("garbage: %d", r[0].StatusCode)
	}
	if r := raw(t, pr.addr, "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "POST"); r[0].StatusCode != 400 {
		t.Errorf("conflicting lengths: %d", r[0].StatusCode)
	}
	if r := raw(t, pr.addr, "GET / HTTP/1.1\r\nX: "+strings.Repeat("y", 300<<10)+"\r\n\r\n", "GET"); r[0].StatusCode != 431 {
		t.Errorf("huge head: %d", r[0].StatusCode)
	}
	st := pr.stop(t)
	if len(be.received()) != 0 || st.RequestMalformed != 2 || st.RequestTooLarge != 1 || st.Requests != 3 {
		t.Fatalf("backend got %v; stats %+v", be.received(), st)
	}
}

// TestUpstreamClosedIdle: an upstream that closes idle connections without
// saying so costs the client nothing: the proxy notices and dials again.
func TestUpstreamClosedIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				served.Add(1)
				// Keep-alive promised, then closed at once.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	pr := startProxy(t, "http://"+ln.Addr().String(), Options{}, nil)
	c, err := net.Dial("tcp", pr.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		fmt.Fprint(c, "POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 1\r\n\r\nx")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		io.ReadAll(resp.Body)
		time.Sleep(1100 * time.Millisecond) // idle long enough to be checked
	}
	c.Close()
	st := pr.stop(t)
	if served.Load() != 2 || st.UpstreamDials != 2 || st.UpstreamErrors != 0 {
		t.Fatalf("served %d, dials %d, errors %d", served.Load(), st.UpstreamDials, st.UpstreamErrors)
	}
}

// TestShutdownGrace: a request under way when the proxy is told to stop
// completes; the proxy then stops.
func TestShutdownGrace(t *testing.T) {
	started := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	})
	pr := startProxy(t, be.URL, Options{}, nil)
	type result struct {
		code int
		body string
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + pr.addr + "/slow")
		if err != nil {
			res <- result{0, err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b)}
	}()
	<-started
	st := pr.stop(t)
	r := <-res
	if r.code != 200 || r.body != "late" {
		t.Fatalf("request under way at shutdown: %d %q", r.code, r.body)
	}
	if st.Exchanges != 1 {
		t.Fatalf("exchanges %d", st.Exchanges)
	}
}

func TestRedaction(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	})
	pr := startProxy(t, be.URL, Options{}, nil) // redaction on by default
	req, _ := http.NewRequest("GET", "http://"+pr.addr+"/me", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "Bearer s3cret" {
		t.Fatalf("the upstream saw %q: the secret must pass through unchanged", b)
	}
	st := pr.stop(t)
	exs := readTape(t, pr.path)
	v, _ := exs[0].Header("Authorization")
	if len(exs) != 1 || !strings.HasPrefix(v, tape.RedactedPrefix) || exs[0].Flags&tape.Redacted == 0 || st.Redacted != 1 {
		t.Fatalf("tape holds %q, flags %b, redacted %d", v, exs[0].Flags, st.Redacted)
	}
	if st.Tape().Counters["redacted_header:authorization"] != 1 {
		t.Fatalf("counters %v lack the redaction of authorization", st.Tape().Counters)
	}
}
