package report

import (
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/herd-replay/herd/internal/chart"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
)

//go:embed html.tmpl
var htmlSource string

// htmlTemplate holds the report page ("report") and the comparison page
// ("compare"), which share their head and style.
var htmlTemplate = template.Must(template.New("html").Parse(htmlSource))

// WriteHTML renders f as one self-contained HTML page: the verdict and the
// numbers behind it, SVG charts (throughput and latency by scale, latency
// against achieved throughput, errors by class, the HDR percentile
// distribution with the SLOs, latency and offered against achieved over
// time), the steps, the routes in the order they degraded with their
// throughput, and the run's parameters.
// The page needs no network: no script, no stylesheet, font or image from
// anywhere; charts are inline SVG, tooltips are SVG titles.
func WriteHTML(w io.Writer, f *results.File) error {
	p, err := newPage(f)
	if err != nil {
		return err
	}
	return renderPage(w, "report", p)
}

// renderPage executes the named page template whole before writing
// anything, so a failed render writes nothing.
func renderPage(w io.Writer, name string, data any) error {
	var b strings.Builder
	if err := htmlTemplate.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// page is what the template shows.
type page struct {
	Title, Kind, Target, Tape, Started, Version string
	Status, Headline, Verdict                   string
	Cards                                       []card
	Notes                                       []string
	Charts                                      []figure
	Steps                                       []stepRow
	RouteScales                                 []string
	Routes                                      []routeRow
	SingleReplay                                bool
	Params                                      [][2]string
	Schema                                      int
}

type card struct{ Label, Value, Note, Class string }

type figure struct {
	Title, Caption string
	SVG            template.HTML
	Wide           bool
}

type stepRow struct {
	Label, Offered, Achieved, P50, P90, P99, P999, Max, Errors, Mismatches, Lag, Result, Class string
}

type routeRow struct {
	Method, Route, First, Why, Class string
	Named                            bool
	Cells                            []routeCell
	// Single-step columns.
	Sent, OK, Errors, Mismatches, P50, P90, P99, Max string
}

// routeCell is a route at one scale: its p99 (Value) and, below it, its
// throughput and error rate (Sub).
type routeCell struct{ Value, Sub, Tip, Class string }

// Colours of the charts: those used more than once are named.
const (
	colBad      = "#dc2626"
	colGrey     = "#6b7280"
	colBlue     = "#2563eb"
	colViolet   = "#7c3aed"
	colMismatch = "#d97706"
	colCapacity = "#0f766e"
)

// Colours of the percentiles, the same in every chart.
var pctColors = map[string]string{"p50": "#60a5fa", "p90": colBlue, "p99": colViolet, "p999": "#db2777", "max": "#9f1239"}

func newPage(f *results.File) (*page, error) {
	p := &page{
		Kind: f.Kind, Target: f.Target, Tape: f.Tape, Version: f.HerdVersion, Schema: f.Schema,
		Verdict: f.Verdict, SingleReplay: singleReplay(f),
	}
	if !f.StartedAt.IsZero() {
		p.Started = f.StartedAt.UTC().Format(dateLayout)
	}
	p.Title = fmt.Sprintf("herd %s: %s", f.Kind, f.Target)
	// A file whose SLOs do not parse is still shown, without them.
	slos, _ := results.ParseSLOs(f.Params.SLOs)
	p.Status, p.Headline = headline(f)
	p.Cards = cards(f)
	p.Notes = f.Generator.Notes
	p.Params = params(f)
	for i := range f.Steps {
		p.Steps = append(p.Steps, newStepRow(&f.Steps[i]))
	}
	byScale := stepsByScale(f)
	if len(byScale) >= 2 {
		p.Charts = append(p.Charts,
			throughputChart(f, byScale),
			capacityChart(f, byScale, slos),
			latencyChart(f, byScale, slos),
			errorChart(byScale, slos),
		)
	}
	// Alone on its row, the distribution takes the whole width.
	hdrFig, err := distributionChart(f, slos, len(p.Charts)%2 == 0)
	if err != nil {
		return nil, err
	}
	t := newTimeline(f)
	p.Charts = append(p.Charts, hdrFig, timelineLatencyChart(f, t, slos), timelineRequestsChart(f, t))
	if p.SingleReplay {
		p.Routes = singleRoutes(&f.Steps[0], slos)
	} else {
		for _, st := range byScale {
			p.RouteScales = append(p.RouteScales, st.Label())
		}
		p.Routes = routeRows(f, byScale, slos)
	}
	return p, nil
}

// headline is the one-line answer in large type, and the status that
// colours it.
func headline(f *results.File) (status, text string) {
	last := func() *results.Step { return &f.Steps[len(f.Steps)-1] }
	switch {
	case len(f.Steps) == 0:
		return "stopped", "No step completed"
	case f.Aborted:
		return "fail", "Emergency stop at " + last().Label()
	case singleReplay(f):
		st := &f.Steps[0]
		switch {
		case f.Interrupted:
			return "stopped", "Interrupted at " + st.Label()
		case st.Generator.Limited:
			return "limited", "herd was the limit at " + st.Label()
		case !st.Passed:
			return "fail", "SLOs failed at " + st.Label()
		}
		return "pass", "SLOs met at " + st.Label()
	case f.BreakingPoint != nil:
		bp := f.BreakingPoint
		s := fmt.Sprintf("Breaks at %gx", bp.Scale)
		if bp.LastGoodScale > 0 {
			s += fmt.Sprintf(", holds %gx", bp.LastGoodScale)
		}
		return "fail", s
	case f.Generator.Limited:
		for i := range f.Steps {
			if f.Steps[i].Generator.Limited {
				return "limited", "herd was the limit at " + f.Steps[i].Label()
			}
		}
	case f.Interrupted:
		return "stopped", "Interrupted at " + last().Label()
	}
	return "pass", "Holds " + last().Label() + ": no step failed"
}

func cards(f *results.File) []card {
	var cs []card
	if singleReplay(f) {
		st := &f.Steps[0]
		errClass := ""
		if st.Errors > 0 {
			errClass = "bad"
		}
		return []card{
			{Label: "Scale", Value: st.Label(), Note: fmt.Sprintf("of %.1f req/s, the window's rate", f.Window.RPS)},
			{Label: "Throughput", Value: fmt.Sprintf("%.1f req/s", st.AchievedRPS), Note: fmt.Sprintf("of %.1f req/s offered", st.OfferedRPS)},
			{Label: "Latency p50", Value: st.LatencyMS.Text("p50"), Note: "from each request's due time"},
			{Label: "Latency p99", Value: st.LatencyMS.Text("p99"), Note: "p99.9 " + st.LatencyMS.Text("p999") + ", max " + st.LatencyMS.Text("max")},
			{Label: "Errors", Value: pct(st.ErrorRate), Note: errorsNote(st), Class: errClass},
			{Label: "Mismatches", Value: pct(st.MismatchRate), Note: fmt.Sprintf("%d statuses differ from the recording", st.Mismatches)},
		}
	}
	if bp := f.BreakingPoint; bp != nil {
		why := bp.Reason
		if b := blame(bp.Route); b != "" {
			why = b + ": " + why
		}
		cs = append(cs, card{Label: "Breaking point", Value: fmt.Sprintf("%gx", bp.Scale), Note: why, Class: "bad"})
		if bp.LastGoodScale > 0 {
			cs = append(cs, card{Label: "Last good", Value: fmt.Sprintf("%gx", bp.LastGoodScale), Note: "highest step that met every SLO", Class: "good"})
		} else {
			cs = append(cs, card{Label: "Last good", Value: "none", Note: "the first step failed", Class: "bad"})
		}
		if bp.RefinedScale != nil {
			cs = append(cs, card{Label: "Refined estimate", Value: fmt.Sprintf("%gx", *bp.RefinedScale), Note: "bisected between passing and failing steps"})
		}
		// Which route broke it, judged against the last passing step, or
		// that none stood out.
		switch {
		case bp.Route != "":
			cs = append(cs, card{Label: "Route blamed", Value: bp.Route, Note: bp.Blame, Class: "route bad"})
		case bp.Blame != "":
			value, note, _ := strings.Cut(bp.Blame, ": ")
			cs = append(cs, card{Label: "Route blamed", Value: "none", Note: value + ": " + note})
		}
	}
	if f.BreakingPoint == nil {
		if held := highestPassed(f); held > 0 {
			cs = append(cs, card{Label: "Last good", Value: fmt.Sprintf("%gx", held), Note: "highest step that met every SLO", Class: "good"})
		}
	}
	capNote := fmt.Sprintf("%gx the window's %.1f req/s", f.Capacity.Scale, f.Window.RPS)
	capValue := fmt.Sprintf("%.1f req/s", f.Capacity.RPS)
	if !f.Capacity.Reached {
		capValue = "≥ " + capValue
		capNote += "; not reached, a lower bound"
	}
	cs = append(cs, card{Label: "Capacity", Value: capValue, Note: capNote})
	cs = append(cs, card{Label: "1x rate", Value: fmt.Sprintf("%.1f req/s", f.Window.RPS),
		Note: fmt.Sprintf("%s: %d requests on %d connections", f.Window.Spec, f.Window.Requests, f.Window.Conns)})
	if r := f.Recovery; r != nil {
		cs = append(cs, recoveryCard(r))
	}
	if t := f.TruthCapacityScale; t != nil && *t > 0 {
		cs = append(cs, card{Label: "Analytic capacity", Value: fmt.Sprintf("%.2fx", *t),
			Note: fmt.Sprintf("measured %.2fx (%+.1f%%)", f.Capacity.Scale, 100*(f.Capacity.Scale-*t) / *t)})
	}
	return cs
}

// recoveryCard says whether the target came back at normal load after it
// broke: the question a metastable failure answers no to.
func recoveryCard(r *results.Recovery) card {
	at := fmt.Sprintf("at %gx for %s after the %s", r.Scale, textfmt.Seconds(r.DurationS), r.After)
	amp := ""
	if r.Amplification > 1 {
		amp = fmt.Sprintf("; retries amplified the load %.2fx", r.Amplification)
	}
	switch {
	case r.Note != "" && !r.Recovered:
		return card{Label: "Recovery", Value: "not judged", Note: at + ": " + r.Note}
	case r.Recovered:
		return card{Label: "Recovery", Value: "in " + textfmt.Seconds(*r.TimeToRecoverS), Note: at + amp, Class: "good"}
	}
	return card{Label: "Recovery", Value: "none: metastable", Note: at + ", the SLOs never held over " + textfmt.Seconds(r.WindowS) + amp, Class: "bad"}
}

// errorsNote counts a step's errors and names their classes.
func errorsNote(st *results.Step) string {
	s := fmt.Sprintf("%d of %d sent", st.Errors, st.Sent)
	if len(st.ErrorClasses) > 0 {
		s += ": " + counts(st.ErrorClasses)
	}
	return s
}

func newStepRow(st *results.Step) stepRow {
	r := stepRow{
		Label: st.Label(), Offered: fmt.Sprintf("%.1f", st.OfferedRPS), Achieved: fmt.Sprintf("%.1f", st.AchievedRPS),
		P50: st.LatencyMS.Text("p50"), P90: st.LatencyMS.Text("p90"), P99: st.LatencyMS.Text("p99"), P999: st.LatencyMS.Text("p999"),
		Max: st.LatencyMS.Text("max"), Errors: pct(st.ErrorRate), Mismatches: pct(st.MismatchRate), Lag: st.ScheduleLagMS.Text("p99"),
	}
	kind, detail := stepOutcome(st)
	o := htmlOutcomes[kind]
	r.Result, r.Class = o.text+detail, o.class
	return r
}

// htmlOutcomes introduce a step's outcome in the steps table, and colour
// its row.
var htmlOutcomes = map[outcome]struct{ text, class string }{
	passed:      {"pass", ""},
	aborted:     {"emergency stop: ", "bad"},
	interrupted: {"interrupted", "muted"},
	limited:     {"herd was the limit: ", "limited"},
	failed:      {"FAIL: ", "bad"},
}

func throughputChart(f *results.File, steps []*results.Step) figure {
	offered := chart.Series{Name: "offered", Color: colGrey, Dash: true, Markers: true}
	achieved := chart.Series{Name: "achieved (successful)", Color: colBlue, Markers: true}
	for _, st := range steps {
		offered.Points = append(offered.Points, chart.Point{X: st.Scale, Y: st.OfferedRPS,
			Tip: fmt.Sprintf("%s: offered %.1f req/s", st.Label(), st.OfferedRPS)})
		achieved.Points = append(achieved.Points, chart.Point{X: st.Scale, Y: st.AchievedRPS, Hollow: st.Generator.Limited,
			Tip: fmt.Sprintf("%s: achieved %.1f of %.1f req/s%s", st.Label(), st.AchievedRPS, st.OfferedRPS, limitedTip(st))})
	}
	c := &chart.Chart{
		ID: "throughput", Label: "Offered and achieved throughput by scale",
		X:      chart.Axis{Label: "scale (multiple of the window's rate)", Format: scaleFormat, Pad: true},
		Y:      chart.Axis{Label: "requests per second", Zero: true},
		Series: []chart.Series{offered, achieved},
	}
	if f.Capacity.RPS > 0 {
		c.Rules = append(c.Rules, chart.Rule{V: f.Capacity.RPS, Label: capacityLabel(f), Color: colCapacity, Dash: true})
	}
	c.Rules = append(c.Rules, breakingRules(f)...)
	return figure{Title: "Throughput by scale", SVG: template.HTML(c.SVG()),
		Caption: "Requests per second offered by the schedule and successful responses achieved, over each step's measured period. Where achieved falls away from offered, the target is saturated." + hollowNote(steps)}
}

func latencyChart(f *results.File, steps []*results.Step, slos []results.SLO) figure {
	c := &chart.Chart{
		ID: "latency", Label: "Latency percentiles by scale",
		X:     chart.Axis{Label: "scale (multiple of the window's rate)", Format: scaleFormat, Pad: true},
		Y:     chart.Axis{Label: "latency (ms, log scale)", Log: true},
		Empty: "no latencies recorded",
	}
	for _, q := range []struct{ key, name string }{
		{"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}, {"p999", "p99.9"},
	} {
		s := chart.Series{Name: q.name, Color: pctColors[q.key], Markers: true}
		for _, st := range steps {
			v, _ := st.LatencyMS.Metric(q.key)
			s.Points = append(s.Points, chart.Point{X: st.Scale, Y: v, Hollow: st.Generator.Limited,
				Tip: fmt.Sprintf("%s: %s %s%s", st.Label(), q.name, st.LatencyMS.Text(q.key), limitedTip(st))})
		}
		c.Series = append(c.Series, s)
	}
	c.Rules = append(latencyRules(slos, false), breakingRules(f)...)
	return figure{Title: "Latency by scale", SVG: template.HTML(c.SVG()),
		Caption: "Percentiles of latency measured from each request's due time, so a target that makes herd wait is not flattered. Dashed lines are the latency SLOs." + hollowNote(steps)}
}

// errorChart stacks each step's errors by class, as a share of the
// requests it sent, with its mismatch rate as a line over them: which
// failure grows with the load (timeouts of a queue, 5xx of a guard,
// resets of an overflowing accept queue) is what a planner fixes.
func errorChart(steps []*results.Step, slos []results.SLO) figure {
	c := &chart.Chart{
		ID: "errors", Label: "Errors by class and scale",
		Y:     chart.Axis{Label: "% of requests sent", Zero: true},
		X:     chart.Axis{Label: "step (rising scale)"},
		Empty: "no errors and no mismatches at any step",
	}
	totals := map[string]int64{}
	for _, st := range steps {
		c.Categories = append(c.Categories, st.Label())
		for k, n := range st.ErrorClasses {
			totals[k] += n
		}
	}
	classes := slices.SortedFunc(maps.Keys(totals), func(a, b string) int {
		return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b))
	})
	for i, k := range classes {
		stack := chart.Stack{Name: k, Color: errorColor(k, i)}
		for _, st := range steps {
			n := st.ErrorClasses[k]
			v := 0.0
			if st.Sent > 0 {
				v = 100 * float64(n) / float64(st.Sent)
			}
			stack.Values = append(stack.Values, v)
			stack.Tips = append(stack.Tips, fmt.Sprintf("%s: %s %d of %d sent (%s)%s", st.Label(), k, n, st.Sent, pct(results.Fraction(n, st.Sent)), limitedTip(st)))
		}
		c.Stacks = append(c.Stacks, stack)
	}
	mism := chart.Series{Name: "status mismatches", Color: colMismatch, Markers: true, Dash: true}
	anyMism := false
	for i, st := range steps {
		anyMism = anyMism || st.Mismatches > 0
		mism.Points = append(mism.Points, chart.Point{X: float64(i), Y: 100 * st.MismatchRate, Hollow: st.Generator.Limited,
			Tip: fmt.Sprintf("%s: mismatches %s (%d of %d responses)", st.Label(), pct(st.MismatchRate), st.Mismatches, st.Completed)})
	}
	if anyMism {
		c.Series = append(c.Series, mism)
	}
	for _, s := range slos {
		if s.Route == "" && (s.Metric == "errors" || s.Metric == "mismatches") {
			col := colBad
			if s.Metric == "mismatches" {
				col = colMismatch
			}
			c.Rules = append(c.Rules, chart.Rule{V: 100 * s.Bound, Label: "SLO " + s.Text, Color: col, Dash: true, Optional: !anyMism && len(classes) == 0})
		}
	}
	caption := "Each step's errors by class (connection failures, timeouts, resets, 5xx...) as a share of the requests it sent, stacked."
	if anyMism {
		caption += " The dashed line is the share of responses whose status differs from the recorded one."
	} else {
		caption += " No response's status differed from the recorded one."
	}
	return figure{Title: "Errors by class and scale", SVG: template.HTML(c.SVG()), Caption: caption}
}

// capacityLabel marks the capacity on a chart, as a plateau or, when no
// step pushed past it, as the highest rate achieved.
func capacityLabel(f *results.File) string {
	if !f.Capacity.Reached {
		return fmt.Sprintf("highest achieved %.1f req/s", f.Capacity.RPS)
	}
	return fmt.Sprintf("capacity %.1f req/s", f.Capacity.RPS)
}

// errorColors keep each error class one colour on every page.
var errorColors = map[string]string{
	"http_5xx": colBad, "timeout": colViolet, "reset": "#f59e0b", "closed": "#b45309",
	"connect_refused": "#0891b2", "connect_timeout": "#0e7490", "connect_error": "#155e75", "tls_error": "#0d9488",
	"malformed_response": "#db2777", "fd_exhausted": colGrey, "ports_exhausted": "#9ca3af", "io_error": "#4b5563",
}

func errorColor(class string, i int) string {
	if c, ok := errorColors[class]; ok {
		return c
	}
	return []string{"#65a30d", "#ea580c", "#4f46e5", "#be123c"}[i%4]
}

// capacityChart is the classic capacity curve: each step's latency at the
// throughput it achieved, in absolute units, the steps in the order of
// their offered load. Flat while the target keeps up, it turns up at the
// knee, and bends back when pushing harder makes the target serve less.
func capacityChart(f *results.File, steps []*results.Step, slos []results.SLO) figure {
	c := &chart.Chart{
		ID: "capacity", Label: "Latency against achieved throughput",
		X:     chart.Axis{Label: "achieved throughput (successful responses per second)", Zero: true, Pad: true},
		Y:     chart.Axis{Label: "latency (ms, log scale)", Log: true},
		Empty: "no latencies recorded",
	}
	for _, q := range []struct{ key, name string }{{"p50", "p50"}, {"p99", "p99"}} {
		s := chart.Series{Name: q.name, Color: pctColors[q.key], Markers: true}
		for _, st := range steps {
			v, _ := st.LatencyMS.Metric(q.key)
			pt := chart.Point{X: st.AchievedRPS, Y: v, Hollow: st.Generator.Limited,
				Tip: fmt.Sprintf("%s: %s %s at %.1f req/s achieved (%.1f offered)%s", st.Label(), q.name, st.LatencyMS.Text(q.key), st.AchievedRPS, st.OfferedRPS, limitedTip(st))}
			if q.key == "p99" {
				pt.Label = st.Label()
			}
			s.Points = append(s.Points, pt)
		}
		c.Series = append(c.Series, s)
	}
	if f.Capacity.RPS > 0 {
		c.Rules = append(c.Rules, chart.Rule{Vertical: true, V: f.Capacity.RPS, Label: capacityLabel(f), Color: colCapacity, Dash: true})
	}
	c.Rules = append(c.Rules, latencyRules(slos, false)...)
	return figure{Title: "Latency against throughput", SVG: template.HTML(c.SVG()),
		Caption: "The capacity curve: each step's p50 and p99 at the throughput it achieved, the steps joined in the order of their offered load. Latency stays flat while the target keeps up and turns up at its capacity; a curve that bends back left is a target serving less the harder it is pushed." + hollowNote(steps)}
}

// distributionChart plots the latency percentile distribution as
// HdrHistogram's plotter does: the x axis is 1/(1-percentile) on a log
// scale, so the tail gets room. One line per step, coloured from cool to
// hot by scale; for a single step, also service time and schedule lag.
func distributionChart(f *results.File, slos []results.SLO, wide bool) (figure, error) {
	// A log latency axis: an SLO bound far above a fast target's tail
	// must not flatten the tail into the floor.
	c := percentileChart("distribution", "Latency by percentile distribution")
	maxX := 10.0
	add := func(name, enc, col string, dash bool) error {
		sr, x, err := percentileSeries(name, enc, col, dash)
		if err != nil {
			return err
		}
		c.Series = append(c.Series, sr)
		maxX = max(maxX, x)
		return nil
	}
	caption := "Latency at each percentile, on HdrHistogram's scale: each step to the right is ten times rarer (90%, 99%, 99.9%...). The shape of the tail shows whether slow requests are rare accidents or a queue."
	if singleReplay(f) {
		st := &f.Steps[0]
		for _, x := range []struct {
			name, enc, col string
			dash           bool
		}{
			{"latency (from due time)", st.Histograms.Latency, colViolet, false},
			{"service time (from send)", st.Histograms.Service, colBlue, true},
			{"schedule lag", st.Histograms.ScheduleLag, colGrey, true},
		} {
			if err := add(x.name, x.enc, x.col, x.dash); err != nil {
				return figure{}, fmt.Errorf("step 1: %w", err)
			}
		}
		caption += " Latency is service time plus schedule lag: the gap between the lines is time requests waited to be sent."
	} else {
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range f.Steps {
			lo, hi = min(lo, f.Steps[i].Scale), max(hi, f.Steps[i].Scale)
		}
		for i := range f.Steps {
			st := &f.Steps[i]
			if err := add(st.Label(), st.Histograms.Latency, heat(st.Scale, lo, hi), st.Refinement || st.Retry); err != nil {
				return figure{}, fmt.Errorf("step %d (%s): %w", i+1, st.Label(), err)
			}
		}
	}
	// Each latency SLO: its bound, and a ring where it applies (p99<1s at
	// 99%): a line passing above the ring broke it.
	ringed := false
	for _, s := range slos {
		q, ok := sloQuantiles[s.Metric]
		if !ok || s.Route != "" {
			continue
		}
		x := 1 / (1 - q)
		maxX = max(maxX, 10*x)
		c.Rules = append(c.Rules, chart.Rule{V: s.Bound, Label: "SLO " + s.Text, Color: pctColors[s.Metric], Dash: true})
		c.Series = append(c.Series, chart.Series{Color: pctColors[s.Metric], Markers: true,
			Points: []chart.Point{{X: x, Y: s.Bound, Hollow: true, Tip: fmt.Sprintf("SLO %s: the line must pass under this point", s.Text)}}})
		ringed = true
	}
	if ringed {
		caption += " A ring on a dashed line is a latency SLO where it applies: a line passing above the ring broke it."
	}
	c.X.Max = percentileAxisMax(maxX)
	if wide {
		c.Width, c.Height = 1280, 320
	}
	return figure{Title: "Latency by percentile", SVG: template.HTML(c.SVG()), Caption: caption, Wide: wide}, nil
}

// percentileChart is an empty chart of latency by percentile, on
// HdrHistogram's axis, with a log latency axis.
func percentileChart(id, label string) *chart.Chart {
	return &chart.Chart{
		ID: id, Label: label,
		X: chart.Axis{Label: "percentile", Log: true, Min: 1, Ticks: []chart.Tick{
			{V: 1, Label: "0%"}, {V: 10, Label: "90%"}, {V: 100, Label: "99%"}, {V: 1e3, Label: "99.9%"},
			{V: 1e4, Label: "99.99%"}, {V: 1e5, Label: "99.999%"}, {V: 1e6, Label: "99.9999%"}}},
		Y:     chart.Axis{Label: "latency (ms, log scale)", Log: true},
		Empty: "no latencies recorded",
	}
}

// percentileAxisMax ends the percentile axis at the decade past maxX, at
// 99.9999% at most.
func percentileAxisMax(maxX float64) float64 {
	return math.Pow(10, math.Min(6, math.Ceil(math.Log10(maxX))))
}

// percentileSeries is the line of the latency histogram enc by
// percentile, on HdrHistogram's axis (x = 1/(1-q)), and the largest x it
// reaches.
func percentileSeries(name, enc, col string, dash bool) (chart.Series, float64, error) {
	h, err := results.Decode(enc)
	if err != nil {
		return chart.Series{}, 0, err
	}
	s := chart.Series{Name: name, Color: col, Dash: dash}
	maxX := 0.0
	for _, br := range h.CumulativeDistributionWithTicks(hgrmTicks) {
		if br.Quantile >= 100 {
			continue
		}
		x := 1 / (1 - br.Quantile/100)
		maxX = max(maxX, x)
		s.Points = append(s.Points, chart.Point{X: x, Y: float64(br.ValueAt) / hgrmScale})
	}
	return s, maxX, nil
}

// sloQuantiles place the percentile SLOs on the distribution's axis.
var sloQuantiles = map[string]float64{"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}

// timeline places each step's seconds on one time axis: seconds since the
// first step started, each step's measured period a band.
type timeline struct {
	offsets []float64
	bands   []chart.Band
	xMax    float64
}

func newTimeline(f *results.File) timeline {
	var t timeline
	for i := range f.Steps {
		st := &f.Steps[i]
		off := 0.0
		if i > 0 && !st.StartedAt.IsZero() && !f.Steps[0].StartedAt.IsZero() {
			off = st.StartedAt.Sub(f.Steps[0].StartedAt).Seconds()
		}
		t.offsets = append(t.offsets, off)
		from, to := off+st.SettleS, off+st.SettleS+st.DurationS
		t.bands = append(t.bands, chart.Band{From: from, To: to, Label: st.Label()})
		t.xMax = max(t.xMax, to)
	}
	return t
}

func timelineLatencyChart(f *results.File, t timeline, slos []results.SLO) figure {
	p50 := chart.Series{Name: "p50", Color: pctColors["p50"]}
	p99 := chart.Series{Name: "p99", Color: pctColors["p99"]}
	mx := chart.Series{Name: "max", Color: pctColors["max"], Dash: true}
	for i := range f.Steps {
		for j, s := range f.Steps[i].Timeline {
			x := t.offsets[i] + float64(s.T) + 0.5
			gap := j == 0
			p50.Points = append(p50.Points, chart.Point{X: x, Y: s.P50MS, Gap: gap})
			p99.Points = append(p99.Points, chart.Point{X: x, Y: s.P99MS, Gap: gap})
			mx.Points = append(mx.Points, chart.Point{X: x, Y: s.MaxMS, Gap: gap})
		}
	}
	c := &chart.Chart{
		ID: "timeline-latency", Label: "Latency over time", Height: 260, Width: 1280,
		X:      chart.Axis{Label: "seconds since the first step started", Min: 0, Max: math.Max(t.xMax, 1)},
		Y:      chart.Axis{Label: "latency (ms, log scale)", Log: true},
		Series: []chart.Series{p50, p99, mx}, Bands: t.bands, Rules: latencyRules(slos, true),
		Empty: "no timeline recorded",
	}
	return figure{Title: "Latency over time", Wide: true, SVG: template.HTML(c.SVG()),
		Caption: "Per second of each step's measured period (shaded bands; the settle time before each is left out), the latency of the requests due in that second. A line that climbs within a step is a queue building up."}
}

func timelineRequestsChart(f *results.File, t timeline) figure {
	// Offered is what the schedule asked for in each second (the
	// recording's own bursts); files from before timeline[].due have only
	// what was sent.
	hasDue := false
	for i := range f.Steps {
		for _, s := range f.Steps[i].Timeline {
			hasDue = hasDue || s.Due > 0
		}
	}
	offered := chart.Series{Name: "offered (due that second)", Color: colGrey, Dash: true}
	if !hasDue {
		offered.Name = "sent (by due second)"
	}
	sent := chart.Series{Name: "sent, where herd sent less", Color: "#9ca3af"}
	attempts := chart.Series{Name: "attempts, with the emulated clients' retries (by due second)", Color: colMismatch, Dash: true}
	retried := false
	ok := chart.Series{Name: "achieved (successful, by completion second)", Color: colBlue}
	errs := chart.Series{Name: "errors (by due second)", Color: colBad}
	short := false
	for i := range f.Steps {
		for j, s := range f.Steps[i].Timeline {
			x := t.offsets[i] + float64(s.T) + 0.5
			gap := j == 0
			o := s.Sent
			if hasDue {
				o = s.Due
				short = short || s.Sent < s.Due
			}
			offered.Points = append(offered.Points, chart.Point{X: x, Y: float64(o), Gap: gap})
			sent.Points = append(sent.Points, chart.Point{X: x, Y: float64(s.Sent), Gap: gap})
			ok.Points = append(ok.Points, chart.Point{X: x, Y: float64(s.Finished), Gap: gap})
			errs.Points = append(errs.Points, chart.Point{X: x, Y: float64(s.Errors), Gap: gap})
			attempts.Points = append(attempts.Points, chart.Point{X: x, Y: float64(s.Attempts), Gap: gap})
			retried = retried || s.Attempts > s.Sent
		}
	}
	series := []chart.Series{offered}
	if short {
		series = append(series, sent)
	}
	if retried {
		series = append(series, attempts)
	}
	series = append(series, ok, errs)
	c := &chart.Chart{
		ID: "timeline-requests", Label: "Requests over time", Height: 240, Width: 1280,
		X:      chart.Axis{Label: "seconds since the first step started", Min: 0, Max: math.Max(t.xMax, 1)},
		Y:      chart.Axis{Label: "requests per second", Zero: true},
		Series: series, Bands: t.bands,
		Empty: "no timeline recorded",
	}
	return figure{Title: "Offered and achieved per second", Wide: true, SVG: template.HTML(c.SVG()),
		Caption: "Per second, the requests the recording offered (its own bursts: the dashed line) and the successful responses the target completed. Achieved following offered up and down is the recording's rhythm; achieved falling below offered, and staying there, is the target's trouble. Read it under the latency chart above: the same seconds."}
}

// latencyRules are the whole-step latency SLOs as horizontal lines;
// optional ones do not widen the axis to show a bound far above the data.
func latencyRules(slos []results.SLO, optional bool) []chart.Rule {
	var rs []chart.Rule
	for _, s := range slos {
		if col, ok := pctColors[s.Metric]; ok && s.Route == "" {
			rs = append(rs, chart.Rule{V: s.Bound, Label: "SLO " + s.Text, Color: col, Dash: true, Optional: optional})
		}
	}
	return rs
}

// breakingRules mark the breaking point, and its refined estimate, on a
// chart by scale.
func breakingRules(f *results.File) []chart.Rule {
	bp := f.BreakingPoint
	if bp == nil {
		return nil
	}
	rs := []chart.Rule{{Vertical: true, V: bp.Scale, Label: fmt.Sprintf("breaks at %gx", bp.Scale), Color: colBad}}
	if bp.RefinedScale != nil && *bp.RefinedScale != bp.Scale {
		rs = append(rs, chart.Rule{Vertical: true, V: *bp.RefinedScale, Label: fmt.Sprintf("refined ~%gx", *bp.RefinedScale), Color: colBad, Dash: true})
	}
	return rs
}

// routeRows shows each route's p99 at every scale, the routes in the order
// they degraded.
func routeRows(f *results.File, steps []*results.Step, slos []results.SLO) []routeRow {
	named := ""
	if f.BreakingPoint != nil {
		named = f.BreakingPoint.Route
	}
	var out []routeRow
	for _, d := range degradation(steps, slos) {
		row := routeRow{Method: d.Method, Route: d.Route, Named: named != "" && d.Route == named, First: "–", Class: "muted"}
		if d.Step != nil {
			row.First, row.Why, row.Class = d.Step.Label(), strings.Join(d.Why, "; "), ""
		}
		for _, st := range steps {
			r := findRoute(st, d.Method, d.Route)
			if r == nil {
				row.Cells = append(row.Cells, routeCell{Value: "–", Tip: "no requests"})
				continue
			}
			ok := routeRate(r, st)
			cell := routeCell{Value: r.LatencyMS.Text("p99"), Sub: ok + " · " + pct(r.ErrorRate),
				Tip: fmt.Sprintf("%s: p99 %s, p50 %s, %s successful, errors %s, %d requests", st.Label(), r.LatencyMS.Text("p99"), r.LatencyMS.Text("p50"), ok, pct(r.ErrorRate), r.Sent)}
			switch v := results.RouteViolations(r, slos); {
			case len(v) > 0:
				cell.Class = "bad"
				cell.Tip += "; " + strings.Join(v, "; ")
			case r.Sent < results.MinRouteSample:
				cell.Class = "thin"
				cell.Tip += "; too few requests to judge"
			}
			row.Cells = append(row.Cells, cell)
		}
		out = append(out, row)
	}
	return out
}

func singleRoutes(st *results.Step, slos []results.SLO) []routeRow {
	var out []routeRow
	for i := range st.Routes {
		r := &st.Routes[i]
		row := routeRow{Method: r.Method, Route: r.Route, Sent: fmt.Sprint(r.Sent), OK: routeRate(r, st),
			Errors: fmt.Sprintf("%d (%s)", r.Errors, pct(r.ErrorRate)), Mismatches: fmt.Sprint(r.Mismatches),
			P50: r.LatencyMS.Text("p50"), P90: r.LatencyMS.Text("p90"), P99: r.LatencyMS.Text("p99"), Max: r.LatencyMS.Text("max"),
			Named: st.FailedRoute != "" && r.Route == st.FailedRoute}
		if v := results.RouteViolations(r, slos); len(v) > 0 {
			row.Why, row.Class = strings.Join(v, "; "), "bad"
		} else if r.Sent < results.MinRouteSample {
			row.Why, row.Class = fmt.Sprintf("not judged: under %d requests", results.MinRouteSample), "muted"
		}
		out = append(out, row)
	}
	return out
}

// routeRate is a route's throughput in a step: its successful responses
// per second of the measured period.
func routeRate(r *results.Route, st *results.Step) string {
	if st.DurationS <= 0 {
		return "–"
	}
	return textfmt.Rate(float64(r.Completed) / st.DurationS)
}

// blame words the route a breaking point or a failed step names: "on
// /login", or, when no route stood out, what was found instead.
func blame(route string) string {
	switch {
	case route == "":
		return ""
	case strings.HasPrefix(route, "/") || strings.Contains(route, " /"):
		return "on " + route
	}
	return route
}

func params(f *results.File) [][2]string {
	p, w := f.Params, f.Window
	out := [][2]string{
		{"target", f.Target},
		{"tape", f.Tape},
		{"window", fmt.Sprintf("%s: from %s, %s, %d requests on %d connections, %.1f req/s at 1x",
			w.Spec, w.Start.UTC().Format(dateLayout), fmtDur(w.DurationS), w.Requests, w.Conns, w.RPS)},
	}
	if len(w.Skipped) > 0 {
		out = append(out, [2]string{"not replayed", counts(w.Skipped)})
	}
	if e := f.Capacity.Evidence; e != "" {
		out = append(out, [2]string{"capacity", e})
	}
	for _, n := range windowNotes(w) {
		out = append(out, [2]string{"", n})
	}
	add := func(k, v string) { out = append(out, [2]string{k, v}) }
	add("scaling", fmt.Sprintf("%s scaling, %s pacing", p.ScaleMode, p.Pacing))
	add("timeout", fmtDur(p.TimeoutS))
	if f.Kind == "ramp" {
		add("steps", fmt.Sprintf("%s each, the first %s of each left out (settle)", fmtDur(p.StepS), fmtDur(p.SettleS)))
		if p.CooldownS > 0 {
			add("cooldown", fmtDur(p.CooldownS)+" before each refinement step")
		}
	} else {
		add("duration", fmtDur(p.StepS))
	}
	slos := "none"
	if len(p.SLOs) > 0 {
		slos = strings.Join(p.SLOs, ", ")
	}
	if p.Saturation > 0 {
		slos += fmt.Sprintf("; achieved at least %.0f%% of offered", 100*p.Saturation)
	}
	add("SLOs", slos)
	if p.Require != nil {
		add("required", fmt.Sprintf("%gx", *p.Require))
	}
	add("limits", fmt.Sprintf("%d connections, %d requests in flight", p.MaxConns, p.MaxInflight))
	add("emergency stop", p.AbortOn)
	add("seed", fmt.Sprint(p.Seed))
	var opts []string
	if p.ReadOnly {
		opts = append(opts, "read-only (GET, HEAD, OPTIONS)")
	}
	if p.KeepHost {
		opts = append(opts, "recorded Host header")
	}
	if p.SendTrunc {
		opts = append(opts, "truncated bodies sent")
	}
	if len(p.SetHeaders) > 0 {
		opts = append(opts, "headers set: "+strings.Join(p.SetHeaders, ", "))
	}
	if len(opts) > 0 {
		add("options", strings.Join(opts, "; "))
	}
	if p.Shard != "" {
		add("shards", p.Shard)
	}
	gen := fmt.Sprintf("GOMAXPROCS %d", p.GOMAXPROCS)
	if p.DispatchLagS > 0 {
		gen += fmt.Sprintf(", herd is called the limit past a dispatch lag p99 of %s", fmtDur(p.DispatchLagS))
	}
	add("generator", gen)
	return out
}

// heat is a colour from blue (lo) through violet to red (hi).
func heat(v, lo, hi float64) string {
	t := 0.0
	if hi > lo {
		t = (v - lo) / (hi - lo)
	}
	hue := 220 - 220*t
	if hue < 0 {
		hue += 360
	}
	return fmt.Sprintf("hsl(%.0f 75%% %.0f%%)", hue, 45+5*t)
}

func scaleFormat(v float64) string { return chart.Number(v) + "x" }

// limitedTip warns, in a point's tooltip, that its step says little about
// the target: herd was the limit, or the step was cut short.
func limitedTip(st *results.Step) string {
	switch {
	case st.Generator.Limited:
		return " (herd was the limit)"
	case st.Interrupted:
		return " (interrupted: over the time it ran, not judged)"
	}
	return ""
}

func hollowNote(steps []*results.Step) string {
	for _, st := range steps {
		if st.Generator.Limited {
			return " Hollow points are steps where herd itself was the limit: they say nothing about the target."
		}
	}
	return ""
}
