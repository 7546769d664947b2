package replay

import (
	"bufio"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// loadLimited answers 200 while fewer than limit requests arrive per
// 100 ms, and 503 beyond: a target with a known rate limit.
func loadLimited(limit int64) func(w *bufio.Writer, _ string, _ int) bool {
	var window, count atomic.Int64
	return func(w *bufio.Writer, _ string, _ int) bool {
		now := time.Now().UnixMilli() / 100
		if window.Swap(now) != now {
			count.Store(0)
		}
		if count.Add(1) > limit {
			w.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
			return true
		}
		w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	}
}

// TestRampStopsAtFirstFailure: a target that refuses beyond ~250 req/s
// against a 100 req/s tape. The ramp must stop at the first failing step,
// never run a step above it, and bisect only below it.
func TestRampStopsAtFirstFailure(t *testing.T) {
	srv := newServer(t, loadLimited(25))
	path := testTape(t, 100, 30, 10*time.Millisecond, time.Second)
	p := loadPlan(t, path, srv.url(), "peak:3s")
	slos, _ := results.ParseSLOs(results.DefaultSLOs)
	var order []float64
	f, err := Ramp(context.Background(), p, RampOptions{
		From: 1, Step: 1, To: 6, StepDuration: 2 * time.Second, Settle: 500 * time.Millisecond, Cooldown: 100 * time.Millisecond,
		Saturation: 0.9, Refine: 2,
		// A generous lag bound: this test is about the ramp's decisions, not
		// about how much CPU a loaded test machine leaves herd.
		Settings: Settings{Target: srv.url(), Mode: Clone, Seed: 1, SLOs: slos, Abort: AbortRule{Off: true}, LagBound: time.Second},
		OnStep:   func(_ int, k float64, _ bool) { order = append(order, k) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var failed float64
	for i, st := range f.Steps {
		if failed > 0 && st.Scale >= failed {
			t.Fatalf("step %d at %gx ran after the failure at %gx (order %v)", i, st.Scale, failed, order)
		}
		if !st.Passed && failed == 0 && !st.Refinement {
			failed = st.Scale
		}
	}
	if failed == 0 || f.BreakingPoint == nil {
		t.Fatalf("no failure found: %v", order)
	}
	if got := len(f.Steps); got != int(failed)+2 {
		t.Fatalf("%d steps for a failure at %gx with 2 refinements: %v", got, failed, order)
	}
	bp := f.BreakingPoint
	if bp.Scale != failed || bp.LastGoodScale != failed-1 || bp.RefinedScale == nil ||
		*bp.RefinedScale <= bp.LastGoodScale || *bp.RefinedScale >= bp.Scale {
		t.Fatalf("breaking point %+v (refined %v)", bp, bp.RefinedScale)
	}
	if f.Capacity.RPS <= 0 || !f.Capacity.Reached {
		t.Fatalf("capacity %+v", f.Capacity)
	}
}

// TestRampEmergencyStop: the target fails everything from the start; the
// ramp ends within 2 s with no refinement and is marked aborted.
func TestRampEmergencyStop(t *testing.T) {
	srv := newServer(t, loadLimited(0))
	path := testTape(t, 50, 30, 10*time.Millisecond, 200*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	rule, _ := ParseAbort(DefaultAbort)
	slos, _ := results.ParseSLOs(results.DefaultSLOs)
	begin := time.Now()
	f, err := Ramp(context.Background(), p, RampOptions{
		From: 1, Step: 1, To: 4, StepDuration: 10 * time.Second, Settle: time.Second, Refine: 3, Saturation: 0.9,
		Settings: Settings{Target: srv.url(), Mode: Clone, Seed: 1, SLOs: slos, Abort: rule},
	})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el > 2*time.Second {
		t.Fatalf("the ramp ran %v after the target failed", el)
	}
	if !f.Aborted || len(f.Steps) != 1 || f.BreakingPoint != nil {
		t.Fatalf("aborted %v, %d steps, breaking point %+v", f.Aborted, len(f.Steps), f.BreakingPoint)
	}
}

// TestRampGeneratorLimited: a tape far denser than herd can replay on this
// machine, against a fast target: the ramp must end calling herd the
// limit, not report a breaking point of the target.
func TestRampGeneratorLimited(t *testing.T) {
	srv := newServer(t, nil)
	// 4000 requests a second at 1x over 2 s on 400 connections.
	path := testTape(t, 400, 20, 250*time.Microsecond, 100*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	slos, _ := results.ParseSLOs(results.DefaultSLOs)
	f, err := Ramp(context.Background(), p, RampOptions{
		From: 50, Step: 50, To: 500, StepDuration: 2 * time.Second, Settle: 500 * time.Millisecond,
		Saturation: 0.9, Cooldown: 100 * time.Millisecond,
		Settings: Settings{Target: srv.url(), Mode: Compress, Seed: 1, SLOs: slos, Abort: AbortRule{Off: true}, Timeout: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Generator.Limited || f.BreakingPoint != nil {
		t.Fatalf("limited %v, breaking point %+v, steps %d: %s", f.Generator.Limited, f.BreakingPoint, len(f.Steps), f.Verdict)
	}
	last := f.Steps[len(f.Steps)-1]
	if !last.Generator.Limited || !last.Retry {
		t.Fatalf("the ramp should end on a retried generator-limited step: %+v", last.Generator)
	}
	for _, st := range f.Steps[:len(f.Steps)-1] {
		if !st.Passed && !st.Generator.Limited {
			t.Fatalf("a step at %gx failed before herd was the limit: %v", st.Scale, st.Violations)
		}
	}
}

// TestRampFindCapacity: with FindCapacity the ramp runs two steps past the
// first failure (never above To) and the capacity rests on the plateau
// they show, while the breaking point is still the first failure.
func TestRampFindCapacity(t *testing.T) {
	srv := newServer(t, loadLimited(25)) // about 250 req/s
	path := testTape(t, 100, 30, 10*time.Millisecond, time.Second)
	p := loadPlan(t, path, srv.url(), "peak:3s") // 100 req/s at 1x
	slos, _ := results.ParseSLOs(results.DefaultSLOs)
	f, err := Ramp(context.Background(), p, RampOptions{
		From: 2, Step: 1, To: 4, StepDuration: 2 * time.Second, Settle: 500 * time.Millisecond, Cooldown: 50 * time.Millisecond,
		Saturation: 0.9, FindCapacity: true,
		Settings: Settings{Target: srv.url(), Mode: Clone, Seed: 1, SLOs: slos, Abort: AbortRule{Off: true}, LagBound: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	var scales []float64
	beyond := 0
	for _, st := range f.Steps {
		scales = append(scales, st.Scale)
		if st.BeyondBreak {
			beyond++
		}
	}
	if f.BreakingPoint == nil || f.BreakingPoint.Scale != 3 {
		for _, st := range f.Steps {
			t.Logf("%gx: sent %d, errors %v (%v), not sent %v, herd: %v", st.Scale, st.Sent, st.ErrorClasses, st.FirstErrors, st.NotSent, st.Generator.Notes)
		}
		t.Fatalf("breaking point %+v, steps %v", f.BreakingPoint, scales)
	}
	// 2x passes, 3x fails, then only 4x: 5x is above To.
	if len(f.Steps) != 3 || beyond != 1 || f.Steps[2].Scale != 4 {
		t.Fatalf("steps %v (%d beyond the break), want 2, 3 and 4 beyond", scales, beyond)
	}
	if !f.Capacity.Reached || !strings.Contains(f.Capacity.Evidence, "plateau") {
		t.Fatalf("capacity %+v", f.Capacity)
	}
}
