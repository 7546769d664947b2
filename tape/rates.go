package tape

import "sort"

// DefaultMaxIdle is the longest stretch without requests that replay
// keeps by default (seconds): longer ones are shortened to it, and the
// busiest window is found over the time that remains.
const DefaultMaxIdle = 60

// Rates are the numbers of requests that started in each Unix second, for
// the seconds that had any, in increasing order.
type Rates struct {
	Seconds []int64
	Counts  []int64
}

func ratesFromMap(m map[int64]int64) Rates {
	r := Rates{Seconds: make([]int64, 0, len(m))}
	for s := range m {
		r.Seconds = append(r.Seconds, s)
	}
	sort.Slice(r.Seconds, func(i, j int) bool { return r.Seconds[i] < r.Seconds[j] })
	r.Counts = make([]int64, len(r.Seconds))
	for i, s := range r.Seconds {
		r.Counts[i] = m[s]
	}
	return r
}

// Total is the number of requests counted.
func (r Rates) Total() int64 {
	var n int64
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// Window is a span of whole seconds and the requests that started in it.
type Window struct {
	Start   int64 // first Unix second
	Seconds int64 // length
	Count   int64 // requests that started in [Start, Start+Seconds)
}

// Rate is the window's mean request rate per second.
func (w Window) Rate() float64 {
	if w.Seconds <= 0 {
		return 0
	}
	return float64(w.Count) / float64(w.Seconds)
}

// Busiest returns the window of the given length (whole seconds, at least
// 1) holding the most request starts; on a tie, the earliest. Windows are
// aligned to whole Unix seconds, so every reader of the same tape, indexed
// or not, picks the same one.
func (r Rates) Busiest(seconds int64) Window {
	seconds = max(seconds, 1)
	if len(r.Seconds) == 0 {
		return Window{Seconds: seconds}
	}
	// The best window can always be moved to start at a second that has
	// requests without losing any, so only those starts are tried.
	best := Window{Start: r.Seconds[0], Seconds: seconds}
	var sum int64
	j := 0
	for i, s := range r.Seconds {
		for j < len(r.Seconds) && r.Seconds[j] < s+seconds {
			sum += r.Counts[j]
			j++
		}
		if sum > best.Count {
			best.Start, best.Count = s, sum
		}
		sum -= r.Counts[i]
	}
	return best
}

// IdleGap is a run of whole seconds in which no request started, between two
// seconds that had requests.
type IdleGap struct {
	Start   int64 // its first Unix second
	Seconds int64 // its length
}

// Gaps returns the runs of at least minSeconds empty seconds between the
// first and the last request, in order.
func (r Rates) Gaps(minSeconds int64) []IdleGap {
	var out []IdleGap
	for i := 1; i < len(r.Seconds); i++ {
		if empty := r.Seconds[i] - r.Seconds[i-1] - 1; empty >= max(minSeconds, 1) {
			out = append(out, IdleGap{Start: r.Seconds[i-1] + 1, Seconds: empty})
		}
	}
	return out
}

// Compact returns r with every run of empty seconds longer than maxIdle
// shortened to maxIdle (maxIdle <= 0: r unchanged), and a function that
// maps a second of the compacted rates back to the recorded second. A
// compacted second inside a shortened run maps to the run's first seconds.
func (r Rates) Compact(maxIdle int64) (Rates, func(int64) int64) {
	if maxIdle <= 0 || len(r.Seconds) < 2 {
		return r, func(s int64) int64 { return s }
	}
	out := Rates{Seconds: make([]int64, len(r.Seconds)), Counts: r.Counts}
	// From compacted second at[i] on, shifts[i] seconds were removed.
	var at, shifts []int64
	var shift int64
	for i, s := range r.Seconds {
		if i > 0 {
			if empty := s - r.Seconds[i-1] - 1; empty > maxIdle {
				shift += empty - maxIdle
				at = append(at, s-shift)
				shifts = append(shifts, shift)
			}
		}
		out.Seconds[i] = s - shift
	}
	back := func(c int64) int64 {
		i := sort.Search(len(at), func(i int) bool { return at[i] > c })
		if i == 0 {
			return c
		}
		return c + shifts[i-1]
	}
	return out, back
}

// Span is the number of seconds from the first to the last second with
// requests, both included.
func (r Rates) Span() int64 {
	if len(r.Seconds) == 0 {
		return 0
	}
	return r.Seconds[len(r.Seconds)-1] - r.Seconds[0] + 1
}

// BusiestActive is Busiest over active time: runs of empty seconds longer
// than maxIdle count as maxIdle, so a window of activity is found whatever
// gaps the recording has. Start is the recorded second it starts at;
// Seconds is its length in active time, the time its rate is over.
func (r Rates) BusiestActive(seconds, maxIdle int64) Window {
	c, back := r.Compact(maxIdle)
	w := c.Busiest(seconds)
	w.Start = back(w.Start)
	return w
}
