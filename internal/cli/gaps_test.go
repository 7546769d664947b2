package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/testenv"
)

// burst is requests on one connection, one every gap, at a recorded time.
type burst struct {
	at       time.Time
	requests int
	gap      time.Duration
}

// burstCapture writes a pcap of bursts, each on its own connection, in
// the order given: times may go backwards between bursts (a clock step).
func burstCapture(t *testing.T, bursts []burst) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bursts.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgen.NewWriter(f, pcapgen.Link{Type: layers.LinkTypeEthernet}, bursts[0].at, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bursts {
		w.Advance(b.at.Sub(bursts[0].at) - w.Now().Sub(bursts[0].at))
		c := w.NewConn(fmt.Sprintf("10.0.0.%d:40000", i+1), "10.0.1.1:80", uint32(1000*i), 9000)
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < b.requests; r++ {
			if err := c.Send(true, pcapgen.Request("GET", fmt.Sprintf("/b/%d/r/%d", i, r), nil, nil)); err != nil {
				t.Fatal(err)
			}
			if err := c.Send(false, pcapgen.Response(200, nil, []byte("ok"))); err != nil {
				t.Fatal(err)
			}
			w.Advance(b.gap)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// countingServer counts the requests it receives by path.
func countingServer(t *testing.T) (*httptest.Server, func() map[string]int) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

func captureTape(t *testing.T, pcap string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "t.tape")
	if _, stderr, code := run(t, "capture", "--pcap", pcap, "-o", out); code != 0 {
		t.Fatalf("capture: exit %d\n%s", code, stderr)
	}
	return out
}

func resultsFile(t *testing.T, path string) *results.File {
	t.Helper()
	f, err := results.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestReplayAcrossADay records two bursts of activity a day apart and one
// burst before them in the capture file but an hour earlier on its clock
// (a backwards clock step). With the idle bound at 2 s, the replay plays
// the activity, not the day: every recorded request reaches the target
// once, the run lasts the active time plus the bounded gaps, and the 1x
// rate is over that time.
func TestReplayAcrossADay(t *testing.T) {
	day0 := time.Date(2024, 7, 11, 8, 0, 0, 0, time.UTC)
	pcap := burstCapture(t, []burst{
		{day0, 10, 100 * time.Millisecond},
		{day0.Add(24 * time.Hour), 10, 100 * time.Millisecond},
		{day0.Add(-time.Hour), 5, 100 * time.Millisecond}, // the clock stepped back
	})
	tp := captureTape(t, pcap)
	srv, got := countingServer(t)
	js := filepath.Join(t.TempDir(), "r.json")
	begin := time.Now()
	_, stderr, code := run(t, "replay", tp, "--target", srv.URL, "--max-idle", "2s", "--json", js)
	took := time.Since(begin)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// Every request once, counted at the target.
	total := 0
	for path, n := range got() {
		if n != 1 {
			t.Errorf("%s received %d times", path, n)
		}
		total += n
	}
	if total != 25 {
		t.Fatalf("the target received %d requests, want the tape's 25", total)
	}
	// Three bursts of about 1 s (0.5 s for the third), two gaps kept at 2 s.
	f := resultsFile(t, js)
	w := f.Window
	if w.DurationS < 6 || w.DurationS > 7.5 || w.IdleRemovedS < 25*3600-10 || w.Requests != 25 {
		t.Fatalf("window %+v: want about 6.5 s of activity and bounded gaps, a day and an hour removed, 25 requests", w)
	}
	if rate := float64(w.Requests) / w.DurationS; abs(w.RPS-rate) > 0.01 {
		t.Errorf("1x rate %.3f, want the requests over the active time, %.3f", w.RPS, rate)
	}
	if took > 20*time.Second {
		t.Errorf("the replay took %v for %.1f s of activity", took, w.DurationS)
	}
	if !strings.Contains(stderr, "plan: 25 requests") || !strings.Contains(stderr, "idle stretches longer than 2s shortened") {
		t.Errorf("stderr does not show the plan and the shortened gaps:\n%s", stderr)
	}
	// Wall-clock fidelity is refused: it would be a day-long run.
	_, stderr, code = run(t, "replay", tp, "--target", srv.URL, "--max-idle", "0")
	if code != ExitUsage || !strings.Contains(stderr, "--max-run") || !strings.Contains(stderr, "--max-idle") {
		t.Fatalf("--max-idle 0: exit %d, want 2 with a hint\n%s", code, stderr)
	}
	// inspect shows the gaps and the active time.
	out, _, code := run(t, "inspect", tp, "--json")
	var ins struct {
		DurationS float64 `json:"duration_s"`
		ActiveS   float64 `json:"active_s"`
		Gaps      []struct {
			LengthS int64 `json:"length_s"`
		} `json:"gaps"`
	}
	if err := json.Unmarshal([]byte(out), &ins); code != 0 || err != nil {
		t.Fatalf("inspect: exit %d, %v", code, err)
	}
	if len(ins.Gaps) != 2 || ins.ActiveS > 5 || ins.DurationS < 25*3600 {
		t.Errorf("inspect: %+v, want two gaps, active time of seconds, a span over a day", ins)
	}
}

// TestReplayMultiYearCapture replays the shared capture whose requests
// span eleven years: with the default idle bound the plan is its activity
// plus one minute, and the target receives every replayable request.
func TestReplayMultiYearCapture(t *testing.T) {
	pcap := filepath.Join(testenv.SharedPcaps(t), "http-rawip-linktype101-ipv4-ipv6.pcap")
	tp := captureTape(t, pcap)
	srv, got := countingServer(t)
	js := filepath.Join(t.TempDir(), "r.json")
	// The 60 s default would make this test a minute long: the bound is the
	// point, not its value.
	_, stderr, code := run(t, "replay", tp, "--target", srv.URL, "--max-idle", "1s", "--json", js)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	f := resultsFile(t, js)
	total := 0
	for _, n := range got() {
		total += n
	}
	if int64(total) != f.Window.Requests || f.Window.Requests != 19 {
		t.Fatalf("the target received %d, the window holds %d, the capture 19", total, f.Window.Requests)
	}
	if f.Window.RecordedS < 3e8 || f.Window.DurationS > 20 {
		t.Fatalf("window %+v: want a recorded span of years replayed in seconds", f.Window)
	}
}

// TestWindowClamped: a 20 s recording ramped with a 60 s window is
// replayed whole, its 1x rate over its 20 s, and said so.
func TestWindowClamped(t *testing.T) {
	day0 := time.Date(2024, 7, 11, 8, 0, 0, 0, time.UTC)
	pcap := burstCapture(t, []burst{{day0, 20, 100 * time.Millisecond}, {day0.Add(time.Second), 20, 100 * time.Millisecond}})
	tp := captureTape(t, pcap)
	srv, _ := okServer(t, 0)
	js := filepath.Join(t.TempDir(), "r.json")
	_, stderr, code := run(t, "ramp", tp, "--target", srv.URL, "--window", "peak:60s", "--from", "1", "--to", "1",
		"--step-duration", "4s", "--settle", "1s", "--json", js, "--generator-lag", "5s", "--cooldown", "100ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	f := resultsFile(t, js)
	if !f.Window.Clamped || f.Window.DurationS > 3.5 || f.Window.RPS < 40/3.5 {
		t.Fatalf("window %+v: want clamped to the recording's ~3 s, 1x rate over it", f.Window)
	}
	if !strings.Contains(stderr, "longer than the recording") {
		t.Errorf("stderr does not say the window was clamped:\n%s", stderr)
	}
	// The step repeats the recording instead of idling: about the 1x rate
	// is offered over the whole measured period.
	if st := f.Steps[0]; st.OfferedRPS < 0.8*f.Window.RPS {
		t.Errorf("offered %.1f req/s of a 1x rate of %.1f: the step idled", st.OfferedRPS, f.Window.RPS)
	}
}

// TestPlansThatCannotRun are refused before anything is sent, with the
// numbers, as usage errors.
func TestPlansThatCannotRun(t *testing.T) {
	srv, n := okServer(t, 0)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--scale", "1e6"}, "req/s, beyond what one herd process can send"},
		{[]string{"--scale", "300", "--max-conns", "1000"}, "connections open at once"},
		{[]string{"--scale", "1e9", "--scale-mode", "compress"}, "req/s"},
		{[]string{"--slo", "p99(/nope)<1s"}, "does not measure"},
		{[]string{"--window", ""}, "--window is empty"},
		{[]string{"--shard", "1/2/3"}, "numbered from 0"},
		{[]string{"--window", "peak:60s", "--duration", "48h"}, "--max-run"},
	}
	for _, c := range cases {
		begin := time.Now()
		_, stderr, code := run(t, append([]string{"replay", sampleTape, "--target", srv.URL}, c.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s", c.args, code, c.want, stderr)
		}
		if el := time.Since(begin); el > 10*time.Second {
			t.Errorf("%v: refused after %v", c.args, el)
		}
	}
	if n.Load() != 0 {
		t.Errorf("the target received %d requests from refused plans", n.Load())
	}
}

// TestReplaySLOExit: a replay whose SLO fails exits 3, one that meets it 0.
func TestReplaySLOExit(t *testing.T) {
	srv, _ := okServer(t, 20*time.Millisecond)
	_, stderr, code := run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:1s", "--slo", "p99<5ms")
	if code != ExitRequirement || !strings.Contains(stderr, "p99") {
		t.Fatalf("p99<5ms against a 20 ms target: exit %d, want 3\n%s", code, stderr)
	}
	_, stderr, code = run(t, "replay", sampleTape, "--target", srv.URL, "--window", "peak:1s", "--slo", "p99<5s")
	if code != 0 {
		t.Fatalf("p99<5s: exit %d\n%s", code, stderr)
	}
}

// TestRampInterrupted: Ctrl-C during a healthy ramp's second step writes
// the partial results with that step marked interrupted, claims no
// breaking point, and exits 130.
func TestRampInterrupted(t *testing.T) {
	srv, _ := okServer(t, 0)
	js := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(4*time.Second, cancel) // step 1 lasts 3 s
	// A generous lag bound: this test is about the interrupt, not about how
	// much CPU a loaded machine leaves herd.
	_, stderr, code := runCtx(ctx, "ramp", sampleTape, "--target", srv.URL, "--from", "1", "--step", "1", "--to", "4",
		"--step-duration", "3s", "--settle", "1s", "--json", js, "--generator-lag", "5s", "--cooldown", "100ms")
	if code != ExitInterrupted {
		t.Fatalf("exit %d, want 130\n%s", code, stderr)
	}
	f := resultsFile(t, js)
	if !f.Interrupted || f.BreakingPoint != nil || f.Capacity.Reached || len(f.Steps) != 2 {
		t.Fatalf("interrupted %v, breaking point %+v, capacity %+v, %d steps: %s", f.Interrupted, f.BreakingPoint, f.Capacity, len(f.Steps), f.Verdict)
	}
	st := f.Steps[1]
	if !st.Interrupted || st.Passed || len(st.Violations) != 0 {
		t.Fatalf("second step: interrupted %v passed %v violations %v", st.Interrupted, st.Passed, st.Violations)
	}
	if !strings.Contains(f.Verdict, "Interrupted") {
		t.Errorf("verdict %q", f.Verdict)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
