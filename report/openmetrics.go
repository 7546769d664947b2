package report

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/herd-replay/herd/internal/results"
)

// WriteOpenMetrics writes f as an OpenMetrics text exposition (served as
// application/openmetrics-text, Prometheus and other OpenMetrics scrapers
// read it): the run, its capacity and breaking point, and
// per step and per route the counts, rates and latency summaries
// (quantiles in seconds). Every step's samples carry step (its 1-based
// position: a step run again has the scale of the one before it) and
// scale labels. No timestamps: the values belong to the run, not to the
// moment of the scrape.
func WriteOpenMetrics(w io.Writer, f *results.File) error {
	m := &metrics{}
	m.family("herd_run", "info", "", "The run that produced these results.")
	m.sample("herd_run_info", labels{
		"kind", f.Kind, "target", f.Target, "tape", f.Tape, "window", f.Window.Spec, "herd_version", f.HerdVersion,
	}, 1)
	m.gauge("herd_window_requests_per_second", "Request rate of the replayed window at 1x.", nil, f.Window.RPS)
	m.gauge("herd_capacity_requests_per_second", "Highest rate of successful responses the target sustained.", nil, f.Capacity.RPS)
	m.gauge("herd_capacity_scale", "Capacity as a multiple of the window's rate.", nil, f.Capacity.Scale)
	m.gauge("herd_capacity_reached", "1 when a step offered more than the target delivered, so capacity is the plateau; 0 when it is only a lower bound.", nil, boolValue(f.Capacity.Reached))
	if bp := f.BreakingPoint; bp != nil {
		m.gauge("herd_breaking_point_scale", "First failing multiple of the window's rate.", nil, bp.Scale)
		m.gauge("herd_last_good_scale", "Last passing multiple below the breaking point (0 when the first step failed).", nil, bp.LastGoodScale)
		if bp.RefinedScale != nil {
			m.gauge("herd_refined_breaking_point_scale", "Estimate of the breaking point from the refinement steps.", nil, *bp.RefinedScale)
		}
	}
	m.gauge("herd_generator_limited", "1 when herd itself, not the target, was the limit in some step.", nil, boolValue(f.Generator.Limited))
	m.gauge("herd_aborted", "1 when the emergency stop ended the run.", nil, boolValue(f.Aborted))

	steps := make([]labels, len(f.Steps))
	for i := range f.Steps {
		steps[i] = labels{"step", strconv.Itoa(i + 1), "scale", num(f.Steps[i].Scale)}
	}
	perStep := func(name, typ, help string, value func(st *results.Step) float64) {
		m.family(name, typ, "", help)
		sample := name
		if typ == "counter" {
			sample += "_total"
		}
		for i := range f.Steps {
			m.sample(sample, steps[i], value(&f.Steps[i]))
		}
	}
	perStep("herd_step_duration_seconds", "gauge", "Measured period of the step, after its settle time.", func(st *results.Step) float64 { return st.DurationS })
	perStep("herd_step_offered_requests_per_second", "gauge", "Requests scheduled per second in the measured period.", func(st *results.Step) float64 { return st.OfferedRPS })
	perStep("herd_step_achieved_requests_per_second", "gauge", "Successful responses completed per second in the measured period.", func(st *results.Step) float64 { return st.AchievedRPS })
	perStep("herd_step_planned", "counter", "Requests due in the measured period.", func(st *results.Step) float64 { return float64(st.Planned) })
	perStep("herd_step_sent", "counter", "Requests sent.", func(st *results.Step) float64 { return float64(st.Sent) })
	perStep("herd_step_completed", "counter", "Responses that were not errors.", func(st *results.Step) float64 { return float64(st.Completed) })
	perStep("herd_step_errors", "counter", "Errors: connection errors, timeouts, resets, 5xx.", func(st *results.Step) float64 { return float64(st.Errors) })
	perStep("herd_step_mismatches", "counter", "Responses whose status differs from the recorded one.", func(st *results.Step) float64 { return float64(st.Mismatches) })
	perStep("herd_step_error_ratio", "gauge", "Errors over requests sent.", func(st *results.Step) float64 { return st.ErrorRate })
	perStep("herd_step_passed", "gauge", "1 when the step met its SLOs.", func(st *results.Step) float64 { return boolValue(st.Passed) })
	perStep("herd_step_generator_limited", "gauge", "1 when herd itself was the limit in the step.", func(st *results.Step) float64 { return boolValue(st.Generator.Limited) })

	m.family("herd_step_errors_by_class", "counter", "", "Errors by class.")
	for i := range f.Steps {
		for _, k := range slices.Sorted(maps.Keys(f.Steps[i].ErrorClasses)) {
			m.sample("herd_step_errors_by_class_total", append(steps[i][:4:4], "class", k), float64(f.Steps[i].ErrorClasses[k]))
		}
	}
	m.family("herd_step_not_sent", "counter", "", "Requests due but not sent, by reason.")
	for i := range f.Steps {
		for _, k := range slices.Sorted(maps.Keys(f.Steps[i].NotSent)) {
			m.sample("herd_step_not_sent_total", append(steps[i][:4:4], "reason", k), float64(f.Steps[i].NotSent[k]))
		}
	}

	// Each step's latency histogram counts the requests that got a
	// response, which is also the count of its service and TTFB histograms.
	responses := make([]int64, len(f.Steps))
	for i := range f.Steps {
		n, err := histCount(f.Steps[i].Histograms.Latency)
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, f.Steps[i].Label(), err)
		}
		responses[i] = n
	}
	for k, x := range new(results.Step).Hists() {
		name := "herd_step_" + x.Name + "_seconds"
		m.family(name, "summary", "seconds", stepSummaries[x.Name].help)
		for i := range f.Steps {
			st := &f.Steps[i]
			n := responses[i]
			if stepSummaries[x.Name].perSent {
				n = st.Sent
			}
			m.summary(name, steps[i], *st.Hists()[k].Percentiles, n)
		}
	}

	type routeRow struct {
		l labels
		r *results.Route
	}
	var routes []routeRow
	for i := range f.Steps {
		for j := range f.Steps[i].Routes {
			r := &f.Steps[i].Routes[j]
			routes = append(routes, routeRow{append(steps[i][:4:4], "method", r.Method, "route", r.Route), r})
		}
	}
	for _, c := range []struct {
		name, help string
		value      func(r *results.Route) int64
	}{
		{"herd_route_sent", "Requests of the route sent.", func(r *results.Route) int64 { return r.Sent }},
		{"herd_route_completed", "Responses of the route that were not errors.", func(r *results.Route) int64 { return r.Completed }},
		{"herd_route_errors", "Errors of the route.", func(r *results.Route) int64 { return r.Errors }},
		{"herd_route_mismatches", "Responses of the route whose status differs from the recorded one.", func(r *results.Route) int64 { return r.Mismatches }},
	} {
		m.family(c.name, "counter", "", c.help)
		for _, rr := range routes {
			m.sample(c.name+"_total", rr.l, float64(c.value(rr.r)))
		}
	}
	m.family("herd_route_latency_seconds", "summary", "seconds", "Latency of the route's requests from their due time.")
	for _, rr := range routes {
		n, err := histCount(rr.r.Histogram)
		if err != nil {
			return fmt.Errorf("route %s %s: %w", rr.r.Method, rr.r.Route, err)
		}
		m.summary("herd_route_latency_seconds", rr.l, rr.r.LatencyMS, n)
	}
	m.b.WriteString("# EOF\n")
	_, err := io.WriteString(w, m.b.String())
	return err
}

// stepSummaries describe the summary of each of a step's histograms, by
// its name in results.Step.Hists (herd_step_NAME_seconds is the family):
// the help, and whether it holds a value for every request sent (the lags,
// recorded at each send), its count the step's Sent. The others hold one
// for every request that got a response, replay records the three
// together, and their count is the latency histogram's.
var stepSummaries = map[string]struct {
	help    string
	perSent bool
}{
	"latency":      {"Latency from each request's due time to its complete response.", false},
	"service":      {"Time from the actual send to the complete response.", false},
	"ttfb":         {"Time from the actual send to the first response byte.", false},
	"schedule_lag": {"How late each request was sent after its due time.", true},
	"dispatch_lag": {"How late herd's dispatcher was, the generator's own delay.", true},
}

// labels are name, value pairs in order.
type labels []string

type metrics struct{ b strings.Builder }

func (m *metrics) family(name, typ, unit, help string) {
	fmt.Fprintf(&m.b, "# TYPE %s %s\n", name, typ)
	if unit != "" {
		fmt.Fprintf(&m.b, "# UNIT %s %s\n", name, unit)
	}
	fmt.Fprintf(&m.b, "# HELP %s %s\n", name, escapeOM.Replace(help))
}

func (m *metrics) gauge(name, help string, l labels, v float64) {
	m.family(name, "gauge", "", help)
	m.sample(name, l, v)
}

func (m *metrics) sample(name string, l labels, v float64) {
	m.b.WriteString(name)
	if len(l) > 0 {
		m.b.WriteByte('{')
		for i := 0; i+1 < len(l); i += 2 {
			if i > 0 {
				m.b.WriteByte(',')
			}
			fmt.Fprintf(&m.b, "%s=\"%s\"", l[i], escapeOM.Replace(l[i+1]))
		}
		m.b.WriteByte('}')
	}
	m.b.WriteByte(' ')
	m.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	m.b.WriteByte('\n')
}

// summary writes the quantiles of p, in seconds, and the count of values
// behind them. The maximum is quantile 1. There is no _sum: the
// histograms hold each value only to three significant digits.
func (m *metrics) summary(name string, l labels, p results.Percentiles, count int64) {
	for _, q := range []struct {
		q  string
		ms float64
	}{{"0.5", p.P50}, {"0.9", p.P90}, {"0.95", p.P95}, {"0.99", p.P99}, {"0.999", p.P999}, {"1", p.Max}} {
		// Milliseconds have three decimals: whole microseconds, so the
		// seconds print without binary noise.
		m.sample(name, append(l[:len(l):len(l)], "quantile", q.q), math.Round(q.ms*1000)/1e6)
	}
	m.sample(name+"_count", l, float64(count))
}

// histCount is the number of values in an encoded histogram.
func histCount(enc string) (int64, error) {
	h, err := results.Decode(enc)
	if err != nil {
		return 0, err
	}
	return h.TotalCount(), nil
}

// escapeOM escapes a label value or help text: backslash, double quote
// and line feed.
var escapeOM = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
