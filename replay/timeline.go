package replay

import (
	"sort"
	"time"
)

// DefaultMaxIdle is how long a stretch with no request due may last in a
// replay before it is shortened: a recording that spans nights replays its
// activity, not its nights.
const DefaultMaxIdle = 60 * time.Second

// Idle is a long stretch of a window with no request due: longer than the
// idle bound (then shortened to it), or than noteIdle.
type Idle struct {
	At       time.Duration // where it starts, as an offset in the replayed window
	Recorded time.Duration // its recorded length
	Kept     time.Duration // its length in the replay
}

// noteIdle is the shortest stretch without requests that a plan lists
// even when it is kept whole, so that progress can say the run is idle
// rather than that nothing is offered.
const noteIdle = 10 * time.Second

// timeline maps recorded times inside a window to offsets in the replayed
// window, shortening every stretch with no request start longer than
// maxIdle to maxIdle. It is a pure function of the sorted request starts,
// so the plan, the progress line and the results agree on it.
type timeline struct {
	from    int64 // window start, Unix ns
	maxIdle time.Duration
	// breaks are the recorded times (Unix ns) at which a shortened stretch
	// ends, with the time removed up to there, in increasing order.
	breaks  []int64
	removed []time.Duration
	idles   []Idle
}

// newTimeline builds the mapping of the window [from, to) whose request
// starts are given (in any order; starts is sorted in place). maxIdle 0
// keeps wall-clock fidelity.
func newTimeline(from, to int64, starts []int64, maxIdle time.Duration) *timeline {
	tl := &timeline{from: from, maxIdle: maxIdle}
	if len(starts) == 0 {
		return tl
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	var removed time.Duration
	stretch := func(a, b int64) {
		d := time.Duration(b - a)
		at := time.Duration(a-from) - removed
		switch {
		case maxIdle > 0 && d > maxIdle:
			removed += d - maxIdle
			tl.breaks = append(tl.breaks, b)
			tl.removed = append(tl.removed, removed)
			tl.idles = append(tl.idles, Idle{At: at, Recorded: d, Kept: maxIdle})
		case d >= noteIdle:
			tl.idles = append(tl.idles, Idle{At: at, Recorded: d, Kept: d})
		}
	}
	prev := from
	for _, s := range starts {
		stretch(prev, s)
		prev = s
	}
	stretch(prev, to)
	return tl
}

// offset is where the recorded time t (inside the window) falls in the
// replayed window.
func (tl *timeline) offset(t int64) time.Duration {
	i := sort.Search(len(tl.breaks), func(i int) bool { return tl.breaks[i] > t })
	d := time.Duration(t - tl.from)
	if i > 0 {
		d -= tl.removed[i-1]
	}
	return d
}

// removedTotal is the recorded time the replayed window leaves out.
func (tl *timeline) removedTotal() time.Duration {
	if len(tl.removed) == 0 {
		return 0
	}
	return tl.removed[len(tl.removed)-1]
}

// IdleAt reports whether elapsed, a time into a run of schedule s, falls
// in a long stretch of the plan with no request due: when that stretch
// ends (in run time) and how long it was recorded. Progress shows it so
// that a quiet run says why it is quiet.
func (s Schedule) IdleAt(p *Plan, elapsed time.Duration) (until, recorded time.Duration, ok bool) {
	pass := s.pass()
	if pass <= 0 || len(p.Idles) == 0 {
		return 0, 0, false
	}
	loop := elapsed / pass
	in := elapsed - loop*pass
	for _, id := range p.Idles {
		start, end := id.At, id.At+id.Kept
		if s.Mode == Compress {
			start, end = time.Duration(float64(start)/s.Scale), time.Duration(float64(end)/s.Scale)
		}
		if in >= start && in < end {
			return loop*pass + end, id.Recorded, true
		}
	}
	return 0, 0, false
}
