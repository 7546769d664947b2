package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const sampleTape = "../../testdata/sample.tape"

// okServer is a real server on 127.0.0.1 answering every request with 200,
// after delay.
func okServer(t *testing.T, delay time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		time.Sleep(delay)
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func runCtx(ctx context.Context, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Main(ctx, args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

// contract checks the fields of the results file that scripts depend on
// (docs/results-format.md, "The contract").
func contract(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("results are not JSON: %v", err)
	}
	for _, k := range []string{"schema", "target", "tape", "steps", "breaking_point", "generator"} {
		if _, ok := m[k]; !ok {
			t.Errorf("results lack %q", k)
		}
	}
	steps, _ := m["steps"].([]any)
	if len(steps) == 0 {
		t.Fatal("no steps")
	}
	st := steps[0].(map[string]any)
	for _, k := range []string{"scale", "duration_s", "offered_rps", "achieved_rps", "sent", "completed", "errors",
		"error_rate", "mismatches", "latency_ms", "schedule_lag_ms", "passed", "violations"} {
		if _, ok := st[k]; !ok {
			t.Errorf("step lacks %q", k)
		}
	}
	lat := st["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
	g := m["generator"].(map[string]any)
	if _, ok := g["limited"]; !ok {
		t.Error("generator lacks limited")
	}
	return m
}

func TestReplayCommand(t *testing.T) {
	srv, n := okServer(t, 0)
	out := filepath.Join(t.TempDir(), "run.json")
	stdout, stderr, code := run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:3s", "--scale", "150%", "--json", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	m := contract(t, out)
	st := m["steps"].([]any)[0].(map[string]any)
	if st["scale"].(float64) != 1.5 || m["breaking_point"] != nil || m["schema"].(float64) != 1 {
		t.Fatalf("scale %v, breaking point %v", st["scale"], m["breaking_point"])
	}
	if sent := int64(st["sent"].(float64)); sent != n.Load() || sent == 0 {
		t.Fatalf("sent %d, the server got %d", sent, n.Load())
	}
	if !strings.Contains(stdout, "latency") || !strings.Contains(stdout, "Replayed") {
		t.Fatalf("text summary:\n%s", stdout)
	}
	if !strings.Contains(stderr, "redacted cookie") {
		t.Errorf("no warning about redacted cookies on stderr:\n%s", stderr)
	}
}

func TestReplayUsage(t *testing.T) {
	cases := [][]string{
		{"replay", sampleTape},
		{"replay", sampleTape, "--target", "ftp://x"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1/path"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--scale", "-2"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--scale-mode", "zoom"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--window", "peak:1.5s"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--slo", "p99>1s"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--set-header", "novalue"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--abort-on", "sometimes"},
		{"ramp", sampleTape, "--target", "http://127.0.0.1:1", "--from", "3", "--to", "2"},
		{"ramp", sampleTape, "--target", "http://127.0.0.1:1", "--settle", "2m"},
	}
	for _, args := range cases {
		if _, stderr, code := run(t, args...); code != ExitUsage {
			t.Errorf("herd %v: exit %d, want %d\n%s", args, code, ExitUsage, stderr)
		}
	}
}

// TestReplayInterrupted cancels a run as Ctrl-C does: herd stops sending,
// writes valid partial results and exits 130.
func TestReplayInterrupted(t *testing.T) {
	srv, _ := okServer(t, 0)
	out := filepath.Join(t.TempDir(), "run.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	begin := time.Now()
	_, stderr, code := runCtx(ctx, "replay", sampleTape, "--target", srv.URL, "--window", "peak:30s", "--json", out)
	if code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\n%s", code, ExitInterrupted, stderr)
	}
	if el := time.Since(begin); el > 5*time.Second {
		t.Fatalf("took %v to stop", el)
	}
	m := contract(t, out)
	st := m["steps"].([]any)[0].(map[string]any)
	if m["interrupted"] != true || st["interrupted"] != true || st["remaining"] == nil {
		t.Fatalf("interrupted %v, step %v, remaining %v", m["interrupted"], st["interrupted"], st["remaining"])
	}
	// Rates are over the 1.5 s the step ran, not the 30 s it was planned
	// for: about the window's rate was offered.
	rate := m["window"].(map[string]any)["rps"].(float64)
	dur, offered := st["duration_s"].(float64), st["offered_rps"].(float64)
	if dur > 3 || offered < 0.6*rate || offered > 1.6*rate {
		t.Fatalf("interrupted after 1.5 s: duration %.2f s, offered %.1f req/s of a 1x rate of %.1f", dur, offered, rate)
	}
}

// TestReplayEmergencyStopExit: a target failing everything stops the run
// and herd exits 3.
func TestReplayEmergencyStopExit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "run.json")
	_, stderr, code := run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:30s", "--scale", "2", "--json", out)
	if code != ExitRequirement || !strings.Contains(stderr, "emergency stop") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if m := contract(t, out); m["aborted"] != true {
		t.Fatalf("aborted %v", m["aborted"])
	}
}

// TestRampRequire: --require is a release gate: exit 0 when every step up
// to the bar met its SLOs, 3 when one failed or the ramp never reached it.
func TestRampRequire(t *testing.T) {
	srv, _ := okServer(t, time.Millisecond)
	common := []string{"ramp", sampleTape, "--target", srv.URL, "--from", "1x", "--step", "1x", "--to", "2x",
		"--step-duration", "2s", "--settle", "500ms", "--generator-lag", "1s"}
	cases := []struct {
		slo     string
		require string
		code    int
	}{
		{"p99<2s", "2x", ExitOK},
		{"p99<2s", "3x", ExitRequirement}, // never reached
		{"p50<1us", "1x", ExitRequirement},
	}
	for _, c := range cases {
		args := append(append([]string{}, common...), "--slo", c.slo, "--require", c.require)
		stdout, stderr, code := run(t, args...)
		if code != c.code {
			t.Errorf("--slo %s --require %s: exit %d, want %d\n%s\n%s", c.slo, c.require, code, c.code, stdout, stderr)
		}
	}
}

// TestReplayShards: two shards together send exactly what one unsharded
// run sends, on disjoint connections.
func TestReplayShards(t *testing.T) {
	sent := func(extra ...string) int64 {
		srv, n := okServer(t, 0)
		out := filepath.Join(t.TempDir(), "r.json")
		args := append([]string{"replay", sampleTape, "--target", srv.URL, "--window", "peak:5s", "--scale", "2", "--json", out}, extra...)
		if _, stderr, code := run(t, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", extra, code, stderr)
		}
		m := contract(t, out)
		st := m["steps"].([]any)[0].(map[string]any)
		if got := int64(st["sent"].(float64)); got != n.Load() {
			t.Fatalf("sent %d, server got %d", got, n.Load())
		}
		return n.Load()
	}
	whole, a, b := sent(), sent("--shard", "0/2"), sent("--shard", "1/2")
	if a == 0 || b == 0 || a+b != whole {
		t.Fatalf("shards sent %d + %d, the whole run %d", a, b, whole)
	}
}
