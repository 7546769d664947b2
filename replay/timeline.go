package replay

import (
	"sort"
	"time"
)

// DefaultMaxIdle is how long a stretch with no request due may last in a
// replay before it is shortened: a recording that spans nights replays its
// activity, not its nights.
const DefaultMaxIdle = 60 * time.Second

// Idle is a stretch of a window with no request due that was longer than
// the idle bound.
type Idle struct {
	At       time.Duration // where it starts, as an offset in the replayed window
	Recorded time.Duration // its recorded length
	Kept     time.Duration // its length in the replay: the idle bound
}

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
	if maxIdle <= 0 || len(starts) == 0 {
		return tl
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	var removed time.Duration
	stretch := func(a, b int64) {
		if d := time.Duration(b - a); d > maxIdle {
			at := time.Duration(a-from) - removed
			removed += d - maxIdle
			tl.breaks = append(tl.breaks, b)
			tl.removed = append(tl.removed, removed)
			tl.idles = append(tl.idles, Idle{At: at, Recorded: d, Kept: maxIdle})
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
