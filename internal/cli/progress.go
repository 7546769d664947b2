package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/herd-replay/herd/replay"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressView shows a running replay on stderr: one mpb bar per step and
// an overall line for ramps on a terminal, or a status line every few
// seconds in a log.
//
// mpb calls the decorators from its own goroutine, and they read the state
// under mu; so mpb itself is never called with mu held.
type progressView struct {
	io    IO
	every time.Duration
	p     *mpb.Progress // nil when stderr is not a terminal

	mu       sync.Mutex
	bar      *mpb.Bar
	overall  *mpb.Bar
	summary  string // the overall line's text
	label    string
	last     replay.Progress
	lastLine time.Time
}

func newProgressView(io IO, every time.Duration) *progressView {
	v := &progressView{io: io, every: every}
	if io.ErrTTY {
		// ErrTTY already decided there is a terminal; auto refresh on makes the
		// bars draw to whatever writer the tests give.
		v.p = mpb.New(mpb.WithOutput(io.Err), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
	}
	return v
}

func (v *progressView) describe(p replay.Progress) string {
	if p.IdleUntil > 0 {
		// Nothing is due: say so, rather than that nothing is offered.
		at := time.Now().Add(p.IdleUntil - p.Elapsed)
		return fmt.Sprintf("%v/%v  idle until %s (recorded gap %s)  in flight %d  errors %d",
			p.Elapsed.Round(time.Second), p.Duration.Round(time.Second), at.Format("15:04:05"),
			longDuration(p.IdleRecorded), p.InFlight, p.Errors)
	}
	return fmt.Sprintf("%v/%v  offered %.1f/s  achieved %.1f/s  in flight %d  p99 %v  errors %d",
		p.Elapsed.Round(time.Second), p.Duration.Round(time.Second), p.OfferedRPS, p.AchievedRPS,
		p.InFlight, p.P99.Round(100*time.Microsecond), p.Errors)
}

// Overall shows or updates the ramp's overall line: done of total steps,
// and text (the last step's outcome). Only on a terminal; status lines say
// as much at each step.
func (v *progressView) Overall(done, total int, text string) {
	if v.p == nil {
		return
	}
	v.mu.Lock()
	v.summary = text
	bar := v.overall
	v.mu.Unlock()
	if bar == nil {
		// Created without a total: mpb completes a bar created with one
		// only when it reaches it, and a ramp stops early; Close
		// completes this one.
		bar = v.p.AddBar(0, mpb.BarPriority(-1),
			mpb.PrependDecorators(decor.Name("ramp", decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d steps", decor.WCSyncSpace)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				v.mu.Lock()
				defer v.mu.Unlock()
				return v.summary
			})))
		v.mu.Lock()
		v.overall = bar
		v.mu.Unlock()
	}
	bar.SetTotal(int64(max(total, done)), false)
	bar.SetCurrent(int64(done))
}

// Step starts showing a new step.
func (v *progressView) Step(label string) {
	v.mu.Lock()
	v.label, v.last, v.lastLine = label, replay.Progress{}, time.Now()
	v.mu.Unlock()
	if v.p == nil {
		fmt.Fprintf(v.io.Err, "herd: %s: starting\n", label)
		return
	}
	bar := v.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d sent", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.describe(v.last)
		})),
	)
	v.mu.Lock()
	v.bar = bar
	v.mu.Unlock()
}

// Update is replay's progress callback.
func (v *progressView) Update(p replay.Progress) {
	v.mu.Lock()
	v.last = p
	bar := v.bar
	line := v.p == nil && !p.Done && time.Since(v.lastLine) >= v.every
	if line {
		v.lastLine = time.Now()
	}
	label := v.label
	v.mu.Unlock()
	if bar != nil {
		bar.SetTotal(p.Planned, false)
		bar.SetCurrent(p.Sent)
	}
	if line {
		fmt.Fprintf(v.io.Err, "herd: %s: sent %d/%d  %s\n", label, p.Sent, p.Planned, v.describe(p))
	}
}

// EndStep completes the current step's bar and prints its outcome.
func (v *progressView) EndStep(outcome string) {
	v.mu.Lock()
	bar, label := v.bar, v.label
	v.bar = nil
	v.mu.Unlock()
	if bar != nil {
		bar.SetTotal(-1, true)
		return
	}
	fmt.Fprintf(v.io.Err, "herd: %s: %s\n", label, outcome)
}

// Close completes the overall line and waits for the bars to be drawn for
// the last time.
func (v *progressView) Close() {
	if v.p == nil {
		return
	}
	v.mu.Lock()
	overall := v.overall
	v.mu.Unlock()
	if overall != nil {
		overall.SetTotal(-1, true)
	}
	v.p.Wait()
}
