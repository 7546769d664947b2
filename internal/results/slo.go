package results

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/textfmt"
)

// SLO is one service-level objective a step must meet, such as "p99<500ms",
// "errors<1%" or, for one route, "p99(/login)<300ms".
type SLO struct {
	Text   string
	Metric string  // p50 p90 p95 p99 p999 max errors mismatches
	Method string  // optional, for a route given as "POST /login"
	Route  string  // empty: the whole step
	Bound  float64 // milliseconds, or a fraction for errors and mismatches
}

// DefaultSLOs are what herd replay and herd ramp hold a run to when no
// --slo is given; the results file records them as applied.
var DefaultSLOs = []string{"p99<1s", "errors<1%"}

// latencySLO reports whether an SLO can bound metric as a latency: a
// percentile or the maximum, not the mean, which hides the tail an
// objective is about.
func latencySLO(metric string) bool {
	_, ok := Percentiles{}.Metric(metric)
	return ok && metric != "mean"
}

// ParseSLO parses METRIC[(ROUTE)]<BOUND.
func ParseSLO(text string) (SLO, error) {
	s := SLO{Text: strings.TrimSpace(text)}
	bad := func(why string) (SLO, error) {
		return SLO{}, fmt.Errorf("SLO %q: %s (examples: p99<500ms, errors<1%%, p99(/login)<300ms)", text, why)
	}
	lhs, rhs, ok := strings.Cut(s.Text, "<")
	if !ok {
		return bad("no '<'")
	}
	rhs = strings.TrimPrefix(strings.TrimSpace(rhs), "=")
	lhs = strings.TrimSpace(lhs)
	if open := strings.IndexByte(lhs, '('); open >= 0 {
		if !strings.HasSuffix(lhs, ")") {
			return bad("unclosed '('")
		}
		r := strings.TrimSpace(lhs[open+1 : len(lhs)-1])
		if m, p, ok := strings.Cut(r, " "); ok {
			s.Method, r = strings.ToUpper(m), strings.TrimSpace(p)
		}
		if !strings.HasPrefix(r, "/") && r != "*" {
			return bad("a route starts with '/'")
		}
		s.Route = r
		lhs = strings.TrimSpace(lhs[:open])
	}
	s.Metric = strings.ToLower(lhs)
	switch {
	case latencySLO(s.Metric):
		d, err := time.ParseDuration(strings.TrimSpace(rhs))
		if err != nil || d <= 0 {
			return bad("the bound must be a positive duration such as 500ms")
		}
		s.Bound = float64(d) / float64(time.Millisecond)
	case s.Metric == "errors" || s.Metric == "mismatches":
		p := strings.TrimSuffix(strings.TrimSpace(rhs), "%")
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || v > 100 || math.IsNaN(v) {
			return bad("the bound must be a percentage such as 1%")
		}
		s.Bound = v / 100
	default:
		return bad("unknown metric " + strconv.Quote(lhs))
	}
	return s, nil
}

// ParseSLOs parses a list; an empty list is no SLO.
func ParseSLOs(texts []string) ([]SLO, error) {
	out := make([]SLO, 0, len(texts))
	for _, t := range texts {
		s, err := ParseSLO(t)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// MinRouteSample is the fewest requests a route needs before its own
// percentiles are held against an SLO or blamed for a failure.
const MinRouteSample = 20

// check returns a violation message, or "" when the SLO holds for the
// counts and latencies given.
func (s SLO) check(lat Percentiles, sent, completed, errors, mismatches int64) string {
	where := ""
	if s.Route != "" {
		where = " on " + strings.TrimSpace(s.Method+" "+s.Route)
	}
	if v, ok := lat.Metric(s.Metric); ok {
		if completed+errors == 0 || lat.None {
			return "" // no latency to judge; the error SLOs judge what failed
		}
		if v > s.Bound {
			return fmt.Sprintf("%s %s > %s%s", s.Metric, fmtMS(v), fmtMS(s.Bound), where)
		}
		return ""
	}
	n, d := errors, sent
	if s.Metric == "mismatches" {
		n, d = mismatches, completed
	}
	if d == 0 {
		return ""
	}
	if r := float64(n) / float64(d); r >= s.Bound && n > 0 {
		return fmt.Sprintf("%s %s > %s%s", s.Metric, FmtPct(r), FmtPct(s.Bound), where)
	}
	return ""
}

func (s SLO) matches(r *Route) bool {
	return r.Route == s.Route && (s.Method == "" || s.Method == r.Method)
}

func fmtMS(ms float64) string { return textfmt.Millis(ms) }

// FmtPct writes a fraction as a percentage to three significant digits:
// 0.0123 is 1.23%. Verdicts, SLO violations and comparisons use it.
func FmtPct(f float64) string { return strconv.FormatFloat(f*100, 'g', 3, 64) + "%" }

// Evaluate sets st.Passed, st.Violations and st.FailedRoute from the SLOs
// and the saturation bound (achieved below saturation × offered fails).
func Evaluate(st *Step, slos []SLO, saturation float64) {
	st.Violations = []string{}
	st.FailedRoute = ""
	for _, s := range slos {
		if s.Route == "" {
			if v := s.check(st.LatencyMS, st.Sent, st.Completed, st.Errors, st.Mismatches); v != "" {
				st.Violations = append(st.Violations, v)
				if st.FailedRoute == "" {
					st.FailedRoute = BlameRoute(st, nil, s).Route
				}
			}
			continue
		}
		for i := range st.Routes {
			r := &st.Routes[i]
			if !s.matches(r) || r.Sent < MinRouteSample {
				continue
			}
			if v := s.check(r.LatencyMS, r.Sent, r.Completed, r.Errors, r.Mismatches); v != "" {
				st.Violations = append(st.Violations, v)
				if st.FailedRoute == "" {
					st.FailedRoute = r.Route
				}
			}
		}
	}
	if saturation > 0 && st.OfferedRPS > 0 && st.AchievedRPS < saturation*st.OfferedRPS {
		st.Violations = append(st.Violations, fmt.Sprintf("achieved %.1f req/s < %.0f%% of offered %.1f req/s",
			st.AchievedRPS, saturation*100, st.OfferedRPS))
	}
	st.Passed = len(st.Violations) == 0
}

// RouteViolations holds one route of a step to the SLOs that bear on it:
// the whole-step objectives on latency, errors and mismatches, applied to
// the route's own figures, and the route's own objectives. A route with
// too few requests to judge (fewer than Evaluate needs) has none. Reports
// use it to show which route degraded first.
func RouteViolations(r *Route, slos []SLO) []string {
	if r.Sent < MinRouteSample {
		return nil
	}
	var out []string
	for _, s := range slos {
		if s.Route != "" && !s.matches(r) {
			continue
		}
		if v := s.check(r.LatencyMS, r.Sent, r.Completed, r.Errors, r.Mismatches); v != "" {
			out = append(out, v)
		}
	}
	return out
}
