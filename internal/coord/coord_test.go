package coord

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// step makes the results of a step whose requests took these latencies
// (all successful, over 10 s), as replay would write them.
func step(t *testing.T, lats ...time.Duration) *results.Step {
	t.Helper()
	empty := results.Encode(results.NewHist())
	h := results.NewHist()
	for _, l := range lats {
		if err := h.RecordValue(l.Microseconds()); err != nil {
			t.Fatal(err)
		}
	}
	n := int64(len(lats))
	st := &results.Step{Scale: 1, DurationS: 10, Planned: n, Sent: n, Completed: n, Good: n,
		ErrorClasses: results.Counts{}, NotSent: results.Counts{}, Generator: results.Generator{Notes: []string{}}}
	st.Histograms.Latency = results.Encode(h)
	st.Histograms.Service, st.Histograms.TTFB, st.Histograms.ScheduleLag, st.Histograms.DispatchLag = empty, empty, empty, empty
	if err := results.Summarize(st); err != nil {
		t.Fatal(err)
	}
	return st
}

// lats returns n latencies of 10 ms of which slow are 500 ms.
func lats(n, slow int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = 10 * time.Millisecond
		if i < slow {
			out[i] = 500 * time.Millisecond
		}
	}
	return out
}

func options(t *testing.T, dir string, shard, shards int) Options {
	t.Helper()
	slos, err := results.ParseSLOs([]string{"p99<100ms", "errors<1%"})
	if err != nil {
		t.Fatal(err)
	}
	return Options{Dir: dir, Shard: shard, Shards: shards, Timeout: 3 * time.Second, Poll: 50 * time.Millisecond,
		SLOs: slos, Saturation: 0.9, Settings: map[string]string{"tape": "peak.tape", "to": "4x"}}
}

// join starts n shards in dir and returns their groups.
func join(t *testing.T, dir string, n int, opt func(*Options)) []*Group {
	t.Helper()
	groups := make([]*Group, n)
	starts := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := options(t, dir, i, n)
			if opt != nil {
				opt(&o)
			}
			groups[i], starts[i], errs[i] = Join(context.Background(), o)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if !starts[i].Equal(starts[0]) {
			t.Errorf("shard %d starts at %v, shard 0 at %v", i, starts[i], starts[0])
		}
	}
	return groups
}

// joinAll runs Join of step k on every shard at once.
func joinAll(groups []*Group, k int, steps []*results.Step) {
	var wg sync.WaitGroup
	for i, g := range groups {
		if steps[i] == nil {
			continue // a shard that never comes
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.Join(context.Background(), k, steps[i])
		}()
	}
	wg.Wait()
}

// TestJointVerdictIsTheMergedStep: every shard takes the verdict of the
// merged step, the one a single herd sending all the traffic reaches:
// one shard's bad p99 over its third of the requests does not fail a step
// whose merged p99 holds, and a step whose merged p99 fails fails on every
// shard, with the same violations.
func TestJointVerdictIsTheMergedStep(t *testing.T) {
	groups := join(t, t.TempDir(), 3, nil)
	slos := options(t, "", 0, 1).SLOs

	// Step 0: 3 slow requests of 300: p99 10 ms; shard 0 alone: 500 ms.
	steps := []*results.Step{step(t, lats(100, 3)...), step(t, lats(100, 0)...), step(t, lats(100, 0)...)}
	results.Evaluate(steps[0], slos, 0.9)
	if steps[0].Passed {
		t.Fatal("shard 0's own step should fail its p99 SLO")
	}
	joinAll(groups, 0, steps)
	for i, st := range steps {
		if !st.Passed || len(st.Violations) != 0 || st.Aborted {
			t.Errorf("step 0, shard %d: passed %v, violations %v, aborted %v; want the merged verdict: passed", i, st.Passed, st.Violations, st.Aborted)
		}
	}

	// Step 1: 10 slow of 300: p99 500 ms everywhere.
	steps = []*results.Step{step(t, lats(100, 0)...), step(t, lats(100, 10)...), step(t, lats(100, 0)...)}
	joinAll(groups, 1, steps)
	for i, st := range steps {
		if st.Passed || !reflect.DeepEqual(st.Violations, steps[1].Violations) || !strings.Contains(strings.Join(st.Violations, ";"), "p99") {
			t.Errorf("step 1, shard %d: passed %v, violations %v; want failed on p99 like shard 1 (%v)", i, st.Passed, st.Violations, steps[1].Violations)
		}
	}

	// A shard that herd itself limited makes the step herd-limited for all,
	// so that they run it again together.
	steps = []*results.Step{step(t, lats(100, 0)...), step(t, lats(100, 0)...), step(t, lats(100, 0)...)}
	steps[2].Generator = results.Generator{Limited: true, Notes: []string{"dispatch lag p99 30ms"}}
	joinAll(groups, 2, steps)
	for i, st := range steps {
		if !st.Generator.Limited {
			t.Errorf("step 2, shard %d: not herd-limited; shard 2 was", i)
		}
	}
	if n := steps[0].Generator.Notes; len(n) != 1 || !strings.Contains(n[0], "shard 2/3 was the limit: dispatch lag") {
		t.Errorf("shard 0's notes %q", n)
	}
}

// TestPeerStopEndsTheStep: one shard's emergency stop cancels every other
// shard's step within the poll interval (well inside 2 s), and every shard
// records the step as stopped, naming the shard and its reason.
func TestPeerStopEndsTheStep(t *testing.T) {
	groups := join(t, t.TempDir(), 3, nil)
	ctxs := make([]context.Context, 3)
	aborts := make([]func(string), 3)
	ends := make([]context.CancelFunc, 3)
	for i, g := range groups {
		ctxs[i], aborts[i], ends[i] = g.During(context.Background(), 0)
	}
	start := time.Now()
	aborts[2]("errors 60% > 50% over 5s")
	for i := range 2 {
		select {
		case <-ctxs[i].Done():
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("shard %d stopped %v after the emergency stop", i, d)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("shard %d still running 2 s after shard 2's emergency stop", i)
		}
	}
	if ctxs[2].Err() != nil {
		t.Error("the shard that stopped must not cancel its own step: its engine did")
	}
	for _, end := range ends {
		end()
	}
	// What the engine reports: the others interrupted, shard 2 aborted.
	steps := []*results.Step{step(t, lats(10, 0)...), step(t, lats(10, 0)...), step(t, lats(10, 0)...)}
	steps[0].Interrupted, steps[1].Interrupted = true, true
	steps[2].Aborted, steps[2].AbortReason = true, "errors 60% > 50% over 5s"
	joinAll(groups, 0, steps)
	for i, st := range steps[:2] {
		if st.Interrupted || !st.Aborted || !strings.Contains(st.AbortReason, "shard 2/3 stopped: emergency stop during step 1: errors 60%") {
			t.Errorf("shard %d: interrupted %v, aborted %v (%q)", i, st.Interrupted, st.Aborted, st.AbortReason)
		}
	}
	if steps[2].AbortReason != "errors 60% > 50% over 5s" {
		t.Errorf("shard 2 keeps its own reason; got %q", steps[2].AbortReason)
	}
}

// TestInterruptStopsTheOthers: Ctrl-C or SIGTERM on one shard (its context
// ends) stops the others' step too.
func TestInterruptStopsTheOthers(t *testing.T) {
	groups := join(t, t.TempDir(), 2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	_, _, end0 := groups[0].During(ctx, 0)
	other, _, end1 := groups[1].During(context.Background(), 0)
	defer end0()
	defer end1()
	cancel()
	select {
	case <-other.Done():
		var se *ShardError
		if cause := context.Cause(other); !errors.As(cause, &se) || !strings.Contains(se.Msg, "shard 0/2 stopped: interrupted") {
			t.Errorf("cause %v", cause)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("shard 1 still running 2 s after shard 0 was interrupted")
	}
}

// TestMissingShardTimesOut: a shard that never finishes its step is waited
// for up to the timeout; then the others stop and name it.
func TestMissingShardTimesOut(t *testing.T) {
	groups := join(t, t.TempDir(), 3, func(o *Options) { o.Timeout = 500 * time.Millisecond })
	steps := []*results.Step{step(t, lats(10, 0)...), step(t, lats(10, 0)...), nil}
	start := time.Now()
	joinAll(groups, 0, steps)
	if d := time.Since(start); d < 500*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %v; the timeout is 500ms", d)
	}
	for i, st := range steps[:2] {
		// The first to give up tells the other, which may quote it.
		if !st.Aborted || !strings.HasSuffix(st.AbortReason, "shard 2/3 did not finish step 1 within 500ms") {
			t.Errorf("shard %d: aborted %v, %q", i, st.Aborted, st.AbortReason)
		}
	}
}

// TestJoinRefuses: shards of different runs, a directory that holds an
// earlier run, and a shard that never starts.
func TestJoinRefuses(t *testing.T) {
	dir := t.TempDir()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := options(t, dir, i, 2)
			if i == 1 {
				o.Settings["to"] = "6x"
			}
			_, _, errs[i] = Join(context.Background(), o)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "runs another ramp: to is") {
			t.Errorf("shard %d: got %v, want the differing setting named", i, err)
		}
	}
	// The same directory again: the earlier run's files are there.
	if _, _, err := Join(context.Background(), options(t, dir, 0, 2)); err == nil || !strings.Contains(err.Error(), "already holds the files of shard 0/2") {
		t.Errorf("stale directory: got %v", err)
	}
	// Alone, with a short timeout.
	o := options(t, filepath.Join(t.TempDir(), "new"), 1, 3)
	o.Timeout = 200 * time.Millisecond
	if _, _, err := Join(context.Background(), o); err == nil || !strings.Contains(err.Error(), "shards 0/3, 2/3 not ready within 200ms") {
		t.Errorf("alone: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "stop-1.json")); err != nil {
		t.Errorf("a shard that gives up must say so to the others: %v", err)
	}
}

// TestFilesAreWholeOrAbsent: nothing but complete files under their final
// names; no temporary file left behind.
func TestFilesAreWholeOrAbsent(t *testing.T) {
	dir := t.TempDir()
	groups := join(t, dir, 2, nil)
	joinAll(groups, 0, []*results.Step{step(t, lats(10, 0)...), step(t, lats(10, 0)...)})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"ready-0.json", "ready-1.json", "step-0-0.json", "step-0-1.json"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

// TestInterruptBetweenSteps: an interrupt outside any step (a cooldown,
// the wait for the start) is published too.
func TestInterruptBetweenSteps(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var g *Group
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		g, _, err = Join(ctx, options(t, dir, 0, 2))
	}()
	other, _, err1 := Join(context.Background(), options(t, dir, 1, 2))
	<-done
	if err != nil || err1 != nil {
		t.Fatal(err, err1)
	}
	defer g.Close()
	defer other.Close()
	cancel()
	stepCtx, _, end := other.During(context.Background(), 1)
	defer end()
	select {
	case <-stepCtx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("shard 1's next step was not stopped by shard 0's interrupt between steps")
	}
}

// TestRecoveryPhase: after an emergency stop, the shards run the recovery
// phase together: the ramp's stop no longer cancels anything, and a stop
// during the recovery (another emergency stop) ends every shard's recovery
// step, named as the recovery phase's.
func TestRecoveryPhase(t *testing.T) {
	dir := t.TempDir()
	groups := join(t, dir, 3, nil)
	ctxs := make([]context.Context, 3)
	aborts := make([]func(string), 3)
	ends := make([]context.CancelFunc, 3)
	for i, g := range groups {
		ctxs[i], aborts[i], ends[i] = g.During(context.Background(), 0)
	}
	stopStep(t, groups, 0, ctxs, aborts, ends, 2, "errors 60% > 50% over 5s")

	for i, g := range groups {
		if err := g.Recovering(); err != nil {
			t.Fatalf("shard %d: %v; the ramp's first stop was an emergency stop", i, err)
		}
		ctxs[i], aborts[i], ends[i] = g.During(context.Background(), 1)
	}
	time.Sleep(5 * options(t, "", 0, 1).Poll)
	for i, ctx := range ctxs {
		if ctx.Err() != nil {
			t.Fatalf("shard %d: the recovery step was cancelled by the ramp's stop: %v", i, context.Cause(ctx))
		}
	}
	steps := stopStep(t, groups, 1, ctxs, aborts, ends, 1, "errors 95% > 90% over 10s")
	for _, i := range []int{0, 2} {
		if st := steps[i]; !st.Aborted || !strings.Contains(st.AbortReason, "shard 1/3 stopped: emergency stop during the recovery phase: errors 95%") {
			t.Errorf("shard %d: aborted %v (%q)", i, st.Aborted, st.AbortReason)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "recovery-stop-1.json")); err != nil {
		t.Errorf("the recovery phase's stop file: %v", err)
	}
}

// TestRecoveryAfterBreakingStep: with no stop in the ramp (it ended at a
// failing step), the shards' recovery steps are joined like any step, in
// files of their own.
func TestRecoveryAfterBreakingStep(t *testing.T) {
	dir := t.TempDir()
	groups := join(t, dir, 2, nil)
	joinAll(groups, 0, []*results.Step{step(t, lats(100, 0)...), step(t, lats(100, 0)...)})
	for i, g := range groups {
		if err := g.Recovering(); err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	steps := []*results.Step{step(t, lats(100, 0)...), step(t, lats(100, 10)...)}
	joinAll(groups, 1, steps)
	for i, st := range steps {
		if st.Aborted || st.Passed {
			t.Errorf("shard %d: aborted %v (%s), passed %v; want the merged verdict, failed", i, st.Aborted, st.AbortReason, st.Passed)
		}
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("recovery-step-1-%d.json", i))); err != nil {
			t.Error(err)
		}
	}
}

// TestNoRecoveryAfterInterrupt: a ramp whose first stop was not an
// emergency stop (a shard interrupted, or gone) runs no recovery phase on
// any shard: the others would wait for a shard that never comes.
func TestNoRecoveryAfterInterrupt(t *testing.T) {
	groups := join(t, t.TempDir(), 2, nil)
	groups[0].Stop("interrupted")
	time.Sleep(10 * time.Millisecond)
	groups[1].Stop("shard 0/2 stopped: interrupted")
	for i, g := range groups {
		err := g.Recovering()
		if err == nil || !strings.Contains(err.Error(), "no recovery phase: shard 0/2 stopped: interrupted") {
			t.Errorf("shard %d: %v", i, err)
		}
	}
}

// stopStep fires shard by's emergency stop during step k, waits for every
// other shard's step to be cancelled, and joins the step as the engines
// would report it: the others interrupted, shard by aborted.
func stopStep(t *testing.T, groups []*Group, k int, ctxs []context.Context, aborts []func(string), ends []context.CancelFunc, by int, reason string) []*results.Step {
	t.Helper()
	aborts[by](reason)
	steps := make([]*results.Step, len(groups))
	for i := range groups {
		steps[i] = step(t, lats(10, 0)...)
		if i == by {
			steps[i].Aborted, steps[i].AbortReason = true, reason
			continue
		}
		select {
		case <-ctxs[i].Done():
		case <-time.After(2 * time.Second):
			t.Fatalf("step %d: shard %d still running after shard %d's emergency stop", k, i, by)
		}
		steps[i].Interrupted = true
	}
	for _, end := range ends {
		end()
	}
	joinAll(groups, k, steps)
	return steps
}
