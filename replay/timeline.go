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
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	b := newTimelineBuilder(from, maxIdle)
	for _, s := range starts {
		b.add(s)
	}
	return b.finish(to)
}

// timelineBuilder builds a timeline from the request starts of a window
// given in increasing order, one at a time: a plan streamed from a tape
// never holds them all.
type timelineBuilder struct {
	tl      *timeline
	prev    int64
	any     bool
	removed time.Duration
}

func newTimelineBuilder(from int64, maxIdle time.Duration) *timelineBuilder {
	return &timelineBuilder{tl: &timeline{from: from, maxIdle: maxIdle}, prev: from}
}

// stretch notes the stretch [a, b) with no request start.
func (b *timelineBuilder) stretch(a, c int64) {
	tl := b.tl
	d := time.Duration(c - a)
	at := time.Duration(a-tl.from) - b.removed
	switch {
	case tl.maxIdle > 0 && d > tl.maxIdle:
		b.removed += d - tl.maxIdle
		tl.breaks = append(tl.breaks, c)
		tl.removed = append(tl.removed, b.removed)
		tl.idles = append(tl.idles, Idle{At: at, Recorded: d, Kept: tl.maxIdle})
	case d >= noteIdle:
		tl.idles = append(tl.idles, Idle{At: at, Recorded: d, Kept: d})
	}
}

// add notes the next request start, no earlier than the one before.
func (b *timelineBuilder) add(s int64) {
	b.stretch(b.prev, s)
	b.prev, b.any = s, true
}

// offset is where the recorded time t falls in the replayed window, as
// far as the starts given so far tell: exact for t up to the last start.
func (b *timelineBuilder) offset(t int64) time.Duration { return b.tl.offset(t) }

// finish ends the window at to.
func (b *timelineBuilder) finish(to int64) *timeline {
	if b.any {
		b.stretch(b.prev, to)
	}
	return b.tl
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
