package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/herd-replay/herd/replay"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressView shows a running replay on stderr: one mpb bar per step on a
// terminal, or a status line every few seconds in a log.
type progressView struct {
	io    IO
	every time.Duration

	mu       sync.Mutex
	p        *mpb.Progress
	bar      *mpb.Bar
	label    string
	last     replay.Progress
	lastLine time.Time
}

func newProgressView(io IO, every time.Duration) *progressView {
	v := &progressView{io: io, every: every}
	if io.ErrTTY {
		v.p = mpb.New(mpb.WithOutput(io.Err), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond))
	}
	return v
}

func (v *progressView) describe(p replay.Progress) string {
	return fmt.Sprintf("%v/%v  offered %.1f/s  achieved %.1f/s  in flight %d  p99 %v  errors %d",
		p.Elapsed.Round(time.Second), p.Duration.Round(time.Second), p.OfferedRPS, p.AchievedRPS,
		p.InFlight, p.P99.Round(100*time.Microsecond), p.Errors)
}

// Step starts showing a new step.
func (v *progressView) Step(label string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.label, v.last, v.lastLine = label, replay.Progress{}, time.Now()
	if v.p == nil {
		fmt.Fprintf(v.io.Err, "herd: %s: starting\n", label)
		return
	}
	v.bar = v.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d sent", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.describe(v.last)
		})),
	)
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

// Close waits for the bars to be drawn for the last time.
func (v *progressView) Close() {
	if v.p != nil {
		v.p.Wait()
	}
}
