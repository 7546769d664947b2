package results

import (
	"fmt"
	"math"
	"sort"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Blame names the route that broke a failing step, when the evidence
// singles one out, and says why; otherwise it says that the routes
// degraded together.
//
// For the SLO that failed, each route's share of bad requests is
// measured: requests slower than the SLO's bound for a latency objective,
// failed requests for the error objective. A route is blamed when its
// share grew from the last passing step (none: zero) by clearly more than
// the share of every other route taken together grew: its growth's lower
// confidence bound (Wilson, 95%) is at least twice the others' upper
// bound, and at least minBlameShare. Routes with fewer than MinRouteSample
// requests in the failing step are not judged. A shared limit (a pool
// every route waits for) degrades every route alike, so no route is named
// then: the result is stable from run to run instead of naming whichever
// route happened to do worst.
type Blame struct {
	Route  string // empty when no route stands out
	Reason string
}

// minBlameShare is the smallest growth in a route's share of bad requests
// that can single it out.
const minBlameShare = 0.05

// blameZ is the normal quantile of the two-sided 95% confidence bounds.
const blameZ = 1.96

// BlameRoute judges the failing step fail against the last passing one
// (nil when none passed) for the SLO s.
func BlameRoute(fail, pass *Step, s SLO) Blame {
	badIn := func(st *Step) (map[string][2]int64, error) {
		out := map[string][2]int64{}
		if st == nil {
			return out, nil
		}
		for i := range st.Routes {
			r := &st.Routes[i]
			bad, n, err := badShare(r, s)
			if err != nil {
				return nil, err
			}
			out[r.Method+" "+r.Route] = [2]int64{bad, n}
		}
		return out, nil
	}
	f, err1 := badIn(fail)
	p, err2 := badIn(pass)
	if err1 != nil || err2 != nil {
		return Blame{Reason: "routes not compared: a route histogram could not be read"}
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type cand struct {
		key        string
		lo, fr, fo float64
	}
	var best *cand
	judged := 0
	for _, k := range keys {
		if f[k][1] < MinRouteSample {
			continue
		}
		judged++
		// The others: every other route of each step, pooled.
		var ofb, ofn, opb, opn int64
		for k2, v := range f {
			if k2 != k {
				ofb, ofn = ofb+v[0], ofn+v[1]
			}
		}
		for k2, v := range p {
			if k2 != k {
				opb, opn = opb+v[0], opn+v[1]
			}
		}
		lo := wilsonLow(f[k][0], f[k][1]) - baseHigh(p[k][0], p[k][1])
		hiOthers := wilsonHigh(ofb, ofn) - wilsonLow(opb, opn)
		if ofn == 0 {
			hiOthers = 0
		}
		if lo >= minBlameShare && lo >= 2*hiOthers && (best == nil || lo > best.lo) {
			best = &cand{key: k, lo: lo, fr: Fraction(f[k][0], f[k][1]), fo: Fraction(ofb, ofn)}
		}
	}
	what := "failed"
	if latencySLO(s.Metric) {
		what = "over " + fmtMS(s.Bound)
	}
	switch {
	case judged == 0:
		return Blame{Reason: fmt.Sprintf("no route had the %d requests needed to judge it", MinRouteSample)}
	case len(f) < 2:
		return Blame{Reason: "the window has one route: none stands out from others"}
	case best == nil:
		return Blame{Reason: "all routes degraded together: no route's share of requests " + what + " grew clearly more than the rest's"}
	}
	route := best.key[strings.IndexByte(best.key, ' ')+1:]
	return Blame{Route: route, Reason: fmt.Sprintf("%s: %s of its requests %s, against %s of the other routes'",
		strings.TrimSpace(best.key), FmtPct(best.fr), what, FmtPct(best.fo))}
}

// badShare counts a route's bad requests for s and the requests judged:
// for a latency SLO, those with a latency above the bound among those
// with a latency; for errors, failed among sent; for mismatches,
// mismatched among completed.
func badShare(r *Route, s SLO) (bad, n int64, err error) {
	switch s.Metric {
	case "errors":
		return r.Errors, r.Sent, nil
	case "mismatches":
		return r.Mismatches, r.Completed, nil
	}
	h, err := Decode(r.Histogram)
	if err != nil {
		return 0, 0, err
	}
	return countAbove(h, int64(s.Bound*1000)), h.TotalCount(), nil
}

// countAbove counts the values of h above v (microseconds), to the
// histogram's precision.
func countAbove(h *hdr.Histogram, v int64) int64 {
	var n int64
	for _, b := range h.Distribution() {
		if b.From > v {
			n += b.Count
		}
	}
	return n
}

// baseHigh is the upper bound of a baseline share: zero where there is no
// baseline (no passing step, or the route was not in it).
func baseHigh(k, n int64) float64 {
	if n == 0 {
		return 0
	}
	return wilsonHigh(k, n)
}

// wilsonLow and wilsonHigh bound the proportion k/n at 95% confidence;
// with n 0 they are 0 and 1.
func wilsonLow(k, n int64) float64 {
	lo, _ := wilson(k, n)
	return lo
}

func wilsonHigh(k, n int64) float64 {
	_, hi := wilson(k, n)
	return hi
}

func wilson(k, n int64) (float64, float64) {
	if n <= 0 {
		return 0, 1
	}
	p, nn, z2 := float64(k)/float64(n), float64(n), blameZ*blameZ
	mid := (p + z2/(2*nn)) / (1 + z2/nn)
	half := blameZ * math.Sqrt(p*(1-p)/nn+z2/(4*nn*nn)) / (1 + z2/nn)
	return max(mid-half, 0), min(mid+half, 1)
}
