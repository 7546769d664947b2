package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/tapetest"
)

// startRecord runs herd record on 127.0.0.1 in front of upstream, writing
// out, and returns its address and a function that stops it (as Ctrl-C
// does) and returns its stderr and error.
func startRecord(t *testing.T, upstream, out string, edit func(*recordOptions)) (string, func() (string, error)) {
	t.Helper()
	errb := &syncBuffer{}
	addr := make(chan string, 1)
	o := &recordOptions{
		IO: IO{In: strings.NewReader(""), Out: io.Discard, Err: errb}, StatusEvery: time.Hour,
		Listen: "127.0.0.1:0", Upstream: upstream, Output: out, MaxBody: "1MiB", UpstreamTimeout: 5 * time.Second,
		listen: func(a string) (net.Listener, error) {
			ln, err := net.Listen("tcp", a)
			if err == nil {
				addr <- ln.Addr().String()
			}
			return ln, err
		},
	}
	if edit != nil {
		edit(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runRecord(ctx, o) }()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		cancel()
		t.Fatalf("herd record did not start: %v\n%s", err, errb)
	}
	stopped := false
	stop := func() (string, error) {
		if !stopped {
			stopped = true
			cancel()
		}
		select {
		case err := <-done:
			return errb.String(), err
		case <-time.After(30 * time.Second):
			t.Fatal("herd record did not stop")
			return "", nil
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return a, stop
}

// TestRecordReplay records real traffic through herd record, checks the
// tape with herd inspect, then replays it against another server and
// counts there the requests the first one received.
func TestRecordReplay(t *testing.T) {
	prod, prodSeen := requestCounter(t)
	out := filepath.Join(t.TempDir(), "rec.tape")
	addr, stop := startRecord(t, prod.URL, out, nil)

	client := &http.Client{}
	for i := 0; i < 30; i++ {
		var resp *http.Response
		var err error
		if i%3 == 2 {
			resp, err = client.Post(fmt.Sprintf("http://%s/items?i=%d", addr, i), "application/json", strings.NewReader(`{"n":1}`))
		} else {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/items/%d", addr, i), nil)
			req.Header.Set("Authorization", "Bearer secret-token")
			resp, err = client.Do(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	stderr, err := stop()
	if err != nil {
		t.Fatalf("herd record: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "recorded 30 exchanges") {
		t.Errorf("summary:\n%s", stderr)
	}

	exs, meta := tapetest.Read(t, out)
	if len(exs) != 30 || meta.Source.Kind != "proxy" || !meta.Redaction.Enabled {
		t.Fatalf("%d exchanges, meta %+v", len(exs), meta)
	}
	for _, e := range exs {
		if v, ok := e.Header("Authorization"); ok && !strings.HasPrefix(v, "herd-redacted:") {
			t.Fatalf("the tape holds the secret %q", v)
		}
	}
	stdout, stderr, code := runCtx(context.Background(), "inspect", out, "--json")
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, stderr)
	}
	var ins struct {
		Requests, Responses int
		Capture             map[string]int64
	}
	if err := json.Unmarshal([]byte(stdout), &ins); err != nil || ins.Requests != 30 || ins.Responses != 30 || ins.Capture["redacted"] != 20 {
		t.Fatalf("inspect: %+v %v", ins, err)
	}

	staging, stagingSeen := requestCounter(t)
	_, stderr, code = runCtx(context.Background(), "replay", out, "--target", staging.URL, "--window", "all", "--abort-on", "off")
	if code != 0 && code != 3 {
		t.Fatalf("replay: %d\n%s", code, stderr)
	}
	want, got := prodSeen(), stagingSeen()
	if len(want) != 30 || fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("production saw %v\nstaging saw %v", want, got)
	}
}

func TestRecordRotateAndForce(t *testing.T) {
	prod, _ := requestCounter(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "rec.tape")
	addr, stop := startRecord(t, prod.URL, out, func(o *recordOptions) { o.Rotate = "1s" })
	for i := 0; i < 3; i++ {
		resp, err := http.Get(fmt.Sprintf("http://%s/r/%d", addr, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		time.Sleep(600 * time.Millisecond)
	}
	if stderr, err := stop(); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rec-*.tape"))
	total := 0
	for _, f := range files {
		exs, _ := tapetest.Read(t, f)
		total += len(exs)
	}
	if len(files) < 2 || total != 3 {
		t.Fatalf("%d files holding %d exchanges, want at least 2 holding 3", len(files), total)
	}
	// The first file exists now: a second run refuses without --force.
	_, stderr, code := runCtx(context.Background(), "record", "--listen", "127.0.0.1:0", "--upstream", prod.URL, "--rotate", "1s", "-o", out)
	if code != ExitUsage || !strings.Contains(stderr, "--force") {
		t.Fatalf("existing output: exit %d\n%s", code, stderr)
	}
}

func TestRecordUsage(t *testing.T) {
	for _, args := range [][]string{
		{"record", "--upstream", "http://127.0.0.1:1", "-o", "x.tape"},
		{"record", "--listen", ":0", "-o", "x.tape"},
		{"record", "--listen", ":0", "--upstream", "ftp://x", "-o", "x.tape"},
		{"record", "--listen", ":0", "--upstream", "http://x/base", "-o", "x.tape"},
		{"record", "--listen", ":0", "--upstream", "http://x", "-o", "x.tape", "--tls-cert", "c.pem"},
		{"record", "--listen", ":0", "--upstream", "http://x", "-o", "x.tape", "--rotate", "1ms"},
		{"record", "--listen", ":0", "--upstream", "http://x", "-o", "x.tape", "--no-redact", "--redact-query", "t"},
	} {
		if _, stderr, code := runCtx(context.Background(), args...); code != ExitUsage {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr)
		}
	}
	if _, err := os.Stat("x.tape"); err == nil {
		t.Error("a refused command wrote x.tape")
	}
}
