//go:build linux

package shadow

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/replay"
)

// hit is one request as a test server received it.
type hit struct {
	method, path, auth string
	at, sent           time.Time // when it arrived; when the client sent it (X-Sent-At)
	body               string
	complete           bool // its whole body arrived
}

// counter is a real HTTP server on 127.0.0.1 that records every request
// and answers after delay.
type counter struct {
	mu    sync.Mutex
	hits  []hit
	port  int
	url   string
	delay time.Duration
	srv   *http.Server
	// found answers /missing with 200, where production says 404.
	found bool
}

func newCounter(t *testing.T, delay time.Duration) *counter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{port: ln.Addr().(*net.TCPAddr).Port, delay: delay}
	c.url = fmt.Sprintf("http://127.0.0.1:%d", c.port)
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		h := hit{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), at: time.Now(), body: string(b), complete: err == nil}
		if ns, err := strconv.ParseInt(r.Header.Get("X-Sent-At"), 10, 64); err == nil {
			h.sent = time.Unix(0, ns)
		}
		c.mu.Lock()
		c.hits = append(c.hits, h)
		c.mu.Unlock()
		time.Sleep(c.delay)
		if r.URL.Path == "/missing" && !c.found {
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprintf(w, "%s %s", r.Method, strings.Repeat("x", 500))
	})}
	go c.srv.Serve(ln)
	t.Cleanup(func() { c.srv.Close() })
	return c
}

// got returns the requests the server received whole.
func (c *counter) got() []hit {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []hit
	for _, h := range c.hits {
		if h.complete {
			out = append(out, h)
		}
	}
	return out
}

// traffic is a real client: GETs and POSTs over keep-alive connections and
// fresh ones, each stamped with when it was sent, and a request cut off
// half-way through its body that production never receives whole.
func traffic(t *testing.T, prod *counter, n int) {
	t.Helper()
	ka := &http.Client{Timeout: 5 * time.Second}
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 4 {
				cl := ka
				if i%5 == 4 {
					cl = fresh
				}
				path := fmt.Sprintf("/items/%d/%d", w, i)
				var req *http.Request
				if i%3 == 0 {
					req, _ = http.NewRequest("POST", prod.url+path, strings.NewReader(`{"user":"a","password":"hunter2"}`))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequest("GET", prod.url+path, nil)
				}
				if i == 7 {
					req.URL.Path = "/missing"
				}
				req.Header.Set("Authorization", "Bearer production-secret")
				req.Header.Set("X-Sent-At", strconv.FormatInt(time.Now().UnixNano(), 10))
				resp, err := cl.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	// Half a request: its head promises 1000 bytes of body, 10 come, and
	// the client goes away.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", prod.port))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /half HTTP/1.1\r\nHost: prod\r\nContent-Length: 1000\r\n\r\n0123456789")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	wg.Wait()
}

// shadowRun runs Run on lo for prod's port in the background, once the
// capture is open, and returns a function that waits for its results.
func shadowRun(t *testing.T, prod *counter, o Options) func() (*results.File, Stats) {
	t.Helper()
	testenv.NeedRoot(t)
	src, err := capture.OpenLive(capture.LiveOptions{Interface: "lo", Ports: []int{prod.port}})
	if err != nil {
		t.Fatal(err)
	}
	o.Source, o.Ports = src, []int{prod.port}
	type out struct {
		f   *results.File
		st  Stats
		err error
	}
	done := make(chan out, 1)
	go func() {
		f, st, err := Run(context.Background(), o)
		done <- out{f, st, err}
	}()
	time.Sleep(100 * time.Millisecond) // Run has started: what is captured now is due after its start
	return func() (*results.File, Stats) {
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.f, r.st
	}
}

func sumSteps(f *results.File) (sent, notSent, planned, mismatches int64) {
	for _, st := range f.Steps {
		sent += st.Sent
		planned += st.Planned
		mismatches += st.Mismatches
		for _, n := range st.NotSent {
			notSent += n
		}
	}
	return
}

// TestShadow: a real client drives traffic at a real production server;
// herd shadow captures it on lo and replays it at 2x to a real staging
// server. Staging receives exactly production's complete requests, each
// twice, never the half request, each after its recorded send plus the
// delay and within the lateness bound, with its secrets redacted; the
// results count what staging counted.
func TestShadow(t *testing.T) {
	prod, staging := newCounter(t, 0), newCounter(t, 0)
	staging.found = true
	const delay = 300 * time.Millisecond
	target, _ := replayTarget(staging.url)
	wait := shadowRun(t, prod, Options{Delay: delay, Plan: replay.PlanOptions{Target: target},
		Live: replay.LiveOptions{Settings: replay.Settings{Target: target}, Scale: 2, Interval: time.Second, Duration: 4 * time.Second}})
	traffic(t, prod, 120)
	f, st := wait()

	ph, sh := prod.got(), staging.got()
	prodCount := map[string]int{}
	for _, h := range ph {
		prodCount[h.method+" "+h.path]++
	}
	if len(ph) != 120 || prodCount["POST /half"] != 0 {
		t.Fatalf("production got %d whole requests (%d halves), want the client's 120", len(ph), prodCount["POST /half"])
	}
	stagingCount := map[string]int{}
	for _, h := range sh {
		stagingCount[h.method+" "+h.path]++
	}
	if len(sh) != 2*len(ph) {
		t.Fatalf("staging got %d requests, want twice production's %d; results %s", len(sh), len(ph), f.Verdict)
	}
	for k, n := range prodCount {
		if stagingCount[k] != 2*n {
			t.Fatalf("%s: production %d, staging %d", k, n, stagingCount[k])
		}
	}
	maxLate := max(delay, minMaxLate)
	for _, h := range sh {
		lag := h.at.Sub(h.sent)
		if lag < delay-5*time.Millisecond || lag > delay+maxLate+replay.DefaultLagBound+250*time.Millisecond {
			t.Fatalf("%s %s reached staging %v after the client sent it; want the delay %v, and at most %v more (clone jitter included)",
				h.method, h.path, lag, delay, maxLate+250*time.Millisecond)
		}
		if !strings.HasPrefix(h.auth, "herd-redacted:") || strings.Contains(h.body, "hunter2") {
			t.Fatalf("a secret reached staging: auth %q body %q", h.auth, h.body)
		}
	}
	sent, notSent, planned, mismatches := sumSteps(f)
	if sent != int64(len(sh)) || notSent != 0 || planned != sent || f.Window.Requests != int64(len(ph)) {
		t.Fatalf("steps sent %d (not sent %d) of %d planned, window %d requests; staging got %d", sent, notSent, planned, f.Window.Requests, len(sh))
	}
	if len(f.Steps) != 4 || f.Kind != results.KindShadow || f.Interrupted || f.Aborted {
		t.Fatalf("%d steps, kind %s, interrupted %v, aborted %v", len(f.Steps), f.Kind, f.Interrupted, f.Aborted)
	}
	// Staging answers /missing with 200 where production said 404: each
	// copy of each is a mismatch, and nothing else is.
	if want := int64(2 * prodCount["GET /missing"]); mismatches != want || want == 0 {
		t.Fatalf("%d mismatches, want %d", mismatches, want)
	}
	if st.Capture.Exchanges != int64(len(ph)) || st.Live.Taken != int64(len(ph)) || st.Redactions["redacted_header:authorization"] == 0 {
		t.Fatalf("capture wrote %d exchanges, the replay took %d, redactions %v; production got %d", st.Capture.Exchanges,
			st.Live.Taken, st.Redactions, len(ph))
	}
}

// TestShadowSlowTarget: staging answers far slower than production's
// traffic comes. Memory stays within its bound, what cannot be sent in
// time is dropped and counted by reason, and staging received exactly
// what the results say was sent.
func TestShadowSlowTarget(t *testing.T) {
	prod, staging := newCounter(t, 0), newCounter(t, 300*time.Millisecond)
	const delay = 200 * time.Millisecond
	const maxHeld = 8 << 10
	target, _ := replayTarget(staging.url)
	wait := shadowRun(t, prod, Options{Delay: delay, Plan: replay.PlanOptions{Target: target},
		Live: replay.LiveOptions{Settings: replay.Settings{Target: target, Timeout: 2 * time.Second}, Scale: 1,
			Interval: time.Second, Duration: 3 * time.Second, MaxHeld: maxHeld}})
	traffic(t, prod, 400)
	f, st := wait()
	sent, notSent, planned, _ := sumSteps(f)
	var late int64
	for _, s := range f.Steps {
		late += s.NotSent[replay.NotSentLate]
	}
	t.Logf("%s; live %+v", f.Verdict, st.Live)
	if st.Live.PeakHeld > maxHeld {
		t.Fatalf("held up to %d bytes, bound %d", st.Live.PeakHeld, maxHeld)
	}
	dropped := late + f.Window.Skipped[replay.SkipMemoryLimit]
	if dropped == 0 || sent+notSent != planned {
		t.Fatalf("dropped %d (late %d, window %v); sent %d + not sent %d of %d planned", dropped, late, f.Window.Skipped, sent, notSent, planned)
	}
	if got := int64(len(staging.got())); got != sent {
		t.Fatalf("staging got %d, the results say %d were sent", got, sent)
	}
	// Every request the capture saw whole was taken or not, by reason
	// (the capture stops when nothing it could see is due any more: what
	// production got after that was not captured).
	var notTaken int64
	for _, n := range st.Live.Skipped {
		notTaken += n
	}
	if st.Live.Taken+notTaken != st.Capture.Exchanges || st.Capture.Exchanges > int64(len(prod.got())) {
		t.Fatalf("taken %d + not taken %d (%v), captured %d; production got %d", st.Live.Taken, notTaken, st.Live.Skipped,
			st.Capture.Exchanges, len(prod.got()))
	}
	// Every step was offered far more than it achieved: the target did
	// not keep up, and the steps say so when held to a saturation bound.
	for _, s := range f.Steps {
		if s.Planned > 20 && s.AchievedRPS >= s.OfferedRPS {
			t.Fatalf("step %s achieved %.1f of %.1f req/s offered", s.Label(), s.AchievedRPS, s.OfferedRPS)
		}
	}
}

func replayTarget(s string) (*url.URL, error) { return url.Parse(s) }
