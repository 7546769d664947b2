package capture

import (
	"fmt"
	"time"
)

// MinSamplePct is as far as a CPU budget lowers the sampling rate.
const MinSamplePct = 1.0

// SampleSink is a Sink that records changes of the sampling rate, so that
// every tape states the rate its connections were chosen at (a Rotator
// starts a new file). A capture with a CPU budget needs one.
type SampleSink interface {
	Sink
	SetSamplePct(pct float64, why string) error
}

// budget keeps a capture under Options.MaxCPU cores by sampling fewer new
// connections: never by dropping packets of a connection being recorded.
// Its decisions are a pure function of the CPU time it is shown.
type budget struct {
	max     float64 // cores
	ceiling float64 // the configured rate: never raised above it
	pct     float64 // rate in force

	every      time.Duration // measuring period
	calmNeeded int           // periods under a third of the budget before raising

	at   time.Time
	cpu  time.Duration
	calm int
}

func newBudget(max, pct float64) *budget {
	if pct <= 0 || pct > 100 {
		pct = 100
	}
	return &budget{max: max, ceiling: pct, pct: pct, every: 2 * time.Second, calmNeeded: 15}
}

// observe takes the process's CPU time at wall time now and returns the
// new sampling rate and why, or 0 when it stays.
func (b *budget) observe(now time.Time, cpu time.Duration) (float64, string) {
	if b.at.IsZero() {
		b.at, b.cpu = now, cpu
		return 0, ""
	}
	wall := now.Sub(b.at)
	if wall < b.every {
		return 0, ""
	}
	cores := float64(cpu-b.cpu) / float64(wall)
	b.at, b.cpu = now, cpu
	switch {
	case cores > b.max && b.pct > MinSamplePct:
		b.calm = 0
		b.pct = max(MinSamplePct, b.pct/2)
		return b.pct, fmt.Sprintf("the capture used %.2f cores, above --max-cpu %g", cores, b.max)
	case cores < b.max/3 && b.pct < b.ceiling:
		b.calm++
		if b.calm < b.calmNeeded {
			return 0, ""
		}
		b.calm = 0
		b.pct = min(b.ceiling, b.pct*2)
		return b.pct, fmt.Sprintf("the capture used %.2f cores for %v, under a third of --max-cpu %g", cores, time.Duration(b.calmNeeded)*b.every, b.max)
	default:
		b.calm = 0
	}
	return 0, ""
}
