package results

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Analyze fills in the breaking point, the capacity, the generator summary
// and the verdict from the steps, which must already be evaluated. Main
// steps (not refinements) are in the order they ran, rising in scale.
func Analyze(f *File) {
	f.BreakingPoint = nil
	f.Capacity = Capacity{}
	var lastGood, firstBad *Step
	for i := range f.Steps {
		if f.Kind == KindShadow {
			break // intervals at one multiple: no search for a breaking point
		}
		st := &f.Steps[i]
		if st.Refinement || st.Generator.Limited || st.Interrupted || st.Recovery {
			// An interrupted step is neither passed nor failed: it claims
			// nothing about the target.
			continue
		}
		if !st.Passed {
			firstBad = st
			break
		}
		lastGood = st
	}
	// Capacity: the plateau of successful responses per second. A step
	// offered more than the target can serve completes about its capacity,
	// so the highest achieved rate of any step is the estimate. (The best
	// few seconds of a step would read high: how much work a second's
	// requests carry varies with their mix.)
	for i := range f.Steps {
		if !f.Steps[i].Interrupted && !f.Steps[i].Recovery {
			f.Capacity.RPS = max(f.Capacity.RPS, f.Steps[i].AchievedRPS)
		}
	}
	for i := range f.Steps {
		st := &f.Steps[i]
		if !st.Generator.Limited && !st.Interrupted && st.OfferedRPS > 1.05*f.Capacity.RPS && st.Sent > 0 {
			f.Capacity.Reached = true
		}
	}
	if f.Window.RPS > 0 {
		f.Capacity.Scale = Round3(f.Capacity.RPS / f.Window.RPS)
	}
	f.Capacity.Evidence = capacityEvidence(f)
	if firstBad != nil && !f.Aborted {
		bp := &BreakingPoint{
			Scale:         firstBad.Scale,
			CapacityScale: f.Capacity.Scale,
			CapacityRPS:   f.Capacity.RPS,
			Reason:        strings.Join(firstBad.Violations, "; "),
			Route:         firstBad.FailedRoute,
		}
		if lastGood != nil {
			bp.LastGoodScale = lastGood.Scale
		}
		if bp.Route == "" || !perRouteViolation(firstBad) {
			// Blame a route against the last passing step, on the first
			// whole-step SLO that failed.
			if s, ok := firstWholeViolation(f, firstBad); ok {
				b := BlameRoute(firstBad, lastGood, s)
				bp.Route, bp.Blame = b.Route, b.Reason
			}
		}
		if lo, hi, ok := refinedBracket(f.Steps, bp.LastGoodScale, bp.Scale); ok {
			mid := Round3((lo + hi) / 2)
			bp.RefinedScale = &mid
		}
		f.BreakingPoint = bp
	}
	f.Generator = Generator{Notes: []string{}}
	for i := range f.Steps {
		st := &f.Steps[i]
		if st.Generator.Limited {
			f.Generator.Limited = true
		}
		for _, n := range st.Generator.Notes {
			f.Generator.Notes = append(f.Generator.Notes, fmt.Sprintf("%gx: %s", st.Scale, n))
		}
	}
	judgeRecovery(f)
	if f.Kind == KindShadow {
		f.Verdict = shadowVerdict(f)
		return
	}
	f.Verdict = verdict(f, lastGood, firstBad) + recoveryVerdict(f.Recovery)
}

// judgeRecovery fills in the recovery verdict from the recovery step: did
// every whole-step SLO come to hold over the window, and stay so.
func judgeRecovery(f *File) {
	r := f.Recovery
	if r == nil {
		return
	}
	var st *Step
	for i := range f.Steps {
		if f.Steps[i].Recovery {
			st = &f.Steps[i]
		}
	}
	r.Recovered, r.TimeToRecoverS, r.Amplification = false, nil, 1
	if st == nil || r.Note != "" {
		return
	}
	if st.Amplification > 0 {
		r.Amplification = st.Amplification
	}
	slos, err := ParseSLOs(f.Params.SLOs)
	if err != nil {
		return
	}
	took, ok, err := Recovered(st, slos, time.Duration(r.WindowS*float64(time.Second)))
	if err != nil || !ok {
		return
	}
	s := Round3(took.Seconds())
	r.Recovered, r.TimeToRecoverS = true, &s
}

// recoveryVerdict says plainly whether the target came back at normal load
// after it broke.
func recoveryVerdict(r *Recovery) string {
	if r == nil {
		return ""
	}
	at := fmt.Sprintf("%gx", Round3(r.Scale))
	amp := ""
	if r.Amplification > 1 {
		amp = fmt.Sprintf(", client retries amplified the load %.2fx", r.Amplification)
	}
	switch {
	case r.Note != "" && !r.Recovered:
		return fmt.Sprintf(" After the %s, at %s: recovery not judged (%s).", r.After, at, r.Note)
	case r.Recovered:
		return fmt.Sprintf(" After the %s, at %s it recovered in %gs%s.", r.After, at, *r.TimeToRecoverS, amp)
	}
	return fmt.Sprintf(" After the %s, at %s it did NOT recover in %gs%s: a metastable failure (the load it handled before no longer lets it recover).",
		r.After, at, r.DurationS, amp)
}

// capacityEvidence describes the steps behind the capacity figure: those
// offered more than the target delivered whose achieved rate is within 5%
// of the highest (the plateau), or why the figure is only a lower bound.
func capacityEvidence(f *File) string {
	if len(f.Steps) == 0 || f.Capacity.RPS <= 0 {
		return ""
	}
	if !f.Capacity.Reached {
		return "no step offered more than the target delivered: a lower bound (ramp --find-capacity runs two steps past the break to measure the plateau)"
	}
	var parts []string
	for i := range f.Steps {
		st := &f.Steps[i]
		if st.Interrupted || st.Generator.Limited || st.Sent == 0 {
			continue
		}
		if st.OfferedRPS > 1.05*st.AchievedRPS && st.AchievedRPS >= 0.95*f.Capacity.RPS {
			parts = append(parts, fmt.Sprintf("%s: %.1f of %.1f req/s", st.Label(), st.AchievedRPS, st.OfferedRPS))
		}
	}
	what := "a plateau: achieved stayed within 5% while offered rose"
	if len(parts) < 2 {
		what = "one step past saturation"
	}
	return what + " (" + strings.Join(parts, "; ") + ")"
}

// perRouteViolation reports whether a per-route SLO of the step failed:
// then the route it names is the one that broke.
func perRouteViolation(st *Step) bool {
	for _, v := range st.Violations {
		if strings.Contains(v, " on ") {
			return true
		}
	}
	return false
}

// firstWholeViolation is the first of the run's whole-step SLOs that the
// step violated.
func firstWholeViolation(f *File, st *Step) (SLO, bool) {
	slos, err := ParseSLOs(f.Params.SLOs)
	if err != nil {
		return SLO{}, false
	}
	for _, s := range slos {
		if s.Route != "" {
			continue
		}
		if v := s.check(st.LatencyMS, st.Sent, st.Completed, st.Errors, st.Mismatches); v != "" {
			return s, true
		}
	}
	return SLO{}, false
}

// refinedBracket narrows [lo, hi] with the refinement steps: the highest
// passing scale below hi and the lowest failing one above lo.
func refinedBracket(steps []Step, lo, hi float64) (float64, float64, bool) {
	any := false
	for _, st := range steps {
		if !st.Refinement || st.Generator.Limited {
			continue
		}
		any = true
		if st.Passed && st.Scale > lo && st.Scale < hi {
			lo = st.Scale
		}
		if !st.Passed && st.Scale < hi && st.Scale > lo {
			hi = st.Scale
		}
	}
	return lo, hi, any
}

func verdict(f *File, lastGood, firstBad *Step) string {
	x := func(k float64) string { return fmt.Sprintf("%gx", Round3(k)) }
	capacity := fmt.Sprintf("capacity %.1f req/s (%s the window's rate of %.1f req/s)", f.Capacity.RPS, x(f.Capacity.Scale), f.Window.RPS)
	if !f.Capacity.Reached {
		capacity = fmt.Sprintf("capacity at least %.1f req/s (%s; not reached)", f.Capacity.RPS, x(f.Capacity.Scale))
	}
	var limited *Step
	for i := range f.Steps {
		if f.Steps[i].Generator.Limited && !f.Steps[i].Refinement {
			limited = &f.Steps[i]
			break
		}
	}
	switch {
	case f.Kind == "replay" && len(f.Steps) == 1:
		st := &f.Steps[0]
		s := fmt.Sprintf("Replayed %d requests at %s: %.1f of %.1f req/s offered, p99 %s, %s errors",
			st.Sent, x(st.Scale), st.AchievedRPS, st.OfferedRPS, st.LatencyMS.Text("p99"), FmtPct(st.ErrorRate))
		switch {
		case f.Aborted:
			s += "; emergency stop: " + f.AbortReason
		case f.Interrupted:
			s += "; interrupted"
		case !st.Passed:
			s += "; SLOs failed: " + strings.Join(st.Violations, "; ")
		}
		if st.Generator.Limited {
			s += "; herd was the limit (" + strings.Join(st.Generator.Notes, "; ") + ")"
		}
		return s + "."
	case f.Aborted:
		return fmt.Sprintf("Emergency stop during the step at %s: %s. No breaking point was searched further; %s.",
			x(lastStepScale(f)), f.AbortReason, capacity)
	case f.BreakingPoint != nil:
		bp := f.BreakingPoint
		s := fmt.Sprintf("The target breaks at %s the window's rate", x(bp.Scale))
		if bp.Route != "" {
			s += " on " + bp.Route
		}
		s += " because " + bp.Reason
		if bp.Route == "" && strings.HasPrefix(bp.Blame, "all routes") {
			s += " (all routes degraded together)"
		}
		if bp.LastGoodScale > 0 {
			s += fmt.Sprintf("; it held %s", x(bp.LastGoodScale))
		} else {
			s += "; no step passed"
		}
		if bp.RefinedScale != nil {
			s += fmt.Sprintf(", refined estimate %s", x(*bp.RefinedScale))
		}
		return s + "; " + capacity + "."
	case limited != nil:
		held := "no step passed before that"
		if lastGood != nil {
			held = "the target held " + x(lastGood.Scale)
		}
		return fmt.Sprintf("herd itself was the limit at %s (%s): %s, so its breaking point is above what herd generated here; %s.",
			x(limited.Scale), strings.Join(limited.Generator.Notes, "; "), held, capacity)
	case f.Interrupted:
		return fmt.Sprintf("Interrupted at %s before any step failed; %s.", x(lastStepScale(f)), capacity)
	case lastGood != nil:
		return fmt.Sprintf("No step failed up to %s; %s.", x(lastGood.Scale), capacity)
	}
	return "No step completed."
}

func lastStepScale(f *File) float64 {
	if len(f.Steps) == 0 {
		return 0
	}
	return f.Steps[len(f.Steps)-1].Scale
}

// SortedRoutes returns routes by descending request count, then by method
// and route: a total order for routes that differ in method or route, so
// the order they came in leaves no trace.
func SortedRoutes(rs []Route) []Route {
	out := append([]Route(nil), rs...)
	slices.SortStableFunc(out, func(a, b Route) int {
		return cmp.Or(cmp.Compare(b.Sent, a.Sent), cmp.Compare(a.Method, b.Method), cmp.Compare(a.Route, b.Route))
	})
	return out
}
