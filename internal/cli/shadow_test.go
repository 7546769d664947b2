//go:build linux

package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/testenv"
)

// TestShadowCommand shadows a real production server on lo to a real
// staging server at 2x for three one-second intervals, while a real
// client sends requests to production: staging counts twice production's
// requests, the results file and the text report say so, and a status
// line comes for every interval.
func TestShadowCommand(t *testing.T) {
	testenv.NeedRoot(t)
	prod, staging := newPathServer(t), newPathServer(t)
	addr := prod.Listener.Addr().String()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	js := filepath.Join(t.TempDir(), "shadow.json")
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"shadow", "-i", "lo", "--port", port, "--target", staging.URL,
			"--scale", "2x", "--delay", "300ms", "--interval", "1s", "--duration", "3s", "--json", js},
			IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	time.Sleep(300 * time.Millisecond)
	cl := &http.Client{Timeout: 5 * time.Second}
	for i := range 50 {
		resp, err := cl.Get(fmt.Sprintf("%s/p/%d", prod.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("herd shadow did not end after its duration")
	}
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	if prod.total() != 50 || staging.total() != 100 {
		t.Fatalf("production got %d, staging %d; want 50 and 100\n%s", prod.total(), staging.total(), errb.String())
	}
	for p, n := range staging.paths {
		if n != 2 || prod.paths[p] != 1 {
			t.Fatalf("%s: staging %d, production %d", p, n, prod.paths[p])
		}
	}
	f, err := results.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var sent int64
	for _, st := range f.Steps {
		sent += st.Sent
	}
	if f.Kind != "shadow" || len(f.Steps) != 3 || sent != 100 || f.Window.Requests != 50 || f.Target != staging.URL {
		t.Fatalf("results: kind %s, %d steps, sent %d, window %+v", f.Kind, len(f.Steps), sent, f.Window)
	}
	stderr := errb.String()
	if n := strings.Count(stderr, " 2x: sent "); n != 3 || !strings.Contains(stderr, "captured 50 whole requests") {
		t.Fatalf("%d interval lines; stderr:\n%s", n, stderr)
	}
	if !strings.Contains(out.String(), "interval") || !strings.Contains(out.String(), "Shadowed 100 requests in 3 intervals") {
		t.Fatalf("text report:\n%s", out.String())
	}
}

func TestShadowUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"shadow", "--port", "80", "--target", "http://127.0.0.1:1"}, "-i IFACE is required"},
		{[]string{"shadow", "-i", "lo", "--target", "http://127.0.0.1:1"}, "--port is required"},
		{[]string{"shadow", "-i", "lo", "--port", "80"}, "--target is required"},
		{[]string{"shadow", "-i", "lo", "--port", "80", "--target", "http://127.0.0.1:1", "--max-idle", "1m"}, "idle time is real time"},
		{[]string{"shadow", "-i", "lo", "--port", "80", "--target", "http://127.0.0.1:1", "--window", "all"}, "does not apply"},
		{[]string{"shadow", "-i", "lo", "--port", "80", "--target", "http://127.0.0.1:1", "--scale-mode", "compress"}, "cloned"},
		{[]string{"shadow", "-i", "lo", "--port", "80", "--target", "http://127.0.0.1:1", "--interval", "10ms"}, "--interval"},
		{[]string{"shadow", "-i", "lo", "--port", "80", "--target", "http://127.0.0.1:1", "--delay", "-1s"}, "--delay"},
		{[]string{"shadow", "-i", "lo", "--port", "80", "--target", "http://127.0.0.1:1", "--max-held", "0"}, "--max-held"},
		{[]string{"shadow", "-i", "lo", "--port", "80", "--target", "http://127.0.0.1:1", "extra"}, ""},
	} {
		_, stderr, code := run(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("herd %v: exit %d, want %d with %q\n%s", c.args, code, ExitUsage, c.want, stderr)
		}
	}
}

// TestShadowInterrupt: a shadow without --duration ends on Ctrl-C, exits
// 0, and writes its results, the cut interval marked interrupted;
// staging got exactly what the results say was sent.
func TestShadowInterrupt(t *testing.T) {
	testenv.NeedRoot(t)
	prod, staging := newPathServer(t), newPathServer(t)
	addr := prod.Listener.Addr().String()
	js := filepath.Join(t.TempDir(), "shadow.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"shadow", "-i", "lo", "--port", addr[strings.LastIndexByte(addr, ':')+1:], "--target", staging.URL,
			"--delay", "200ms", "--interval", "1s", "--json", js}, IO{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
	}()
	time.Sleep(300 * time.Millisecond)
	for i := range 60 {
		resp, err := http.Get(fmt.Sprintf("%s/p/%d", prod.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(25 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after Ctrl-C, want 0\n%s", code, errb.String())
	}
	f, err := results.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	// Every request taken was sent, not sent for a reason, or due after
	// the stop (remaining); staging got those sent.
	var sent, planned, notSent, remaining int64
	for _, st := range f.Steps {
		sent, planned, remaining = sent+st.Sent, planned+st.Planned, remaining+st.Remaining
		for _, n := range st.NotSent {
			notSent += n
		}
	}
	last := f.Steps[len(f.Steps)-1]
	if !f.Interrupted || !last.Interrupted || sent != int64(staging.total()) || sent+notSent != planned ||
		planned+remaining != f.Window.Requests || f.Window.Requests != int64(prod.total()) || sent < 40 {
		t.Fatalf("interrupted %v (last step %v), sent %d + not sent %d of %d planned, %d remaining, %d taken; staging got %d, production %d",
			f.Interrupted, last.Interrupted, sent, notSent, planned, remaining, f.Window.Requests, staging.total(), prod.total())
	}
}

// TestShadowProtocol: live traffic is sent over HTTP/1.1; asking for
// HTTP/2 is refused before anything is captured.
func TestShadowProtocol(t *testing.T) {
	testenv.NeedRoot(t)
	_, stderr, code := run(t, "shadow", "-i", "lo", "--port", "1", "--target", "http://127.0.0.1:1", "--protocol", "h2c")
	if code != ExitUsage || !strings.Contains(stderr, "HTTP/1.1") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}
