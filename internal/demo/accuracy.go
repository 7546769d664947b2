package demo

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/tape"
)

// Setting is one configuration of the demo service and its traffic, for
// checking that a ramp measures the service's capacity.
type Setting struct {
	Name     string
	Service  ServiceConfig
	ReadOnly bool // replay only GETs: a different route mix
	Pacing   replay.Pacing
	From     float64
	Step     float64
	To       float64
	StepDur  time.Duration
	Settle   time.Duration
	Refine   int
	// LagBound, when set, overrides the generator's lag bound (tests on a
	// loaded machine use a generous one).
	LagBound time.Duration
}

// AccuracySettings are the configurations the accuracy test and
// bench/capacity check: the demo as it was, with the fix, and a read-only
// mix on a larger pool of slower queries. Each ramp starts a little below the
// expected capacity to keep the check short.
func AccuracySettings() []Setting {
	base := DefaultService()
	fixed := base
	fixed.Fixed = true
	reads := ServiceConfig{Slots: 12, Query: 9 * time.Millisecond, MaxWait: 800 * time.Millisecond}
	// 12 s steps leave 10 measured seconds: the sustained rate then
	// averages 5 s, which a passing stall of herd on a busy machine (that
	// bunches completions into one second) does not skew.
	common := Setting{Step: 0.5, To: 8, StepDur: 12 * time.Second, Settle: 2 * time.Second}
	out := []Setting{common, common, common}
	out[0].Name, out[0].Service, out[0].From = "as it was: 8 slots x 4.8 ms, full mix", base, 3
	out[1].Name, out[1].Service, out[1].From = "fixed: 8 slots x 4.8 ms, full mix, /login 3 queries", fixed, 4.5
	out[2].Name, out[2].Service, out[2].From, out[2].ReadOnly = "12 slots x 9 ms, GETs only", reads, 4, true
	return out
}

// Measured is what a ramp found against a setting, next to the truth.
type Measured struct {
	Setting    Setting
	Truth      float64 // analytic capacity, as a multiple of the window's rate
	Capacity   float64 // measured capacity_scale
	FirstFail  float64 // first failing multiple, 0 when none failed
	Window1x   float64 // the window's rate, req/s
	File       *results.File
	ErrPercent float64
}

// Accuracy starts the demo service with s.Service on 127.0.0.1, ramps the
// embedded tape against it and compares the capacity found with the
// service's analytic capacity.
func Accuracy(ctx context.Context, s Setting) (*Measured, error) {
	svc := NewService(s.Service)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	target, _, err := svc.Start(sctx)
	if err != nil {
		return nil, err
	}
	plan, err := Plan(ctx, target, s.StepDur, s.ReadOnly)
	if err != nil {
		return nil, err
	}
	m := &Measured{Setting: s, Window1x: plan.Rate(), Truth: svc.Truth(plan)}
	slos, _ := results.ParseSLOs(results.DefaultSLOs)
	f, err := replay.Ramp(ctx, plan, replay.RampOptions{
		Settings: replay.Settings{Target: target, Mode: replay.Clone, Seed: 1, Pacing: s.Pacing, Timeout: 5 * time.Second,
			Abort: replay.AbortRule{Off: true}, LagBound: s.LagBound, SLOs: slos, TapeName: TapeName},
		From: s.From, Step: s.Step, To: s.To, StepDuration: s.StepDur, Settle: s.Settle, Cooldown: time.Second,
		Saturation: 0.9, Refine: s.Refine,
	})
	if err != nil {
		return nil, err
	}
	m.File = f
	m.Capacity = f.Capacity.Scale
	if f.BreakingPoint != nil {
		m.FirstFail = f.BreakingPoint.Scale
	}
	m.ErrPercent = 100 * (m.Capacity - m.Truth) / m.Truth
	return m, nil
}

// Plan loads the busiest window of the given length (whole seconds) of the
// embedded tape, to replay against target.
func Plan(ctx context.Context, target *url.URL, window time.Duration, readOnly bool) (*replay.Plan, error) {
	data := Tape()
	r, err := tape.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("demo tape: %w", err)
	}
	w, err := replay.ParseWindow(fmt.Sprintf("peak:%ds", int(window.Round(time.Second)/time.Second)))
	if err != nil {
		return nil, err
	}
	p, err := replay.Load(ctx, r, replay.PlanOptions{Window: w, Target: target, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("demo tape: %w", err)
	}
	return p, nil
}

// Truth is the service's analytic capacity for the plan's mix of requests,
// as a multiple of the plan's 1x rate.
func (s *Service) Truth(p *replay.Plan) float64 {
	return s.Capacity(PlanMix(p)) / p.Rate()
}

// PlanMix counts a plan's requests at 1x by "METHOD /route", the key
// Capacity takes.
func PlanMix(p *replay.Plan) map[string]int64 {
	mix := make(map[string]int64)
	for i, k := range p.Routes {
		mix[k.Method+" "+k.Route] += p.RouteRequests[i]
	}
	return mix
}
