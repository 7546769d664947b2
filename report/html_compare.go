package report

import (
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"strings"

	"github.com/herd-replay/herd/internal/chart"
	"github.com/herd-replay/herd/internal/results"
)

// Colours of the two runs on the comparison page: the base quiet, the
// candidate in front.
const (
	colBase      = "#64748b"
	colCandidate = "#2563eb"
)

// WriteHTML renders the comparison as one self-contained page, like
// WriteHTML's report: the outcome (regressions or none), both runs' key
// numbers side by side, both runs drawn on the same axes (throughput and
// latency by scale, the capacity curve, errors, the latency distribution
// at the highest scale both ran), the steps side by side and every check.
func (c *Comparison) WriteHTML(w io.Writer) error {
	p, err := newComparePage(c)
	if err != nil {
		return err
	}
	return renderPage(w, "compare", p)
}

// comparePage is what the comparison template shows.
type comparePage struct {
	Title, Status, Headline string
	Runs                    []compareRun
	Regressions             []string
	Notes                   []string
	Cards                   []compareCard
	Charts                  []figure
	Steps                   []compareStep
	Checks                  []compareCheck
	Schema                  int
}

// compareRun is one of the two runs, introduced.
type compareRun struct {
	Role, Name, Path, Kind, Target, Tape, Window, Started, Verdict, Color string
}

type compareCard struct{ Label, Base, Candidate, Change, Class string }

type compareStep struct {
	Label                       string
	AchievedBase, AchievedCand  string
	P50Base, P50Cand            string
	P99Base, P99Cand, P99Change string
	ErrorsBase, ErrorsCand      string
	SLOsBase, SLOsCand, Result  string
	Class                       string
}

type compareCheck struct {
	Scope, Name, Base, Candidate, Change, Limit, Result, Class string
}

func newComparePage(c *Comparison) (*comparePage, error) {
	b, k, o := c.Base, c.Candidate, c.Options
	p := &comparePage{Title: fmt.Sprintf("herd compare: %s vs %s", filepath.Base(o.BaseName), filepath.Base(o.CandidateName)),
		Notes: c.Notes, Schema: results.Schema}
	for _, r := range []struct {
		role, name, col string
		f               *results.File
	}{{"base", o.BaseName, colBase, b}, {"candidate", o.CandidateName, colCandidate, k}} {
		run := compareRun{Role: r.role, Name: filepath.Base(r.name), Path: r.name, Kind: r.f.Kind, Target: r.f.Target, Tape: r.f.Tape,
			Window: fmt.Sprintf("%s at %.1f req/s", r.f.Window.Spec, r.f.Window.RPS), Verdict: r.f.Verdict, Color: r.col}
		if !r.f.StartedAt.IsZero() {
			run.Started = r.f.StartedAt.UTC().Format(dateLayout)
		}
		p.Runs = append(p.Runs, run)
	}
	reg := c.Regressions()
	p.Status, p.Headline = "pass", fmt.Sprintf("No regression (%d checks)", len(c.Checks))
	if len(reg) > 0 {
		p.Status, p.Headline = "fail", fmt.Sprintf("%d regressions (%d checks)", len(reg), len(c.Checks))
		if len(reg) == 1 {
			p.Headline = fmt.Sprintf("1 regression (%d checks)", len(c.Checks))
		}
		// The first few, the run's own first: all are in the checks.
		const shown = 6
		for i, ch := range reg {
			if i == shown {
				p.Regressions = append(p.Regressions, fmt.Sprintf("and %d more, in the checks below", len(reg)-shown))
				break
			}
			p.Regressions = append(p.Regressions, fmt.Sprintf("%s %s: %s", ch.Scope, ch.Name, ch.Detail))
		}
	}
	p.Cards = compareCards(c)
	p.Charts = compareCharts(c)
	dist, err := compareDistribution(c)
	if err != nil {
		return nil, err
	}
	if dist != nil {
		p.Charts = append(p.Charts, *dist)
	}
	for _, pr := range c.Pairs {
		bs, ks := pr.Base, pr.Candidate
		row := compareStep{Label: bs.Label(),
			AchievedBase: fmt.Sprintf("%.1f", bs.AchievedRPS), AchievedCand: fmt.Sprintf("%.1f", ks.AchievedRPS),
			P50Base: bs.LatencyMS.Text("p50"), P50Cand: ks.LatencyMS.Text("p50"),
			P99Base: bs.LatencyMS.Text("p99"), P99Cand: ks.LatencyMS.Text("p99"), P99Change: latChange(bs.LatencyMS, ks.LatencyMS, "p99"),
			ErrorsBase: pct(bs.ErrorRate), ErrorsCand: pct(ks.ErrorRate),
			SLOsBase: passText(bs), SLOsCand: passText(ks), Result: c.scopeResult(bs.Label())}
		if strings.HasPrefix(row.Result, "REGRESSION") {
			row.Class = "bad"
		}
		p.Steps = append(p.Steps, row)
	}
	for _, ch := range c.Checks {
		row := compareCheck{Scope: ch.Scope, Name: ch.Name, Base: ch.Base, Candidate: ch.Candidate, Change: ch.Change, Limit: ch.Limit, Result: result(ch)}
		switch {
		case ch.Failed:
			row.Result, row.Class = "REGRESSION: "+ch.Detail, "bad"
		case ch.Skipped != "":
			row.Class = "muted"
		}
		p.Checks = append(p.Checks, row)
	}
	return p, nil
}

func compareCards(c *Comparison) []compareCard {
	b, k := c.Base, c.Candidate
	capRPS := func(f *results.File) string {
		s := fmt.Sprintf("%.1f req/s", f.Capacity.RPS)
		if !f.Capacity.Reached {
			s = "≥ " + s
		}
		return s
	}
	cs := []compareCard{
		{Label: "Capacity", Base: capRPS(b), Candidate: capRPS(k), Change: fmt.Sprintf("%gx → %gx the window's rate", b.Capacity.Scale, k.Capacity.Scale)},
		{Label: "Breaking point", Base: breakingText(b), Candidate: breakingText(k)},
		{Label: "Last good", Base: scaleOrNone(highestPassed(b)), Candidate: scaleOrNone(highestPassed(k))},
	}
	if b.Capacity.RPS > 0 {
		cs[0].Change = signedPct((k.Capacity.RPS-b.Capacity.RPS)/b.Capacity.RPS) + "; " + cs[0].Change
	}
	if highestPassed(k) < highestPassed(b) {
		cs[2].Class = "bad"
	}
	for _, ch := range c.Checks {
		if ch.Scope != "run" || !ch.Failed {
			continue
		}
		for i := range cs {
			if strings.EqualFold(cs[i].Label, ch.Name) {
				cs[i].Class = "bad"
			}
		}
	}
	// p99 at the highest scale both runs held: the latency a release
	// ships with at its working load.
	for i := len(c.Pairs) - 1; i >= 0; i-- {
		pr := c.Pairs[i]
		if skipPair(pr) == "" && pr.Base.Passed {
			card := compareCard{Label: "p99 at " + pr.Base.Label(), Base: pr.Base.LatencyMS.Text("p99"), Candidate: pr.Candidate.LatencyMS.Text("p99"),
				Change: latChange(pr.Base.LatencyMS, pr.Candidate.LatencyMS, "p99")}
			if strings.Contains(c.scopeResult(pr.Base.Label()), "p99") {
				card.Class = "bad"
			}
			cs = append(cs, card)
			break
		}
	}
	return cs
}

func scaleOrNone(k float64) string {
	if k <= 0 {
		return "none"
	}
	return fmt.Sprintf("%gx", k)
}

// compareCharts draws both runs on the same axes: throughput and p99 by
// scale, the capacity curve, and the error rate by scale.
func compareCharts(c *Comparison) []figure {
	bs, ks := stepsByScale(c.Base), stepsByScale(c.Candidate)
	if len(bs)+len(ks) == 0 {
		return nil
	}
	slos, _ := results.ParseSLOs(c.Candidate.Params.SLOs)
	runs := []struct {
		name, col string
		dash      bool
		steps     []*results.Step
		f         *results.File
	}{{"base", colBase, true, bs, c.Base}, {"candidate", colCandidate, false, ks, c.Candidate}}
	scaleAxis := chart.Axis{Label: "scale (multiple of the window's rate)", Format: scaleFormat, Pad: true}

	thr := &chart.Chart{ID: "cmp-throughput", Label: "Achieved throughput by scale, both runs", X: scaleAxis,
		Y: chart.Axis{Label: "requests per second", Zero: true}}
	lat := &chart.Chart{ID: "cmp-latency", Label: "p99 latency by scale, both runs", X: scaleAxis,
		Y: chart.Axis{Label: "latency (ms, log scale)", Log: true}, Empty: "no latencies recorded", Rules: latencyRules(slos, false)}
	curve := &chart.Chart{ID: "cmp-capacity", Label: "Latency against achieved throughput, both runs",
		X:     chart.Axis{Label: "achieved throughput (successful responses per second)", Zero: true, Pad: true},
		Y:     chart.Axis{Label: "p99 latency (ms, log scale)", Log: true},
		Empty: "no latencies recorded", Rules: latencyRules(slos, false)}
	errs := &chart.Chart{ID: "cmp-errors", Label: "Error rate by scale, both runs", X: scaleAxis,
		Y: chart.Axis{Label: "% of requests sent", Zero: true}}
	for _, s := range slos {
		if s.Route == "" && s.Metric == "errors" {
			errs.Rules = append(errs.Rules, chart.Rule{V: 100 * s.Bound, Label: "SLO " + s.Text, Color: colBad, Dash: true})
		}
	}
	offered := chart.Series{Name: "offered", Color: "#cbd5e1", Dash: true}
	for _, r := range runs {
		a := chart.Series{Name: r.name + " achieved", Color: r.col, Dash: r.dash, Markers: true}
		p99 := chart.Series{Name: r.name + " p99", Color: r.col, Dash: r.dash, Markers: true}
		cv := chart.Series{Name: r.name, Color: r.col, Dash: r.dash, Markers: true}
		e := chart.Series{Name: r.name + " errors", Color: r.col, Dash: r.dash, Markers: true}
		for _, st := range r.steps {
			tip := func(what string) string { return fmt.Sprintf("%s %s: %s%s", r.name, st.Label(), what, limitedTip(st)) }
			a.Points = append(a.Points, chart.Point{X: st.Scale, Y: st.AchievedRPS, Hollow: st.Generator.Limited,
				Tip: tip(fmt.Sprintf("achieved %.1f of %.1f req/s", st.AchievedRPS, st.OfferedRPS))})
			p99.Points = append(p99.Points, chart.Point{X: st.Scale, Y: st.LatencyMS.P99, Hollow: st.Generator.Limited, Tip: tip("p99 " + st.LatencyMS.Text("p99"))})
			cv.Points = append(cv.Points, chart.Point{X: st.AchievedRPS, Y: st.LatencyMS.P99, Hollow: st.Generator.Limited, Label: st.Label(),
				Tip: tip(fmt.Sprintf("p99 %s at %.1f req/s achieved", st.LatencyMS.Text("p99"), st.AchievedRPS))})
			e.Points = append(e.Points, chart.Point{X: st.Scale, Y: 100 * st.ErrorRate, Hollow: st.Generator.Limited,
				Tip: tip(fmt.Sprintf("errors %s (%d of %d)", pct(st.ErrorRate), st.Errors, st.Sent))})
			if r.name == "candidate" {
				offered.Points = append(offered.Points, chart.Point{X: st.Scale, Y: st.OfferedRPS})
			}
		}
		thr.Series = append(thr.Series, a)
		lat.Series = append(lat.Series, p99)
		curve.Series = append(curve.Series, cv)
		errs.Series = append(errs.Series, e)
		if f := r.f; f.Capacity.RPS > 0 {
			label := fmt.Sprintf("%s capacity %.1f req/s", r.name, f.Capacity.RPS)
			if !f.Capacity.Reached {
				label = fmt.Sprintf("%s ≥ %.1f req/s", r.name, f.Capacity.RPS)
			}
			thr.Rules = append(thr.Rules, chart.Rule{V: f.Capacity.RPS, Label: label, Color: r.col, Dash: true})
			curve.Rules = append(curve.Rules, chart.Rule{Vertical: true, V: f.Capacity.RPS, Label: label, Color: r.col, Dash: true})
		}
		if bp := r.f.BreakingPoint; bp != nil {
			rule := chart.Rule{Vertical: true, V: bp.Scale, Label: fmt.Sprintf("%s breaks at %gx", r.name, bp.Scale), Color: r.col, Dash: r.dash}
			thr.Rules = append(thr.Rules, rule)
			lat.Rules = append(lat.Rules, rule)
			errs.Rules = append(errs.Rules, rule)
		}
	}
	thr.Series = append([]chart.Series{offered}, thr.Series...)
	hollow := hollowNote(append(append([]*results.Step{}, bs...), ks...))
	return []figure{
		{Title: "Throughput by scale", SVG: template.HTML(thr.SVG()),
			Caption: "Successful responses per second each run achieved at each multiple of its window's rate, with the candidate's offered rate and each run's capacity. The candidate's line below the base's where both are saturated is capacity lost." + hollow},
		{Title: "Latency against throughput", SVG: template.HTML(curve.SVG()),
			Caption: "Both capacity curves: p99 at the throughput each step achieved, in absolute units. The candidate's curve turning up left of the base's is capacity lost; above it at the same throughput, latency added."},
		{Title: "p99 by scale", SVG: template.HTML(lat.SVG()),
			Caption: "p99 of both runs at each multiple, latency measured from each request's due time. The dashed horizontal line is the candidate's latency SLO."},
		{Title: "Errors by scale", SVG: template.HTML(errs.SVG()),
			Caption: "Errors (connection failures, timeouts, resets, 5xx) over requests sent, both runs."},
	}
}

// compareDistribution overlays both runs' latency distributions at the
// highest scale both ran and both drove (herd not the limit), or nil.
func compareDistribution(c *Comparison) (*figure, error) {
	for i := len(c.Pairs) - 1; i >= 0; i-- {
		pr := c.Pairs[i]
		if skipPair(pr) != "" {
			continue
		}
		ch := percentileChart("cmp-distribution", "Latency by percentile at "+pr.Base.Label()+", both runs")
		ch.Width, ch.Height = 1280, 320
		maxX := 10.0
		for _, r := range []struct {
			name, col string
			dash      bool
			st        *results.Step
		}{{"base", colBase, true, pr.Base}, {"candidate", colCandidate, false, pr.Candidate}} {
			s, x, err := percentileSeries(r.name+" "+r.st.Label(), r.st.Histograms.Latency, r.col, r.dash)
			if err != nil {
				return nil, fmt.Errorf("%s step %s: %w", r.name, r.st.Label(), err)
			}
			ch.Series = append(ch.Series, s)
			maxX = max(maxX, x)
		}
		ch.X.Max = percentileAxisMax(maxX)
		return &figure{Title: "Latency by percentile at " + pr.Base.Label(), Wide: true, SVG: template.HTML(ch.SVG()),
			Caption: "Both runs' latency distributions at the highest multiple both ran with herd able to drive it, on HdrHistogram's axis: each step to the right is ten times rarer. The gap between the lines is where the candidate is slower or faster, from the median to the tail."}, nil
	}
	return nil, nil
}
