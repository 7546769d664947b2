package replay

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// run is one step as its engine and its aggregator share it: the plan and
// options, the clock's time zero, how sending is stopped, and where the
// engine hands its results. An engine owns everything else.
type run struct {
	p  *Plan
	o  Options
	s  Schedule
	t0 int64 // the run's time zero on the replay clock

	stop   context.Context // cancelled to stop sending
	halt   context.CancelCauseFunc
	halted atomic.Bool // stop is done: cheaper to ask than stop.Err
	// stoppedAt is when an emergency stop or an interrupt stopped sending,
	// on the replay clock; 0 while running. The step's rates are over the
	// time it ran.
	stoppedAt atomic.Int64
	stopNoted chan struct{} // closed once stoppedAt is set, or found not to be
	h2        *h2Engine     // what goes over HTTP/2; nil when nothing does
	cap       *rateCap      // Options.MaxRate, shared by every sender; nil: no cap
	budget    *retryBudget  // Options.RetryBudget, shared by every emulated client
	// live, for a step of a live replay (live.go), hands over the step's
	// connections and requests as they are captured, instead of the
	// plan's; such a step runs on the goroutine engine.
	live *liveStep

	// results takes one result at a time, batches many; the engine closes
	// both when it is done.
	results chan result
	batches chan []result
	free    chan []result // batches the aggregator is done with, for reuse
	// sends and inFlight are read by the progress line: requests written
	// so far, and awaiting a response now.
	sends, inFlight func() int64
}

func newRun(ctx context.Context, p *Plan, o Options, live *liveStep) *run {
	r := &run{p: p, o: o, s: o.Schedule, results: make(chan result, 1<<14), batches: make(chan []result, 1<<10),
		free: make(chan []result, 1<<10), stopNoted: make(chan struct{}), cap: newRateCap(o.MaxRate), live: live,
		budget: &retryBudget{frac: o.RetryBudget}}
	r.stop, r.halt = context.WithCancelCause(ctx)
	context.AfterFunc(r.stop, func() {
		defer close(r.stopNoted)
		if c := context.Cause(r.stop); errors.Is(c, errAborted) || ctx.Err() != nil {
			r.stoppedAt.Store(nanotime())
		}
		r.halted.Store(true)
	})
	return r
}

// stopped reports whether sending has stopped.
func (r *run) stopped() bool { return r.halted.Load() }

// countDueIn counts the requests of the run due in [from, to).
func (r *run) countDueIn(from, to time.Duration) int64 {
	if r.live != nil {
		return r.live.handedIn(r.s, from, to)
	}
	return r.s.countDueIn(r.p, from, to)
}
