//go:build linux

package cli

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// agent is a herd capture process on lo, its stderr collected line by
// line.
type agent struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []string
	metrics chan string // the metrics address, once announced
	done    chan struct{}
}

func startAgent(t *testing.T, bin string, args ...string) *agent {
	t.Helper()
	a := &agent{cmd: exec.Command(bin, append([]string{"capture", "-i", "lo"}, args...)...), metrics: make(chan string, 1), done: make(chan struct{})}
	errp, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`metrics on http://(\S+)/metrics`)
	go func() {
		defer close(a.done)
		sc := bufio.NewScanner(errp)
		for sc.Scan() {
			a.mu.Lock()
			a.lines = append(a.lines, sc.Text())
			a.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				a.metrics <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Kill() // only the process this test started
			a.cmd.Wait()
		}
	})
	return a
}

func (a *agent) stderr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.lines, "\n")
}

// stop sends SIGTERM, as Kubernetes does before it stops a pod, and
// returns the exit code.
func (a *agent) stop(t *testing.T) int {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { a.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the capture did not end within 10 s of SIGTERM\n%s", a.stderr())
	}
	<-a.done
	return a.cmd.ProcessState.ExitCode()
}

// metric reads one sample from an OpenMetrics exposition.
func metric(t *testing.T, body, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in\n%s", name, body)
	return 0
}

// getFor sends GETs to url one after the other for d, then leaves the
// agent time for a progress report after the last packet.
func getFor(client *http.Client, url string, d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("content type %q", ct)
	}
	if !strings.HasSuffix(string(b), "# EOF\n") {
		t.Errorf("the exposition does not end with # EOF:\n%s", b)
	}
	return string(b)
}

// liveServer serves "ok" on 127.0.0.1 and counts the requests.
func liveServer(t *testing.T) (int, *int64, *sync.Mutex) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	var mu sync.Mutex
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, &n, &mu
}

// TestCaptureAgent runs herd capture as the Kubernetes sidecar does: on lo,
// rotating every second, keeping two files, with the metrics endpoint,
// ended by SIGTERM. Every request the server answered is an exchange;
// only two files are left, both closed cleanly; the metrics count what
// happened.
func TestCaptureAgent(t *testing.T) {
	testenv.NeedRoot(t)
	bin := buildHerd(t)
	port, served, mu := liveServer(t)
	out := filepath.Join(t.TempDir(), "agent.tape")
	a := startAgent(t, bin, "--port", strconv.Itoa(port), "--rotate", "1s", "--keep", "2", "--metrics-addr", "127.0.0.1:0", "-o", out)
	var addr string
	select {
	case addr = <-a.metrics:
	case <-time.After(10 * time.Second):
		t.Fatalf("no metrics address announced\n%s", a.stderr())
	}
	time.Sleep(300 * time.Millisecond) // the socket is open before the address is printed; leave it a moment
	getFor(&http.Client{Timeout: 2 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d/x", port), 3500*time.Millisecond)
	body := scrape(t, addr)
	if code := a.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, a.stderr())
	}
	mu.Lock()
	n := *served
	mu.Unlock()
	if got := metric(t, body, "herd_capture_exchanges_total"); got < float64(n)*0.9 || got > float64(n) {
		t.Errorf("metrics: %v exchanges while the server answered %d", got, n)
	}
	if w, d := metric(t, body, "herd_capture_tapes_written_total"), metric(t, body, "herd_capture_tapes_deleted_total"); w < 3 || d != w-2 {
		t.Errorf("metrics: %v tapes written, %v deleted; want at least 3, all but 2 deleted", w, d)
	}
	if r := metric(t, body, "herd_capture_sample_ratio"); r != 1 {
		t.Errorf("sample ratio %v", r)
	}
	if k := metric(t, body, `herd_capture_packets_dropped_total{cause="kernel"}`); k != 0 {
		t.Errorf("%v kernel drops at this rate", k)
	}
	se := a.stderr()
	m := regexp.MustCompile(`captured (\d+) exchanges`).FindStringSubmatch(se)
	if m == nil || !strings.Contains(se, "capture stopped by a signal") {
		t.Fatalf("stderr:\n%s", se)
	}
	if captured, _ := strconv.ParseInt(m[1], 10, 64); captured != n {
		t.Errorf("captured %d exchanges; the server answered %d", captured, n)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*"))
	if len(files) != 2 {
		t.Fatalf("files left: %v; want 2 (--keep 2)", files)
	}
	for _, f := range files {
		r, err := tape.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Indexed() || strings.HasSuffix(f, tape.PartialSuffix) {
			t.Errorf("%s was not closed cleanly", f)
		}
		r.Close()
	}
}

// TestCaptureAgentCPUBudget: with a budget it cannot meet, the agent halves
// its sampling rate (counted, in the metrics and in a new file whose
// metadata states the rate) without cutting the connection it was
// recording: every request of that keep-alive connection is on tape.
func TestCaptureAgentCPUBudget(t *testing.T) {
	testenv.NeedRoot(t)
	bin := buildHerd(t)
	port, served, mu := liveServer(t)
	out := filepath.Join(t.TempDir(), "budget.tape")
	a := startAgent(t, bin, "--port", strconv.Itoa(port), "--rotate", "1h", "--max-cpu", "0.0001", "--metrics-addr", "127.0.0.1:0", "-o", out)
	addr := <-a.metrics
	time.Sleep(300 * time.Millisecond)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	getFor(client, fmt.Sprintf("http://127.0.0.1:%d/keepalive", port), 5*time.Second)
	body := scrape(t, addr)
	if code := a.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, a.stderr())
	}
	if r, red := metric(t, body, "herd_capture_sample_ratio"), metric(t, body, "herd_capture_sample_reductions_total"); r >= 1 || red < 1 {
		t.Errorf("sample ratio %v after %v reductions; the budget cannot be met", r, red)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*.tape"))
	if len(files) < 2 {
		t.Fatalf("files %v: a change of rate starts a new file", files)
	}
	total := 0
	for i, f := range files {
		r, err := tape.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if pct := r.Meta().Source.SamplePct; i > 0 && (pct <= 0 || pct >= 100) {
			t.Errorf("%s states sample_pct %v; it was written after a reduction", f, pct)
		}
		r.All(t.Context(), func(*tape.Exchange) error { total++; return nil })
		r.Close()
	}
	mu.Lock()
	n := *served
	mu.Unlock()
	if int64(total) != n {
		t.Errorf("%d exchanges on tape; the keep-alive connection carried %d requests, all of which must be kept", total, n)
	}
}
