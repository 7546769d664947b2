package replay

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// RampOptions describe a search for the breaking point: steps from From to
// To by Step, each replaying the plan for StepDuration at its multiple.
type RampOptions struct {
	Settings
	From, Step, To float64
	StepDuration   time.Duration
	Settle         time.Duration // start of each step left out of its statistics
	Cooldown       time.Duration // pause before each refinement step
	Saturation     float64       // a step fails when achieved < Saturation × offered
	Refine         int           // bisection steps between the last pass and the first failure
	// FindCapacity runs up to two more steps above the first failure
	// (never above To, and the emergency stop still applies), to measure
	// the plateau of achieved throughput rather than a lower bound of it.
	FindCapacity bool
	// Recovery, when set, replays at RecoveryScale (1x when zero) for this
	// long right after the breaking step or an emergency stop, and judges
	// whether the SLOs come to hold again over RecoveryWindow (5 s when
	// zero). RecoveryAbort is the emergency stop during that phase: staying
	// broken is what is measured, so the caller decides how far to relax
	// the run's own rule.
	Recovery       time.Duration
	RecoveryScale  float64
	RecoveryWindow time.Duration
	RecoveryAbort  AbortRule
	// OnStep is called before each step, OnStepDone after it.
	OnStep     func(index int, scale float64, refinement bool)
	OnStepDone func(st *results.Step)
	// Shards, when set, makes this ramp one shard of several that take
	// every decision together (herd ramp --coordinate, internal/coord).
	Shards Shards
}

// Shards joins the shards of a coordinated ramp. During returns the
// context step i runs under, cancelled when another shard stops, and the
// hook for this shard's emergency stop. Join, after step i, waits for
// every shard's outcome and makes st's verdict the joint one (passed,
// failed, herd-limited or stopped), which the ramp then acts on as its own.
// Recovering starts the recovery phase, whose step is then run under
// During and Join like the others; it refuses when a shard will not run
// one (interrupted, missing).
type Shards interface {
	During(ctx context.Context, i int) (context.Context, func(reason string), context.CancelFunc)
	Join(ctx context.Context, i int, st *results.Step)
	Recovering() error
}

func (o *RampOptions) check() error {
	if err := o.Settings.check(); err != nil {
		return err
	}
	bad := func(option, format string, args ...any) error {
		return &OptionError{Option: option, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case !(o.From > 0) || !(o.Step > 0) || math.IsInf(o.To, 0):
		return bad("from", "ramp from %gx to %gx by %gx: the multiples and the step must be positive", o.From, o.To, o.Step)
	case o.To < o.From:
		return bad("to", "the last multiple %gx is below the first %gx", o.To, o.From)
	case o.StepDuration < time.Second:
		return bad("step_duration", "the step duration must be at least 1s")
	case o.Settle < 0 || o.Settle >= o.StepDuration:
		return bad("settle", "the settle time %v must be shorter than the step (%v)", o.Settle, o.StepDuration)
	case o.Refine < 0 || o.Refine > 10:
		return bad("refine", "refinement takes 0 to 10 steps")
	case o.Saturation < 0 || o.Saturation > 1:
		return bad("saturation", "saturation is a fraction between 0 and 1")
	case o.Cooldown < 0:
		return bad("cooldown", "the cooldown must not be negative")
	case o.Recovery < 0 || (o.Recovery > 0 && o.Recovery < 2*time.Second):
		return bad("recovery", "the recovery phase must last at least 2s")
	case o.RecoveryScale < 0 || math.IsInf(o.RecoveryScale, 0):
		return bad("recovery_scale", "the recovery multiple must be positive")
	case len(o.Scales()) > 1000:
		return bad("step", "%d steps from %gx to %gx: use a larger step", len(o.Scales()), o.From, o.To)
	}
	return nil
}

// Scales lists the main steps' multiples.
func (o *RampOptions) Scales() []float64 {
	var out []float64
	for i := 0; len(out) <= 1000; i++ {
		k := o.From + float64(i)*o.Step
		if k > o.To*(1+1e-9) {
			return out
		}
		out = append(out, math.Round(k*1e6)/1e6)
	}
	return out
}

// Ramp runs the steps and returns the complete results, and stops at the
// first failure: it never runs a step above one that failed, unless
// FindCapacity asks for up to two more to see the throughput plateau. It then
// bisects between the last pass and the first failure with o.Refine more
// steps, each after o.Cooldown. An emergency stop or an interrupt ends the
// ramp at once; an interrupted step is not judged and no breaking point is
// drawn from it. A step where herd itself was the limit is run once more
// after the cooldown (a passing stall on a busy machine should not end a
// long ramp); if herd is the limit again, the ramp ends there. A step the
// connection bound or the machine's ports cannot carry is not run: the
// ramp ends before it, marked as herd's limit.
func Ramp(ctx context.Context, p *Plan, o RampOptions) (*results.File, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := o.checkRoutes(p); err != nil {
		return nil, err
	}
	if err := o.checkProtocol(p); err != nil {
		return nil, err
	}
	if err := o.fitRate(p); err != nil {
		return nil, err
	}
	scales := o.Scales()
	total := time.Duration(len(scales))*o.StepDuration + time.Duration(o.Refine)*(o.StepDuration+o.Cooldown) + o.Recovery
	if err := o.checkDuration(total); err != nil {
		return nil, err
	}
	schedule := func(k float64) Schedule { return PlanSchedule(p, o.Mode, k, o.Seed, o.StepDuration) }
	if _, err := o.checkConns(p, schedule(o.From)); err != nil {
		return nil, err
	}
	if o.Ready != nil {
		err := o.Ready(Outline{Kind: "ramp", Requests: p.Requests, Window: p.Length, Conns: p.Connections(),
			PeakConns: schedule(o.To).PeakConns(p), Duration: total, Steps: len(scales), Scale: o.To, MaxRate: o.MaxRate})
		if err != nil {
			return nil, err
		}
	}
	f := newFile("ramp", p, &o.Settings)
	f.Params.StepS = o.StepDuration.Seconds()
	f.Params.SettleS = o.Settle.Seconds()
	f.Params.CooldownS = o.Cooldown.Seconds()
	f.Params.Saturation = o.Saturation
	defer results.Analyze(f)

	index := 0
	var run func(scale float64, refinement, retry bool) (*results.Step, error)
	run = func(scale float64, refinement, retry bool) (*results.Step, error) {
		sched := schedule(scale)
		if _, err := o.checkConns(p, sched); err != nil {
			f.Steps = append(f.Steps, unrunnable(scale, refinement, err))
			return &f.Steps[len(f.Steps)-1], nil
		}
		if o.OnStep != nil {
			o.OnStep(index, scale, refinement)
		}
		index++
		ro := o.step(sched, o.Settle)
		stepCtx, endStep := ctx, context.CancelFunc(func() {})
		if o.Shards != nil {
			stepCtx, ro.OnAbort, endStep = o.Shards.During(ctx, index-1)
		}
		st, err := Run(stepCtx, p, ro)
		endStep()
		if err != nil {
			return nil, err
		}
		st.Refinement, st.Retry = refinement, retry
		evaluate(st, o.SLOs, o.Saturation)
		if o.Shards != nil {
			o.Shards.Join(ctx, index-1, st)
		}
		f.Steps = append(f.Steps, *st)
		if o.OnStepDone != nil {
			o.OnStepDone(st)
		}
		switch {
		case st.Aborted:
			f.Aborted, f.AbortReason = true, st.AbortReason
		case st.Interrupted:
			f.Interrupted = true
		case st.Generator.Limited && !retry:
			if sleepCtx(ctx, o.Cooldown) != nil {
				f.Interrupted = true
				return st, nil
			}
			return run(scale, refinement, true)
		}
		return st, nil
	}
	lo, hi := 0.0, 0.0
	for _, k := range scales {
		st, err := run(k, false, false)
		if err != nil {
			return f, err
		}
		if f.Aborted && !f.Interrupted {
			return f, o.recover(ctx, p, f, "emergency stop", index)
		}
		if f.Interrupted || st.Generator.Limited {
			return f, nil
		}
		if !st.Passed {
			hi = k
			break
		}
		lo = k
	}
	if hi == 0 {
		return f, nil // no step failed
	}
	if err := o.recover(ctx, p, f, "breaking step", index); err != nil || f.Interrupted || f.Aborted {
		return f, err
	}
	if o.FindCapacity {
		for j := 1; j <= 2; j++ {
			k := math.Round((hi+float64(j)*o.Step)*1e6) / 1e6
			if k > o.To*(1+1e-9) {
				break
			}
			if err := sleepCtx(ctx, o.Cooldown); err != nil {
				f.Interrupted = true
				return f, nil
			}
			st, err := run(k, false, false)
			if err != nil {
				return f, err
			}
			st.BeyondBreak = true
			f.Steps[len(f.Steps)-1].BeyondBreak = true
			if f.Aborted || f.Interrupted || st.Generator.Limited {
				return f, nil
			}
		}
	}
	for i := 0; i < o.Refine; i++ {
		if err := sleepCtx(ctx, o.Cooldown); err != nil {
			f.Interrupted = true
			return f, nil
		}
		mid := math.Round((lo+hi)/2*1000) / 1000
		if mid <= lo || mid >= hi {
			return f, nil
		}
		st, err := run(mid, true, false)
		if err != nil {
			return f, err
		}
		if f.Aborted || f.Interrupted || st.Generator.Limited {
			return f, nil
		}
		if st.Passed {
			lo = mid
		} else {
			hi = mid
		}
	}
	return f, nil
}

// recover runs the recovery phase, when asked for, right after the step
// that broke (or was stopped), and records its verdict in f.Recovery.
func (o *RampOptions) recover(ctx context.Context, p *Plan, f *results.File, after string, index int) error {
	if o.Recovery <= 0 {
		return nil
	}
	k := o.RecoveryScale
	if k == 0 {
		k = 1
	}
	win := o.RecoveryWindow
	if win <= 0 {
		win = 5 * time.Second
	}
	rec := &results.Recovery{Scale: k, DurationS: o.Recovery.Seconds(), WindowS: win.Seconds(), After: after}
	sched := PlanSchedule(p, o.Mode, k, o.Seed, o.Recovery)
	ro := o.step(sched, 0)
	ro.Abort = o.RecoveryAbort
	stepCtx, endStep := ctx, context.CancelFunc(func() {})
	if o.Shards != nil {
		// The shards run the recovery phase together, or none does.
		if err := o.Shards.Recovering(); err != nil {
			rec.Note = err.Error()
			f.Recovery = rec
			return nil
		}
		stepCtx, ro.OnAbort, endStep = o.Shards.During(ctx, index)
	}
	if o.OnStep != nil {
		o.OnStep(len(f.Steps), k, false)
	}
	st, err := Run(stepCtx, p, ro)
	endStep()
	if err != nil {
		return err
	}
	st.Recovery = true
	evaluate(st, o.SLOs, o.Saturation)
	if o.Shards != nil {
		o.Shards.Join(ctx, index, st)
	}
	f.Steps = append(f.Steps, *st)
	if o.OnStepDone != nil {
		o.OnStepDone(st)
	}
	f.Recovery = rec
	switch {
	case st.Interrupted:
		f.Interrupted = true
		rec.Note = "interrupted: not judged"
	case st.Aborted:
		rec.Note = "the recovery phase's emergency stop fired: " + st.AbortReason
	}
	// Analyze judges it from the recovery step, as it does after a merge.
	return nil
}

// unrunnable is the record of a step herd did not run because it could
// not generate it.
func unrunnable(scale float64, refinement bool, why error) results.Step {
	return results.Step{Scale: scale, Refinement: refinement, StartedAt: time.Now().UTC(),
		ErrorClasses: results.Counts{}, NotSent: results.Counts{}, Violations: []string{},
		Generator: results.Generator{Limited: true, Notes: []string{"not run: " + why.Error()}}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
