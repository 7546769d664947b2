package cli

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/tape"
)

// buildHerd builds the herd binary once per test into a temporary
// directory.
func buildHerd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herd")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/herd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build herd: %v\n%s", err, out)
	}
	return bin
}

// capacityServer serves requests on 127.0.0.1 with slots workers, each
// taking service per request: its capacity is slots/service requests per
// second, and beyond it requests queue. It counts what it receives and
// when the last request arrived.
type capacityServer struct {
	URL  string
	n    atomic.Int64
	last atomic.Int64 // Unix ns of the latest arrival
}

func newCapacityServer(t *testing.T, slots int, service time.Duration) *capacityServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &capacityServer{URL: "http://" + ln.Addr().String()}
	sem := make(chan struct{}, slots)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		s.last.Store(time.Now().UnixNano())
		sem <- struct{}{}
		time.Sleep(service)
		<-sem
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// steadyTape writes a tape of rate requests per second for secs seconds:
// connections of two requests 100 ms apart, starting evenly spaced.
func steadyTape(t *testing.T, rate, secs int) string {
	t.Helper()
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	conns := rate * secs / 2
	stagger := int64(time.Second) * 2 / int64(rate)
	var exs []tape.Exchange
	for c := range conns {
		for i := range 2 {
			start := base + int64(c)*stagger + int64(i)*int64(100*time.Millisecond)
			exs = append(exs, tape.Exchange{
				ConnID: uint64(c + 1), Seq: uint32(i),
				Client:   netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(20000+c)),
				Server:   netip.MustParseAddrPort("10.0.1.1:80"),
				ReqStart: start, ReqEnd: start + 1000, RespStart: start + 2e7, RespEnd: start + 2e7 + 1000,
				Method: "GET", Target: fmt.Sprintf("/c/%d/r/%d", c+1, i), Proto: "HTTP/1.1",
				ReqHeader: []tape.Field{{Name: "Host", Value: "shop.example.com"}},
				Status:    200, RespProto: "HTTP/1.1",
			})
		}
	}
	path := filepath.Join(t.TempDir(), "steady.tape")
	if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1}, exs); err != nil {
		t.Fatal(err)
	}
	return path
}

type shardRun struct {
	cmd  *exec.Cmd
	err  bytes.Buffer
	code int
}

// startShards starts n herd processes as the pods of an Indexed Job would
// run: the same arguments, JOB_COMPLETION_INDEX set, --shard auto/n.
func startShards(t *testing.T, bin string, n int, args func(i int) []string) []*shardRun {
	t.Helper()
	runs := make([]*shardRun, n)
	for i := range n {
		r := &shardRun{cmd: exec.Command(bin, args(i)...)}
		r.cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
		r.cmd.Stderr = &r.err
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs[i] = r
	}
	t.Cleanup(func() {
		for _, r := range runs {
			if r.cmd.ProcessState == nil {
				r.cmd.Process.Kill() // only the processes this test started
				r.cmd.Wait()
			}
		}
	})
	return runs
}

func waitShards(t *testing.T, runs []*shardRun, limit time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.cmd.Wait()
			r.code = r.cmd.ProcessState.ExitCode()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		for i, r := range runs {
			if r.cmd.ProcessState == nil {
				r.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump on its stderr
			}
			_ = i
		}
		<-done
		for i, r := range runs {
			t.Logf("shard %d: exit %d\n%s", i, r.code, r.err.String())
		}
		t.Fatalf("the shards did not finish within %v", limit)
	}
}

// TestShardedRampSimulation runs the Indexed Job of docs/kubernetes.md on
// one machine: 4 herd processes with JOB_COMPLETION_INDEX 0..3, --shard
// auto/4 and one --coordinate directory, against a server of known
// capacity (4 slots × 20 ms = 200 req/s, 2.5 times the tape's 80 req/s),
// and a single herd doing the same ramp. The merged shards planned and
// sent exactly what the single run did (and the server received it), the
// merged breaking point is the single run's (3x), and every shard stopped
// at that same step. Then every shard runs the recovery phase (--recovery)
// together, and the merged recovery verdict is the single run's.
func TestShardedRampSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two ramps of about 10 s")
	}
	bin := buildHerd(t)
	tp := steadyTape(t, 80, 8)
	srv := newCapacityServer(t, 4, 20*time.Millisecond)
	dir := t.TempDir()
	ramp := []string{"ramp", tp, "--target", srv.URL, "--from", "1x", "--step", "1x", "--to", "5x",
		"--step-duration", "3s", "--settle", "1s", "--slo", "p99<300ms", "--slo", "errors<1%", "--abort-on", "off",
		"--recovery", "2s", "--recovery-window", "1s",
		// Five processes share this machine's cores with whatever else runs: a
		// step herd limited would be run again, and the runs would differ.
		"--generator-lag", "100ms"}

	single := filepath.Join(dir, "single.json")
	out, err := exec.Command(bin, append(ramp, "--json", single)...).CombinedOutput()
	if err != nil {
		t.Fatalf("single ramp: %v\n%s", err, out)
	}
	singleSent := srv.n.Swap(0)
	one, err := results.ReadFile(single)
	if err != nil {
		t.Fatal(err)
	}
	if one.BreakingPoint == nil || one.BreakingPoint.Scale != 3 {
		t.Fatalf("the single ramp should break at 3x (capacity 2.5x): %s", one.Verdict)
	}
	if one.Recovery == nil || !one.Recovery.Recovered {
		t.Fatalf("the single ramp should recover at 1x: %+v", one.Recovery)
	}
	var recoveryStarts []time.Time

	coordDir := filepath.Join(dir, "coord")
	runs := startShards(t, bin, 4, func(i int) []string {
		return append(append([]string{}, ramp...), "--shard", "auto/4", "--coordinate", coordDir,
			"--coordinate-timeout", "20s", "--json", filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)))
	})
	waitShards(t, runs, time.Minute)
	shardsSent := srv.n.Load()
	var paths []string
	for i, r := range runs {
		if r.code != 0 {
			t.Fatalf("shard %d: exit %d\n%s", i, r.code, r.err.String())
		}
		p := filepath.Join(dir, fmt.Sprintf("shard-%d.json", i))
		f, err := results.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if f.Params.Shard != fmt.Sprintf("%d/4", i) {
			t.Errorf("shard %d recorded as %q", i, f.Params.Shard)
		}
		// Every shard stopped at the step where the whole run broke, then
		// ran the recovery phase.
		if len(f.Steps) != len(one.Steps) || len(f.Steps) < 2 || f.Steps[len(f.Steps)-2].Passed || f.BreakingPoint == nil || f.BreakingPoint.Scale != 3 {
			t.Errorf("shard %d ran %s and found %v; the single run ran %s", i, stepList(f.Steps), f.BreakingPoint, stepList(one.Steps))
			for _, st := range f.Steps {
				t.Logf("shard %d step %s: generator %v", i, st.Label(), st.Generator.Notes)
			}
		}
		if last := f.Steps[len(f.Steps)-1]; !last.Recovery || f.Recovery == nil || f.Recovery.Note != "" {
			t.Errorf("shard %d: last step recovery %v, recovery %+v", i, last.Recovery, f.Recovery)
		} else {
			recoveryStarts = append(recoveryStarts, last.StartedAt)
		}
		paths = append(paths, p)
	}
	// Together: the barrier after the breaking step starts every shard's
	// recovery at the same time (to within what the clock and the
	// scheduler of a loaded machine allow).
	for _, at := range recoveryStarts {
		if d := at.Sub(recoveryStarts[0]).Abs(); d > time.Second {
			t.Errorf("recovery phases started %v apart: %v", d, recoveryStarts)
		}
	}
	merged := filepath.Join(dir, "merged.json")
	if out, err := exec.Command(bin, append(append([]string{"report", "merge"}, paths...), "-o", merged)...).CombinedOutput(); err != nil {
		t.Fatalf("merge: %v\n%s", err, out)
	}
	m, err := results.ReadFile(merged)
	if err != nil {
		t.Fatal(err)
	}
	if m.Window.Requests != one.Window.Requests || m.Window.RPS != one.Window.RPS {
		t.Errorf("merged window: %d requests at %v req/s; single: %d at %v", m.Window.Requests, m.Window.RPS, one.Window.Requests, one.Window.RPS)
	}
	var sent int64
	if len(m.Steps) != len(one.Steps) {
		t.Fatalf("merged steps %s, single %s", stepList(m.Steps), stepList(one.Steps))
	}
	for i := range m.Steps {
		a, b := &m.Steps[i], &one.Steps[i]
		if a.Scale != b.Scale || a.Planned != b.Planned || a.Sent != b.Sent {
			t.Errorf("step %d: merged %gx planned %d sent %d; single %gx planned %d sent %d", i+1, a.Scale, a.Planned, a.Sent, b.Scale, b.Planned, b.Sent)
		}
		sent += a.Sent
	}
	// Count at the far end: the server received what the shards say they
	// sent, and as many as the single run.
	if shardsSent != singleSent || sent > shardsSent {
		t.Errorf("server received %d requests from the shards and %d from the single run; merged steps count %d sent in their measured periods", shardsSent, singleSent, sent)
	}
	if m.BreakingPoint == nil || m.BreakingPoint.Scale != one.BreakingPoint.Scale || m.BreakingPoint.LastGoodScale != one.BreakingPoint.LastGoodScale {
		t.Errorf("merged breaking point %+v, single %+v", m.BreakingPoint, one.BreakingPoint)
	}
	if m.Recovery == nil || m.Recovery.Recovered != one.Recovery.Recovered || m.Recovery.After != one.Recovery.After {
		t.Errorf("merged recovery %+v, single %+v", m.Recovery, one.Recovery)
	}
	t.Logf("single: %s", one.Verdict)
	for i := range m.Steps {
		t.Logf("merged step %s: %v", m.Steps[i].Label(), m.Steps[i].Generator.Notes)
	}
	t.Logf("merged: %s", m.Verdict)
}

// TestShardedRampSIGTERM: SIGTERM to one shard during a step (Kubernetes
// deleting its pod) ends that shard as Ctrl-C would (exit 130, results
// written) and stops every other shard within 2 s, measured at the server:
// no request arrives more than 2 s after the signal.
func TestShardedRampSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a sharded ramp")
	}
	bin := buildHerd(t)
	tp := steadyTape(t, 80, 8)
	srv := newCapacityServer(t, 64, time.Millisecond)
	dir := t.TempDir()
	runs := startShards(t, bin, 4, func(i int) []string {
		return []string{"ramp", tp, "--target", srv.URL, "--from", "1x", "--step", "1x", "--to", "3x",
			"--step-duration", "4s", "--settle", "1s", "--generator-lag", "100ms", "--cooldown", "1s", "--shard", "auto/4", "--coordinate", filepath.Join(dir, "coord"),
			"--json", filepath.Join(dir, fmt.Sprintf("shard-%d.json", i))}
	})
	// Into the second step: the first ends after 4 s plus the start.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "coord", "step-0-3.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shards never finished their first step")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	signalled := time.Now()
	if err := runs[2].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitShards(t, runs, 30*time.Second)
	if late := time.Duration(srv.last.Load() - signalled.UnixNano()); late > 2*time.Second {
		t.Errorf("a request arrived %v after shard 2's SIGTERM", late)
	}
	for i, r := range runs {
		f, err := results.ReadFile(filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)))
		if err != nil {
			t.Fatalf("shard %d wrote no results: %v\n%s", i, err, r.err.String())
		}
		if len(f.Steps) != 2 {
			t.Errorf("shard %d ran %s; want the two steps up to the signal", i, stepList(f.Steps))
		}
		if i == 2 {
			if r.code != ExitInterrupted || !f.Interrupted {
				t.Errorf("shard 2 (SIGTERM): exit %d, interrupted %v; want %d as for Ctrl-C\n%s", r.code, f.Interrupted, ExitInterrupted, r.err.String())
			}
			continue
		}
		if r.code != ExitRequirement || !f.Aborted || !strings.Contains(f.AbortReason, "shard 2/4 stopped: interrupted") {
			t.Errorf("shard %d: exit %d, aborted %v (%q); want exit 3 naming shard 2/4\n%s", i, r.code, f.Aborted, f.AbortReason, r.err.String())
		}
	}
}

func stepList(steps []results.Step) string {
	var parts []string
	for i := range steps {
		s := steps[i].Label()
		if !steps[i].Passed {
			s += "(fail)"
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestReplaySIGTERM: SIGTERM ends herd replay as Ctrl-C does: sending
// stops, the partial results are written, exit 130.
func TestReplaySIGTERM(t *testing.T) {
	bin := buildHerd(t)
	tp := steadyTape(t, 80, 8)
	srv := newCapacityServer(t, 64, time.Millisecond)
	out := filepath.Join(t.TempDir(), "r.json")
	cmd := exec.Command(bin, "replay", tp, "--target", srv.URL, "--window", "all", "--duration", "60s", "--json", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() // only the process this test started
			cmd.Wait()
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); srv.n.Load() < 50; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replay never sent 50 requests\n%s", stderr.String())
		}
	}
	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != ExitInterrupted {
		t.Errorf("exit %d after SIGTERM, want %d\n%s", code, ExitInterrupted, stderr.String())
	}
	if late := time.Duration(srv.last.Load() - signalled.UnixNano()); late > time.Second {
		t.Errorf("a request arrived %v after SIGTERM", late)
	}
	f, err := results.ReadFile(out)
	if err != nil {
		t.Fatalf("no partial results: %v", err)
	}
	if !f.Interrupted {
		t.Error("the results do not say the run was interrupted")
	}
}
