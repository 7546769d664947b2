package report

import (
	"sort"

	"github.com/herd-replay/herd/internal/results"
)

// stepsByScale is one step per scale, in rising order: the last one run at
// that scale (a step run again replaces the one herd could not drive). The
// recovery check is not a step of the ramp's curve: it is in the steps
// table, the timeline and its own verdict.
func stepsByScale(f *results.File) []*results.Step {
	idx := map[float64]int{}
	var out []*results.Step
	for i := range f.Steps {
		st := &f.Steps[i]
		if st.Recovery {
			continue
		}
		if j, ok := idx[st.Scale]; ok {
			out[j] = st
			continue
		}
		idx[st.Scale] = len(out)
		out = append(out, st)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Scale < out[j].Scale })
	return out
}

// findRoute is the route of st with that method and template, or nil.
func findRoute(st *results.Step, method, route string) *results.Route {
	for i := range st.Routes {
		if st.Routes[i].Method == method && st.Routes[i].Route == route {
			return &st.Routes[i]
		}
	}
	return nil
}

// degraded is a route and the step at which it first broke an SLO that
// bears on it (results.RouteViolations).
type degraded struct {
	Method, Route string
	// Step is nil for a route that never broke one.
	Step *results.Step
	Why  []string
	// Sent counts the route's requests over all the steps.
	Sent int64
}

// degradation lists the routes of steps (one per scale, rising, as
// stepsByScale gives them) in the order they first broke an SLO; routes
// that never did come last, the busiest first. A step where herd itself
// was the limit says nothing of the target and does not count.
func degradation(steps []*results.Step, slos []results.SLO) []degraded {
	type key struct{ method, route string }
	index := map[key]int{}
	var out []degraded
	for _, st := range steps {
		for i := range st.Routes {
			r := &st.Routes[i]
			k := key{r.Method, r.Route}
			j, ok := index[k]
			if !ok {
				j = len(out)
				index[k] = j
				out = append(out, degraded{Method: r.Method, Route: r.Route})
			}
			d := &out[j]
			d.Sent += r.Sent
			if d.Step != nil || st.Generator.Limited {
				continue
			}
			if v := results.RouteViolations(r, slos); len(v) > 0 {
				d.Step, d.Why = st, v
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Step != nil && b.Step != nil && a.Step.Scale != b.Step.Scale:
			return a.Step.Scale < b.Step.Scale
		case (a.Step == nil) != (b.Step == nil):
			return a.Step != nil
		}
		return a.Sent > b.Sent
	})
	return out
}
