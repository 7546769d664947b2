package replay

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herd-replay/herd/internal/results"
)

// measuredEvery is how often Progress.Measured is recomputed: reading
// percentiles off every route's histogram is cheap once a second, not
// at every progress tick.
const measuredEvery = time.Second

// liveMeasure caches the last Progress.Measured.
type liveMeasure struct {
	at   int64 // run time it was computed at
	step *results.Step
}

// measuredSoFar is the step so far as its results will count it: the requests
// due in the measured period whose outcome is known, their latency and
// their routes. It is nil before the settle time has passed. Each value
// handed out is new and never changed afterwards, so the progress
// callback may keep it. fresh skips the cache, for the last snapshot.
func (a *aggregator) measuredSoFar(now int64, fresh bool) *results.Step {
	if now < a.settle {
		return nil
	}
	if c := &a.live; !fresh && c.step != nil && now-c.at < int64(measuredEvery) {
		return c.step
	}
	elapsed := float64(min(now, a.end)-a.settle) / 1e9
	st := &results.Step{
		Scale:        a.r.s.Scale,
		DurationS:    elapsed,
		SettleS:      float64(a.settle) / 1e9,
		Sent:         a.sent,
		Completed:    a.completed,
		Errors:       a.errs,
		ErrorRate:    results.Fraction(a.errs, a.sent),
		Mismatches:   a.mismatches,
		MismatchRate: results.Fraction(a.mismatches, a.completed),
		Good:         a.good,
		AchievedRPS:  results.Rate(a.good, elapsed),
		LatencyMS:    results.Summary(a.latency),
	}
	for i, k := range a.r.p.Routes {
		r := &a.routes[i]
		if r.sent == 0 {
			continue
		}
		rr := results.Route{Method: k.Method, Route: k.Route, Sent: r.sent, Completed: r.completed,
			Errors: r.errors, Mismatches: r.mismatches, ErrorRate: results.Fraction(r.errors, r.sent)}
		// Routes too small to be judged are not read: Evaluate skips them.
		switch {
		case r.sent < results.MinRouteSample:
		case r.hist == nil:
			rr.LatencyMS = results.Percentiles{None: true} // no response came back
		default:
			rr.LatencyMS = routePercentiles(r.hist)
		}
		st.Routes = append(st.Routes, rr)
	}
	a.live = liveMeasure{at: now, step: st}
	return st
}

// routeQuantiles are the percentiles an SLO can bound, and the maximum.
var routeQuantiles = []float64{50, 90, 95, 99, 99.9, 100}

// routePercentiles are results.Summary's figures of h in one pass over
// it, but the mean, which no SLO bounds: the live verdict reads every
// route's histogram each second, and Summary's separate passes (one per
// figure) cost eight times as much.
func routePercentiles(h *hdr.Histogram) results.Percentiles {
	if h.TotalCount() == 0 {
		return results.Percentiles{None: true}
	}
	v := h.ValueAtPercentilesSlice(routeQuantiles)
	ms := func(us int64) float64 { return results.Round3(float64(us) / 1000) }
	return results.Percentiles{P50: ms(v[0]), P90: ms(v[1]), P95: ms(v[2]), P99: ms(v[3]), P999: ms(v[4]), Max: ms(v[5])}
}
