package tape

import "sort"

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
