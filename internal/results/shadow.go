package results

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// KindShadow is the kind of the results of herd shadow: one step per
// interval of a live replay, all at one multiple. Its steps are not a
// search for a breaking point: each says how the target did in its
// interval.
const KindShadow = "shadow"

// shadowVerdict sums up a live replay: what was sent over how many
// intervals, the latency and errors, how many intervals met the SLOs
// and when the first did not, and what was not sent.
func shadowVerdict(f *File) string {
	if len(f.Steps) == 0 {
		return "Shadowed nothing: the run ended before its first interval."
	}
	var sent, errs int64
	notSent := Counts{}
	met, judged := 0, 0
	var firstBad *Step
	worst := 0.0
	for i := range f.Steps {
		st := &f.Steps[i]
		sent += st.Sent
		errs += st.Errors
		for k, n := range st.NotSent {
			notSent[k] += n
		}
		if !st.LatencyMS.None {
			worst = max(worst, st.LatencyMS.P99)
		}
		if st.Interrupted || st.Aborted {
			continue
		}
		judged++
		if st.Passed {
			met++
		} else if firstBad == nil {
			firstBad = st
		}
	}
	s := fmt.Sprintf("Shadowed %d requests in %d intervals of %gs at %gx: %s errors, p99 at worst %s in an interval; %d of %d intervals met the SLOs",
		sent, len(f.Steps), f.Params.StepS, f.Steps[0].Scale, FmtPct(Fraction(errs, sent)), fmtMS(worst), met, judged)
	if firstBad != nil {
		s += fmt.Sprintf(" (the first that did not, at %s: %s)", firstBad.StartedAt.Format("15:04:05"), strings.Join(firstBad.Violations, "; "))
	}
	if len(notSent) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(notSent)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, notSent[k]))
		}
		s += "; not sent: " + strings.Join(parts, ", ")
	}
	switch {
	case f.Aborted:
		s += "; emergency stop: " + f.AbortReason
	case f.Interrupted:
		s += "; interrupted"
	}
	return s + "."
}
