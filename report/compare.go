package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
)

// CompareMetrics are the metrics a regression bound can name: latency
// percentiles (and the maximum and mean) of the whole step and of each
// route, and the error and mismatch rates.
var CompareMetrics = []string{"p50", "p90", "p95", "p99", "p999", "max", "mean", "errors", "mismatches"}

// CompareOptions are the bounds of a comparison.
type CompareOptions struct {
	// BaseName and CandidateName label the two runs (their file names).
	BaseName, CandidateName string
	// MaxRegression bounds how much worse the candidate may be, per
	// metric: a latency metric as a fraction of the base's value (0.1:
	// 10% slower), errors and mismatches as a rise of their rate in
	// absolute terms (0.01: one percentage point).
	MaxRegression map[string]float64
	// MaxCapacityDrop bounds the fall of capacity (req/s) as a fraction of
	// the base's; negative turns the check off.
	MaxCapacityDrop float64
	// LatencySlackMS: a latency that rose by less than this is never a
	// regression, whatever the percentage (on a fast target, 0.3 ms to
	// 0.4 ms is noise, not 33% worse).
	LatencySlackMS float64
	// RouteMinRequests: a route is checked at a scale only when it had at
	// least this many requests there in both runs; a p99 of a few dozen
	// requests is the slowest one or two of them, noise.
	RouteMinRequests int64
}

// DefaultCompareOptions are herd report compare's defaults: p99 10%
// slower, errors one percentage point up, capacity 10% down, 1 ms of
// slack, routes with 200 requests.
func DefaultCompareOptions() CompareOptions {
	return CompareOptions{
		MaxRegression:    map[string]float64{"p99": 0.10, "errors": 0.01},
		MaxCapacityDrop:  0.10,
		LatencySlackMS:   1,
		RouteMinRequests: 200,
	}
}

// Check is one comparison of the base and the candidate.
type Check struct {
	// Scope is what was compared: "run", a step ("2x"), or a route at a
	// step ("2x GET /login").
	Scope string
	// Name is the metric: "capacity", "breaking point", "SLOs", "p99"...
	Name            string
	Base, Candidate string
	// Change is the candidate relative to the base: "+12.3%", "+0.5 pp".
	Change string
	// Limit is the bound the change was held to.
	Limit string
	// Failed marks a regression; Detail explains it.
	Failed bool
	Detail string
	// Skipped says why the check could not be made.
	Skipped string
}

// Comparison is the result of Compare.
type Comparison struct {
	Options         CompareOptions
	Base, Candidate *results.File
	// Pairs are the steps of both runs matched by scale, rising.
	Pairs []StepPair
	// OnlyBase and OnlyCandidate name the steps with no match.
	OnlyBase, OnlyCandidate []string
	Checks                  []Check
	// Notes are differences between the runs a reader should know of.
	Notes []string
}

// StepPair is one scale that both runs ran.
type StepPair struct {
	Base, Candidate *results.Step
}

// Compare holds the candidate run against the base. Steps are matched by
// scale (for a scale run twice, the later step, which replaced one herd
// could not drive), routes by method and route template. A step where
// herd itself was the limit, or which was stopped, is not compared. The
// checks: the run's capacity and breaking point, every matched step's SLO
// outcome (passed in base, failed in candidate is a regression) and its
// bounded metrics, and the same metrics for every route with enough
// requests in both runs.
func Compare(base, cand *results.File, o CompareOptions) *Comparison {
	c := &Comparison{Options: o, Base: base, Candidate: cand}
	c.notes()
	c.runChecks()
	bs, cs := stepsByScale(base), stepsByScale(cand)
	for _, b := range bs {
		if m := matchScale(cs, b.Scale); m != nil {
			c.Pairs = append(c.Pairs, StepPair{b, m})
		} else {
			c.OnlyBase = append(c.OnlyBase, b.Label())
		}
	}
	for _, s := range cs {
		if matchScale(bs, s.Scale) == nil {
			c.OnlyCandidate = append(c.OnlyCandidate, s.Label())
		}
	}
	for _, p := range c.Pairs {
		c.stepChecks(p)
	}
	for _, p := range c.Pairs {
		c.routeChecks(p)
	}
	return c
}

func matchScale(steps []*results.Step, k float64) *results.Step {
	for _, s := range steps {
		if math.Abs(s.Scale-k) < 1e-9 {
			return s
		}
	}
	return nil
}

// Regressions are the failed checks.
func (c *Comparison) Regressions() []Check {
	var out []Check
	for _, ch := range c.Checks {
		if ch.Failed {
			out = append(out, ch)
		}
	}
	return out
}

func (c *Comparison) notes() {
	b, k := c.Base, c.Candidate
	if b.Window.Spec != k.Window.Spec || math.Abs(b.Window.RPS-k.Window.RPS) > 0.01*math.Max(b.Window.RPS, k.Window.RPS) {
		c.Notes = append(c.Notes, fmt.Sprintf("the runs replayed different windows (%s at %.1f req/s, %s at %.1f req/s): scales are multiples of each run's own window",
			b.Window.Spec, b.Window.RPS, k.Window.Spec, k.Window.RPS))
	}
	if strings.Join(b.Params.SLOs, " ") != strings.Join(k.Params.SLOs, " ") || b.Params.Saturation != k.Params.Saturation {
		c.Notes = append(c.Notes, fmt.Sprintf("the runs were held to different SLOs (%s; %s): a step's pass or fail compares different objectives",
			strings.Join(b.Params.SLOs, ", "), strings.Join(k.Params.SLOs, ", ")))
	}
	if b.Params.ScaleMode != k.Params.ScaleMode || b.Params.Pacing != k.Params.Pacing {
		c.Notes = append(c.Notes, fmt.Sprintf("the runs scaled differently (%s/%s, %s/%s)", b.Params.ScaleMode, b.Params.Pacing, k.Params.ScaleMode, k.Params.Pacing))
	}
}

func (c *Comparison) runChecks() {
	b, k, o := c.Base, c.Candidate, c.Options
	if o.MaxCapacityDrop >= 0 && len(b.Steps) > 0 && len(k.Steps) > 0 {
		ch := Check{Scope: "run", Name: "capacity", Base: capacityText(b), Candidate: capacityText(k),
			Limit: fmt.Sprintf("-%s", results.FmtPct(o.MaxCapacityDrop))}
		switch {
		case b.Capacity.RPS <= 0:
			ch.Skipped = "the base run completed no successful response"
		default:
			drop := (b.Capacity.RPS - k.Capacity.RPS) / b.Capacity.RPS
			ch.Change = signedPct(-drop)
			if drop > o.MaxCapacityDrop+1e-12 {
				if k.Capacity.Reached {
					ch.Failed = true
					ch.Detail = fmt.Sprintf("capacity fell from %.1f to %.1f req/s (%s), more than %s", b.Capacity.RPS, k.Capacity.RPS, ch.Change, results.FmtPct(o.MaxCapacityDrop))
				} else {
					ch.Skipped = fmt.Sprintf("the candidate never saturated the target: its capacity is at least %.1f req/s, so a drop is not shown", k.Capacity.RPS)
				}
			}
		}
		c.Checks = append(c.Checks, ch)
	}
	if b.Aborted || k.Aborted {
		c.Checks = append(c.Checks, Check{Scope: "run", Name: "breaking point", Skipped: "an emergency stop ended a run"})
		return
	}
	ch := Check{Scope: "run", Name: "breaking point", Base: breakingText(b), Candidate: breakingText(k)}
	switch kb, bb := k.BreakingPoint, b.BreakingPoint; {
	case kb == nil:
	case bb != nil && kb.Scale < bb.Scale-1e-9:
		ch.Failed = true
		ch.Detail = fmt.Sprintf("the candidate breaks at %gx, the base at %gx", kb.Scale, bb.Scale)
	case bb == nil:
		if held := highestPassed(b); held >= kb.Scale-1e-9 {
			ch.Failed = true
			ch.Detail = fmt.Sprintf("the candidate breaks at %gx; the base held %gx", kb.Scale, held)
		} else if held > 0 && kb.Scale > held {
			ch.Skipped = fmt.Sprintf("the candidate breaks at %gx, above the %gx the base reached", kb.Scale, held)
		}
	}
	c.Checks = append(c.Checks, ch)
}

func highestPassed(f *results.File) float64 {
	h := 0.0
	for i := range f.Steps {
		if st := &f.Steps[i]; st.Passed && !st.Generator.Limited {
			h = max(h, st.Scale)
		}
	}
	return h
}

// unusable says why a step cannot be compared, or "".
func unusable(st *results.Step) string {
	switch {
	case st.Generator.Limited:
		return "herd itself was the limit"
	case st.Aborted:
		return "an emergency stop ended it"
	case st.Interrupted:
		return "it was interrupted"
	case st.Sent == 0:
		return "no request was sent"
	}
	return ""
}

func (c *Comparison) stepChecks(p StepPair) {
	scope := p.Base.Label()
	if why := skipPair(p); why != "" {
		c.Checks = append(c.Checks, Check{Scope: scope, Name: "SLOs", Skipped: why})
		return
	}
	ch := Check{Scope: scope, Name: "SLOs", Base: passText(p.Base), Candidate: passText(p.Candidate)}
	if p.Base.Passed && !p.Candidate.Passed {
		ch.Failed = true
		ch.Detail = "passed in the base run, failed in the candidate: " + strings.Join(p.Candidate.Violations, "; ")
	}
	c.Checks = append(c.Checks, ch)
	c.metricChecks(scope, figures{p.Base.LatencyMS, p.Base.ErrorRate, p.Base.MismatchRate},
		figures{p.Candidate.LatencyMS, p.Candidate.ErrorRate, p.Candidate.MismatchRate})
}

func skipPair(p StepPair) string {
	if why := unusable(p.Base); why != "" {
		return "not compared: in the base run, " + why
	}
	if why := unusable(p.Candidate); why != "" {
		return "not compared: in the candidate run, " + why
	}
	return ""
}

func (c *Comparison) routeChecks(p StepPair) {
	if skipPair(p) != "" {
		return
	}
	for i := range p.Base.Routes {
		rb := &p.Base.Routes[i]
		rc := findRoute(p.Candidate, rb.Method, rb.Route)
		if rc == nil || rb.Sent < c.Options.RouteMinRequests || rc.Sent < c.Options.RouteMinRequests {
			continue
		}
		scope := p.Base.Label() + " " + rb.Method + " " + rb.Route
		c.metricChecks(scope, figures{rb.LatencyMS, rb.ErrorRate, results.Fraction(rb.Mismatches, rb.Completed)},
			figures{rc.LatencyMS, rc.ErrorRate, results.Fraction(rc.Mismatches, rc.Completed)})
	}
}

// figures are what metricChecks compares.
type figures struct {
	lat                results.Percentiles
	errors, mismatches float64
}

func (c *Comparison) metricChecks(scope string, b, k figures) {
	for _, m := range CompareMetrics {
		lim, ok := c.Options.MaxRegression[m]
		if !ok {
			continue
		}
		ch := Check{Scope: scope, Name: m}
		if m == "errors" || m == "mismatches" {
			bv, kv := b.errors, k.errors
			if m == "mismatches" {
				bv, kv = b.mismatches, k.mismatches
			}
			ch.Base, ch.Candidate, ch.Limit = pct(bv), pct(kv), "+"+pp(lim)
			ch.Change = signedPP(kv - bv)
			if kv-bv > lim+1e-12 {
				ch.Failed = true
				ch.Detail = fmt.Sprintf("%s rose from %s to %s (%s), more than %s", m, pct(bv), pct(kv), ch.Change, pp(lim))
			}
			c.Checks = append(c.Checks, ch)
			continue
		}
		bv, _ := b.lat.Metric(m)
		kv, _ := k.lat.Metric(m)
		ch.Base, ch.Candidate, ch.Limit = b.lat.Text(m), k.lat.Text(m), "+"+results.FmtPct(lim)
		switch {
		case b.lat.None || bv <= 0:
			ch.Skipped = "no latency in the base run"
		case k.lat.None:
			// No response came back: not a latency of 0, not an improvement.
			ch.Skipped = "no latency in the candidate run"
		default:
			ch.Change = signedPct((kv - bv) / bv)
			if kv > bv*(1+lim)+1e-9 && kv-bv >= c.Options.LatencySlackMS {
				ch.Failed = true
				ch.Detail = fmt.Sprintf("%s rose from %s to %s (%s), more than %s", m, ms(bv), ms(kv), ch.Change, results.FmtPct(lim))
			}
		}
		c.Checks = append(c.Checks, ch)
	}
}

// WriteText writes the comparison as tables: the run, the steps side by
// side, the checked routes, then the regressions.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	o := c.Options
	fmt.Fprintf(&b, "herd report compare: %s (base) vs %s (candidate)\n", o.BaseName, o.CandidateName)
	for _, r := range []struct {
		name string
		f    *results.File
	}{{"base", c.Base}, {"candidate", c.Candidate}} {
		fmt.Fprintf(&b, "%-9s  %s of %s against %s, window %s at %.1f req/s", r.name, r.f.Kind, r.f.Tape, r.f.Target, r.f.Window.Spec, r.f.Window.RPS)
		if !r.f.StartedAt.IsZero() {
			fmt.Fprintf(&b, ", %s", r.f.StartedAt.UTC().Format("2006-01-02 15:04 MST"))
		}
		b.WriteString("\n")
	}
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "note       %s\n", n)
	}
	b.WriteString("\n")
	run := &textfmt.Table{}
	run.Add("", "base", "candidate", "change", "limit", "result")
	for _, ch := range c.Checks {
		if ch.Scope == "run" {
			run.Add(ch.Name, ch.Base, ch.Candidate, ch.Change, ch.Limit, result(ch))
		}
	}
	b.WriteString(run.String())

	metrics := []string{"p50", "p99"}
	for _, m := range CompareMetrics {
		if _, ok := o.MaxRegression[m]; ok && !slices.Contains(metrics, m) && m != "errors" && m != "mismatches" {
			metrics = append(metrics, m)
		}
	}
	rates := []string{"errors"}
	if _, ok := o.MaxRegression["mismatches"]; ok {
		rates = append(rates, "mismatches")
	}
	if len(c.Pairs) > 0 {
		b.WriteString("\n")
		t := &textfmt.Table{Right: map[int]bool{}}
		head := []string{"scale", "achieved/s", "→"}
		for _, m := range append(append([]string{}, metrics...), rates...) {
			head = append(head, m, "→", "change")
		}
		head = append(head, "SLOs", "→", "result")
		for i := 0; i < len(head)-1; i++ {
			t.Right[i] = i > 0
		}
		t.Add(head...)
		for _, p := range c.Pairs {
			row := []string{p.Base.Label(), fmt.Sprintf("%.1f", p.Base.AchievedRPS), fmt.Sprintf("%.1f", p.Candidate.AchievedRPS)}
			for _, m := range metrics {
				row = append(row, p.Base.LatencyMS.Text(m), p.Candidate.LatencyMS.Text(m), latChange(p.Base.LatencyMS, p.Candidate.LatencyMS, m))
			}
			for _, m := range rates {
				bv, kv := p.Base.ErrorRate, p.Candidate.ErrorRate
				if m == "mismatches" {
					bv, kv = p.Base.MismatchRate, p.Candidate.MismatchRate
				}
				row = append(row, pct(bv), pct(kv), signedPP(kv-bv))
			}
			row = append(row, passText(p.Base), passText(p.Candidate), c.scopeResult(p.Base.Label()))
			t.Add(row...)
		}
		b.WriteString(t.String())
	}
	if len(c.OnlyBase) > 0 {
		fmt.Fprintf(&b, "only in base: %s\n", strings.Join(c.OnlyBase, ", "))
	}
	if len(c.OnlyCandidate) > 0 {
		fmt.Fprintf(&b, "only in candidate: %s\n", strings.Join(c.OnlyCandidate, ", "))
	}
	c.writeRoutes(&b)
	reg := c.Regressions()
	b.WriteString("\n")
	if len(reg) == 0 {
		fmt.Fprintf(&b, "no regression (%d checks)\n", len(c.Checks))
	} else {
		fmt.Fprintf(&b, "%d regressions (%d checks):\n", len(reg), len(c.Checks))
		for _, ch := range reg {
			fmt.Fprintf(&b, "  %s %s: %s\n", ch.Scope, ch.Name, ch.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRoutes lists every route of every matched step side by side; the
// routes that were checked (enough requests) carry the check's result.
func (c *Comparison) writeRoutes(b *strings.Builder) {
	t := &textfmt.Table{Right: map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true, 10: true, 11: true}}
	t.Add("scale", "method", "route", "requests", "→", "p99", "→", "change", "errors", "→", "change", "result")
	n := 0
	for _, p := range c.Pairs {
		for i := range p.Base.Routes {
			rb := &p.Base.Routes[i]
			rc := findRoute(p.Candidate, rb.Method, rb.Route)
			if rc == nil {
				continue
			}
			res := fmt.Sprintf("not checked: under %d requests", c.Options.RouteMinRequests)
			if rb.Sent >= c.Options.RouteMinRequests && rc.Sent >= c.Options.RouteMinRequests {
				res = c.scopeResult(p.Base.Label() + " " + rb.Method + " " + rb.Route)
			}
			if why := skipPair(p); why != "" {
				res = why
			}
			t.Add(p.Base.Label(), rb.Method, rb.Route, fmt.Sprint(rb.Sent), fmt.Sprint(rc.Sent),
				rb.LatencyMS.Text("p99"), rc.LatencyMS.Text("p99"), latChange(rb.LatencyMS, rc.LatencyMS, "p99"),
				pct(rb.ErrorRate), pct(rc.ErrorRate), signedPP(rc.ErrorRate-rb.ErrorRate), res)
			n++
		}
	}
	if n > 0 {
		b.WriteString("\nroutes\n")
		b.WriteString(t.String())
	}
}

// scopeResult sums up the checks of one scope: ok, the regressions, or
// why it was skipped.
func (c *Comparison) scopeResult(scope string) string {
	var failed, skipped []string
	for _, ch := range c.Checks {
		if ch.Scope != scope {
			continue
		}
		switch {
		case ch.Failed:
			failed = append(failed, strings.TrimSpace(ch.Name+" "+ch.Change))
		case ch.Skipped != "":
			skipped = append(skipped, ch.Skipped)
		}
	}
	switch {
	case len(failed) > 0:
		return "REGRESSION: " + strings.Join(failed, ", ")
	case len(skipped) > 0:
		return strings.Join(skipped, "; ")
	}
	return "ok"
}

func result(ch Check) string {
	switch {
	case ch.Failed:
		return "REGRESSION"
	case ch.Skipped != "":
		return "not checked: " + ch.Skipped
	}
	return "ok"
}

// WriteJUnit writes the checks as JUnit XML, one test case per check, for
// CI systems that show test reports: a regression is a failure, a check
// that could not be made is skipped.
func (c *Comparison) WriteJUnit(w io.Writer) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type skipped struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      string   `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Skipped   *skipped `xml:"skipped,omitempty"`
		SystemOut string   `xml:"system-out,omitempty"`
	}
	type property struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	type testsuite struct {
		Name       string     `xml:"name,attr"`
		Tests      int        `xml:"tests,attr"`
		Failures   int        `xml:"failures,attr"`
		Errors     int        `xml:"errors,attr"`
		Skipped    int        `xml:"skipped,attr"`
		Time       string     `xml:"time,attr"`
		Properties []property `xml:"properties>property"`
		Cases      []testcase `xml:"testcase"`
	}
	type testsuites struct {
		XMLName  xml.Name    `xml:"testsuites"`
		Name     string      `xml:"name,attr"`
		Tests    int         `xml:"tests,attr"`
		Failures int         `xml:"failures,attr"`
		Errors   int         `xml:"errors,attr"`
		Skipped  int         `xml:"skipped,attr"`
		Suites   []testsuite `xml:"testsuite"`
	}
	s := testsuite{Name: "herd report compare", Time: "0", Properties: []property{
		{"base", c.Options.BaseName}, {"candidate", c.Options.CandidateName},
		{"base.verdict", c.Base.Verdict}, {"candidate.verdict", c.Candidate.Verdict},
	}}
	for _, ch := range c.Checks {
		tc := testcase{Name: ch.Name, Classname: "herd.compare." + ch.Scope, Time: "0", SystemOut: ch.summary()}
		switch {
		case ch.Failed:
			tc.Failure = &failure{Message: ch.Detail, Type: "regression", Text: tc.SystemOut}
			s.Failures++
		case ch.Skipped != "":
			tc.Skipped = &skipped{Message: ch.Skipped}
			s.Skipped++
		}
		s.Cases = append(s.Cases, tc)
		s.Tests++
	}
	doc := testsuites{Name: "herd", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Suites: []testsuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// summary is the check's figures in one line.
func (ch Check) summary() string {
	var parts []string
	for _, p := range [][2]string{{"base", ch.Base}, {"candidate", ch.Candidate}, {"change", ch.Change}, {"limit", ch.Limit}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	return strings.Join(parts, ", ")
}

func capacityText(f *results.File) string {
	s := fmt.Sprintf("%.1f req/s (%gx)", f.Capacity.RPS, f.Capacity.Scale)
	if !f.Capacity.Reached {
		s = "≥ " + s
	}
	return s
}

func breakingText(f *results.File) string {
	bp := f.BreakingPoint
	if bp == nil {
		if h := highestPassed(f); h > 0 {
			return fmt.Sprintf("none up to %gx", h)
		}
		return "none"
	}
	return fmt.Sprintf("%gx", bp.Scale)
}

func passText(st *results.Step) string {
	switch {
	case unusable(st) != "":
		return "n/a"
	case st.Passed:
		return "pass"
	}
	return "FAIL"
}

// latChange is relChange of the latency metric m, nothing when either run
// has no latency (no response came back): that is not a change of -100%.
func latChange(b, k results.Percentiles, m string) string {
	if b.None || k.None {
		return ""
	}
	bv, _ := b.Metric(m)
	kv, _ := k.Metric(m)
	return relChange(bv, kv)
}

func relChange(b, k float64) string {
	if b <= 0 {
		return ""
	}
	return signedPct((k - b) / b)
}

func signedPct(f float64) string {
	v := math.Round(1000*f) / 10
	if v == 0 {
		v = 0 // not -0
	}
	return fmt.Sprintf("%+.1f%%", v)
}

func signedPP(f float64) string { return fmt.Sprintf("%+.2f pp", 100*f) }

func pp(f float64) string { return fmt.Sprintf("%.2g pp", 100*f) }
