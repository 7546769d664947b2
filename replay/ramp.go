package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// RampOptions describe a search for the breaking point: steps from From to
// To by Step, each replaying the plan for StepDuration at its multiple.
type RampOptions struct {
	From, Step, To float64
	StepDuration   time.Duration
	Settle         time.Duration // start of each step left out of its statistics
	Cooldown       time.Duration // pause before each refinement step
	SLOs           []results.SLO
	Saturation     float64 // a step fails when achieved < Saturation × offered
	Refine         int     // bisection steps between the last pass and the first failure
	Mode           Mode
	Seed           uint64
	// Run is the template of every step's options; Schedule and Settle are
	// set per step.
	Run Options
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
type Shards interface {
	During(ctx context.Context, i int) (context.Context, func(reason string), context.CancelFunc)
	Join(ctx context.Context, i int, st *results.Step)
}

func (o *RampOptions) validate() error {
	switch {
	case o.From <= 0 || o.Step <= 0 || o.To < o.From:
		return fmt.Errorf("ramp from %gx to %gx by %gx: need 0 < from <= to and step > 0", o.From, o.To, o.Step)
	case o.StepDuration <= 0:
		return errors.New("the step duration must be positive")
	case o.Settle < 0 || o.Settle >= o.StepDuration:
		return fmt.Errorf("settle %v must be shorter than the step (%v)", o.Settle, o.StepDuration)
	case o.Refine < 0 || o.Refine > 10:
		return errors.New("refinement steps: 0 to 10")
	case o.Saturation < 0 || o.Saturation > 1:
		return errors.New("saturation is a fraction between 0 and 1")
	}
	return nil
}

// Scales lists the main steps' multiples.
func (o *RampOptions) Scales() []float64 {
	var out []float64
	for i := 0; ; i++ {
		k := o.From + float64(i)*o.Step
		if k > o.To*(1+1e-9) {
			return out
		}
		out = append(out, math.Round(k*1e6)/1e6)
	}
}

// Ramp runs the steps, appending them to f, and stops at the first
// failure: it never runs a step above one that failed. It then bisects
// between the last pass and the first failure with o.Refine more steps,
// each after o.Cooldown. An emergency stop or an interrupt ends the ramp at
// once. A step where herd itself was the limit is run once more after the
// cooldown (a passing stall on a busy machine should not end a long ramp);
// if herd is the limit again, the ramp ends there. f's analysis (breaking
// point, capacity, verdict) is filled in at the end.
func Ramp(ctx context.Context, p *Plan, o RampOptions, f *results.File) error {
	if err := o.validate(); err != nil {
		return err
	}
	index := 0
	var run func(scale float64, refinement, retry bool) (*results.Step, error)
	run = func(scale float64, refinement, retry bool) (*results.Step, error) {
		if o.OnStep != nil {
			o.OnStep(index, scale, refinement)
		}
		index++
		ro := o.Run
		ro.Schedule = PlanSchedule(p, o.Mode, scale, o.Seed, o.StepDuration)
		ro.Settle = o.Settle
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
		results.Evaluate(st, o.SLOs, o.Saturation)
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
	defer results.Analyze(f)
	lo, hi := 0.0, 0.0
	for _, k := range o.Scales() {
		st, err := run(k, false, false)
		if err != nil {
			return err
		}
		if f.Aborted || f.Interrupted || st.Generator.Limited {
			return nil
		}
		if !st.Passed {
			hi = k
			break
		}
		lo = k
	}
	if hi == 0 {
		return nil // no step failed
	}
	for i := 0; i < o.Refine; i++ {
		if err := sleepCtx(ctx, o.Cooldown); err != nil {
			f.Interrupted = true
			return nil
		}
		mid := math.Round((lo+hi)/2*1000) / 1000
		if mid <= lo || mid >= hi {
			return nil
		}
		st, err := run(mid, true, false)
		if err != nil {
			return err
		}
		if f.Aborted || f.Interrupted || st.Generator.Limited {
			return nil
		}
		if st.Passed {
			lo = mid
		} else {
			hi = mid
		}
	}
	return nil
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
