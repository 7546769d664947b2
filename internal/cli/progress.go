package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
	"github.com/herd-replay/herd/replay"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressView shows a running replay or ramp on stderr. On a terminal it
// draws a live frame through mpb: the ramp's line with the breaking point
// so far, and a bar and figures per step, a finished step frozen with its
// own final figures and verdict. Elsewhere (a log, or a terminal that
// reports no size) it prints a status line every few seconds, the live
// verdict when it changes, and each step's outcome.
//
// What is shown is a liveState, built from the run's events alone; a
// frame is a pure function of it and the terminal's width (frame), which
// is what the tests check. mpb draws the frame from its own goroutine,
// reading the state under mu; so mpb itself is never called with mu held.
type progressView struct {
	io    IO
	every time.Duration
	p     *mpb.Progress // nil: status lines
	bar   *mpb.Bar      // the one mpb bar, which draws the whole frame
	now   func() time.Time

	mu       sync.Mutex
	state    liveState
	rest     []string // the frame's lines after the first, from fill to extend
	lastLine time.Time
	said     string // status lines: the live verdict last printed
	saidRamp string // status lines: the ramp's outcome last printed
}

// newProgressView shows progress on io.Err, holding each step to slos as
// it runs.
func newProgressView(io IO, every time.Duration, slos []results.SLO) *progressView {
	width := 0
	if io.ErrTTY {
		width = terminalWidth(io.Err)
	}
	return newProgressViewWidth(io, every, slos, width)
}

// newProgressViewWidth is newProgressView on a terminal width columns wide;
// a width of 0 (a terminal that reports its size as 0×0, as some CI
// runners and script(1) do) gets status lines, as a log does: mpb would
// draw nothing at all there.
func newProgressViewWidth(io IO, every time.Duration, slos []results.SLO, width int) *progressView {
	v := &progressView{io: io, every: every, now: time.Now, state: liveState{slos: slos}}
	if io.ErrTTY && width > 0 {
		// ErrTTY decided there is a terminal: auto refresh makes mpb draw
		// to any writer (tests give a buffer), and WithWidth is the width
		// it assumes for a writer that is not a terminal.
		v.p = mpb.New(mpb.WithOutput(io.Err), mpb.WithWidth(width), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
		// Created without a total, the bar runs until Close completes it.
		v.bar = v.p.MustAdd(0, mpb.BarFillerFunc(v.fill), mpb.BarFillerTrim(),
			mpb.BarExtender(mpb.BarFillerFunc(v.extend), false))
	}
	return v
}

// terminalWidth is the width of the terminal w writes to: 0 when it
// reports none, and mpb's 80 columns for a writer that is not a file.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 80
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width < 0 {
		return 0
	}
	return width
}

// fill draws the frame's first line; extend the others, which fill kept.
func (v *progressView) fill(w io.Writer, st decor.Statistics) error {
	v.mu.Lock()
	lines := v.state.frame(st.AvailableWidth)
	v.rest = nil
	if len(lines) > 1 {
		v.rest = lines[1:]
	}
	v.mu.Unlock()
	if len(lines) > 0 {
		_, err := io.WriteString(w, lines[0])
		return err
	}
	return nil
}

func (v *progressView) extend(w io.Writer, _ decor.Statistics) error {
	v.mu.Lock()
	rest := v.rest
	v.mu.Unlock()
	for _, l := range rest {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// Ramp shows the ramp's line: steps done of total, and plan (the
// multiples it will try).
func (v *progressView) Ramp(total int, plan string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.state.ramp, v.state.total, v.state.plan = true, total, plan
}

// Step starts showing a new step.
func (v *progressView) Step(label string) {
	v.mu.Lock()
	v.state.startStep(label)
	v.lastLine, v.said = time.Now(), ""
	v.mu.Unlock()
	if v.p == nil {
		fmt.Fprintf(v.io.Err, "herd: %s: starting\n", label)
	}
}

// Update is replay's progress callback.
func (v *progressView) Update(p replay.Progress) {
	v.mu.Lock()
	s := v.state.current()
	if s == nil {
		v.mu.Unlock()
		return
	}
	s.update(p, v.state.slos, v.now())
	var lines []string
	if v.p == nil {
		if verdict := s.verdictText(); verdict != v.said {
			// The live verdict is news: printed as it changes.
			v.said = verdict
			if verdict != "" {
				lines = append(lines, fmt.Sprintf("herd: %s: failing so far: %s", s.label, verdict))
			} else {
				lines = append(lines, fmt.Sprintf("herd: %s: meeting its SLOs again", s.label))
			}
		}
		if !p.Done && time.Since(v.lastLine) >= v.every {
			v.lastLine = time.Now()
			lines = append(lines, fmt.Sprintf("herd: %s: %s  %s", s.label, s.clock(), strings.Join(s.liveFigures(), "  ")))
		}
	}
	v.mu.Unlock()
	for _, l := range lines {
		fmt.Fprintln(v.io.Err, l)
	}
}

// EndStep freezes the current step with its results.
func (v *progressView) EndStep(st *results.Step) {
	v.mu.Lock()
	s := v.state.current()
	if s == nil {
		v.mu.Unlock()
		return
	}
	s.final = st
	if st.Retry && !strings.HasSuffix(s.label, "(again)") {
		s.label += " (again)"
	}
	var lines []string
	if v.p == nil {
		lines = append(lines, fmt.Sprintf("herd: %s: %s  %s", s.label, s.outcomeText(), strings.Join(s.finalFigures(), "  ")))
		if v.state.ramp {
			if r := v.state.rampStatus(); r != v.saidRamp && strings.HasPrefix(r, "breaks") {
				v.saidRamp = r
				lines = append(lines, "herd: ramp: "+r)
			}
		}
	}
	v.mu.Unlock()
	for _, l := range lines {
		fmt.Fprintln(v.io.Err, l)
	}
}

// Close draws the last frame and waits for it to be drawn.
func (v *progressView) Close() {
	if v.p == nil {
		return
	}
	v.bar.SetTotal(-1, true)
	v.p.Wait()
}

// liveState is what the live view shows, made of the run's events alone:
// the ramp's plan, and each step's label, last snapshot, live verdict and
// final results.
type liveState struct {
	slos  []results.SLO
	ramp  bool
	total int
	plan  string
	steps []*liveStep
}

// liveStep is one step as the view knows it.
type liveStep struct {
	label string
	snap  replay.Progress
	seen  bool // a snapshot arrived
	// failing are the SLOs violated so far, judged on snap.Measured, and
	// route the route blamed.
	failing []string
	route   string
	// idleEnds is the wall time a long stretch with nothing due ends,
	// while the step is in one.
	idleEnds time.Time
	// final freezes the step: its own figures, as its results have them.
	final *results.Step
}

func (s *liveState) startStep(label string) {
	s.steps = append(s.steps, &liveStep{label: label})
}

// current is the step running, or nil.
func (s *liveState) current() *liveStep {
	if n := len(s.steps); n > 0 && s.steps[n-1].final == nil {
		return s.steps[n-1]
	}
	return nil
}

// update takes a snapshot, taken at now, and judges the SLOs on the
// measured period so far, as Evaluate will at the end. The saturation
// bound is judged at the end only: it needs the whole step's schedule.
func (st *liveStep) update(p replay.Progress, slos []results.SLO, now time.Time) {
	st.snap, st.seen = p, true
	st.failing, st.route = nil, ""
	st.idleEnds = time.Time{}
	if p.IdleUntil > p.Elapsed {
		st.idleEnds = now.Add(p.IdleUntil - p.Elapsed)
	}
	if p.Measured == nil || len(slos) == 0 {
		return
	}
	m := *p.Measured // Evaluate writes to the step; the snapshot is shared
	results.Evaluate(&m, slos, 0)
	st.failing, st.route = m.Violations, m.FailedRoute
}

// verdictText is the live verdict: the SLOs failing so far, and where.
func (st *liveStep) verdictText() string {
	if len(st.failing) == 0 {
		return ""
	}
	return strings.Join(st.failing, "; ") + routeNote(st.route)
}

// routeNote words the route a verdict blames: " · route /login", or what
// was found when no route stood out (" · none: all routes degraded
// together").
func routeNote(route string) string {
	switch {
	case route == "":
		return ""
	case strings.HasPrefix(route, "/") || strings.Contains(route, " /"):
		return " · route " + route
	}
	return " · " + route
}

// Glyphs of the frame.
const (
	glyphFail = "✗"
	glyphNote = "!"
	glyphNone = "—" // a figure not known yet
)

// frame lays out the view for a terminal width columns wide: the ramp's
// line, then each step's lines. No line is wider than width.
func (s *liveState) frame(width int) []string {
	width = max(width, 20)
	var out []string
	if s.ramp {
		line := fmt.Sprintf("ramp  %d/%d steps", s.done(), max(s.total, len(s.steps)))
		if s.plan != "" {
			line += "  " + s.plan
		}
		if r := s.rampStatus(); r != "" {
			line += "  ·  " + r
		}
		out = append(out, fit(line, width))
	}
	pad := 0
	for _, st := range s.steps {
		pad = max(pad, runes(st.label))
	}
	for _, st := range s.steps {
		out = append(out, st.lines(width, pad)...)
	}
	return out
}

func (s *liveState) done() int {
	n := 0
	for _, st := range s.steps {
		if st.final != nil {
			n++
		}
	}
	return n
}

// rampStatus is the ramp's outcome so far: where it broke (the lowest
// failing multiple) and what held (the highest passing one below it), the
// step failing now, or what held so far.
func (s *liveState) rampStatus() string {
	var breaks, holds float64
	stop := ""
	for _, st := range s.steps {
		f := st.final
		switch {
		case f == nil:
			continue
		case f.Aborted:
			stop = "emergency stop at " + f.Label()
		case f.Interrupted:
			stop = "interrupted at " + f.Label()
		case f.Generator.Limited:
			// Run again, the step may pass: only the last word counts.
			stop = "herd was the limit at " + f.Label()
		default:
			stop = ""
			if !f.Passed && (breaks == 0 || f.Scale < breaks) {
				breaks = f.Scale
			}
		}
	}
	for _, st := range s.steps {
		if f := st.final; f != nil && f.Passed && !f.Interrupted && !f.Generator.Limited && (breaks == 0 || f.Scale < breaks) {
			holds = max(holds, f.Scale)
		}
	}
	held := ""
	if holds > 0 {
		held = fmt.Sprintf("holds %gx", holds)
	}
	switch {
	case stop != "":
		return stop
	case breaks > 0 && holds > 0:
		return fmt.Sprintf("breaks at %gx, %s", breaks, held)
	case breaks > 0:
		return fmt.Sprintf("breaks at %gx, the first step", breaks)
	}
	if cur := s.current(); cur != nil && len(cur.failing) > 0 {
		if held != "" {
			held = ", " + held
		}
		return fmt.Sprintf("%gx failing so far%s", cur.snap.Scale, held)
	}
	if held != "" {
		return held + " so far"
	}
	return ""
}

// lines lays a step out: one line when everything fits, else a bar line
// and a figures line, then the verdict (live or final) when it failed.
// pad aligns the labels of all steps.
func (st *liveStep) lines(width, pad int) []string {
	label := st.label + strings.Repeat(" ", pad-runes(st.label))
	if st.final != nil {
		line := label + "  " + st.outcomeWord()
		line = addFigures(line, st.finalFigures(), width)
		out := []string{fit(line, width)}
		if why := st.finalDetail(); why != "" {
			glyph := glyphFail
			if st.final.Generator.Limited && !st.final.Aborted {
				glyph = glyphNote // herd's limit, not the target's failure
			}
			out = append(out, wrap("  "+glyph+" "+why, width, "    ", 3)...)
		}
		return out
	}
	clock := st.clock()
	figs := st.liveFigures()
	var out []string
	// One line: the label, a bar of 20, the clock and the three figures
	// that matter most (p99, errors, achieved of offered).
	one := runes(label) + 2 + 20 + 2 + runes(clock) + 2 + runes(strings.Join(figs[:min(3, len(figs))], "  "))
	if one <= width {
		line := label + "  " + bar(st.fraction(), 20) + "  " + clock
		out = append(out, addFigures(line, figs, width))
	} else {
		// Two lines: the bar keeps its length whatever the clock says
		// (room for "6s/6s draining 999 in flight"), the figures go below.
		n := min(max(width-runes(label)-2-2-28, 10), 40)
		out = append(out, fit(label+"  "+bar(st.fraction(), n)+"  "+clock, width))
		out = append(out, addFigures("  "+figs[0], figs[1:], width))
	}
	if v := st.verdictText(); v != "" {
		out = append(out, wrap("  "+glyphFail+" failing so far: "+v, width, "    ", 3)...)
	}
	return out
}

// fraction is how much of the step's time has passed.
func (st *liveStep) fraction() float64 {
	p := st.snap
	if p.Done {
		return 1
	}
	if p.Duration <= 0 {
		return 0
	}
	return min(float64(p.Elapsed)/float64(p.Duration), 1)
}

// clock is the time into the step, which stops at the step's length;
// past it the step is waiting for the requests still in flight.
func (st *liveStep) clock() string {
	p := st.snap
	if !st.seen {
		return "starting"
	}
	s := clockText(min(p.Elapsed, p.Duration)) + "/" + clockText(p.Duration)
	switch {
	case p.Done:
		s += " done"
	case p.Duration > 0 && p.Elapsed >= p.Duration:
		s += fmt.Sprintf(" draining %d in flight", p.InFlight)
	}
	return s
}

func (st *liveStep) sentText() string {
	return fmt.Sprintf("sent %d/%d", st.snap.Sent, st.snap.Planned)
}

// liveFigures are a running step's figures, the most important first:
// p99 and the send and success rates over the last 5 s (not known in the
// first second), errors since the start, requests in flight.
func (st *liveStep) liveFigures() []string {
	p := st.snap
	p99, rates := "p99 "+glyphNone, "achieved "+glyphNone+" of "+glyphNone+" offered"
	if p.P99 > 0 {
		p99 = "p99 " + textfmt.Duration(p.P99)
	}
	if st.seen && p.Elapsed >= time.Second {
		rates = fmt.Sprintf("achieved %s of %s offered", textfmt.Rate(p.AchievedRPS), textfmt.Rate(p.OfferedRPS))
	}
	errs := "errors 0"
	if p.Errors > 0 {
		errs = fmt.Sprintf("errors %d (%s)", p.Errors, results.FmtPct(results.Fraction(p.Errors, p.Sent)))
	}
	figs := []string{p99, errs, rates}
	if !st.idleEnds.IsZero() {
		// Nothing is due: say until when, rather than that nothing is
		// offered.
		figs = []string{fmt.Sprintf("idle until %s (recorded gap %s)", st.idleEnds.Format("15:04:05"), textfmt.Duration(p.IdleRecorded)), errs}
	}
	if !p.Done && p.Elapsed < p.Duration {
		figs = append(figs, fmt.Sprintf("%d in flight", p.InFlight))
	}
	return append(figs, st.sentText())
}

// finalFigures are a finished step's own figures, from its results.
func (st *liveStep) finalFigures() []string {
	f := st.final
	return []string{
		"p99 " + f.LatencyMS.Text("p99"),
		"errors " + results.FmtPct(f.ErrorRate),
		fmt.Sprintf("achieved %s of %s offered", textfmt.Rate(f.AchievedRPS), textfmt.Rate(f.OfferedRPS)),
		fmt.Sprintf("sent %d", f.Sent),
	}
}

// outcomeWord says in a word how a finished step ended.
func (st *liveStep) outcomeWord() string {
	f := st.final
	switch {
	case f.Aborted:
		return "STOPPED"
	case f.Interrupted:
		return "interrupted"
	case f.Generator.Limited:
		return "herd-limited"
	case !f.Passed:
		return "FAIL"
	}
	return "pass"
}

// finalDetail is why a finished step did not pass.
func (st *liveStep) finalDetail() string {
	f := st.final
	switch {
	case f.Aborted:
		return "emergency stop: " + f.AbortReason
	case f.Interrupted:
		return "not judged: it ran for part of its length"
	case f.Generator.Limited:
		return strings.Join(f.Generator.Notes, "; ")
	case !f.Passed:
		return strings.Join(f.Violations, "; ") + routeNote(f.FailedRoute)
	}
	return ""
}

// outcomeText is the outcome of a finished step for a status line.
func (st *liveStep) outcomeText() string {
	if d := st.finalDetail(); d != "" {
		return st.outcomeWord() + ": " + d
	}
	return st.outcomeWord()
}

// ms writes a latency in milliseconds, as every text of herd does.
func ms(v float64) string { return textfmt.Millis(v) }

// clockText writes a time into a step to the second: 7s, 2m05s.
func clockText(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	return textfmt.Duration(d)
}

// bar draws a progress bar of n columns, brackets included.
func bar(frac float64, n int) string {
	inner := max(n-2, 1)
	full := int(frac * float64(inner))
	switch {
	case full >= inner:
		return "[" + strings.Repeat("=", inner) + "]"
	case full <= 0:
		return "[" + strings.Repeat("-", inner) + "]"
	}
	return "[" + strings.Repeat("=", full-1) + ">" + strings.Repeat("-", inner-full) + "]"
}

// addFigures appends figures to line, two spaces apart, in order, while
// they fit in width; the first figure that does not fit ends the line.
func addFigures(line string, figs []string, width int) string {
	for _, f := range figs {
		if runes(line)+2+runes(f) > width {
			break
		}
		line += "  " + f
	}
	return fit(line, width)
}

// fit cuts s to width columns, marking the cut.
func fit(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

// wrap breaks s into lines of width at spaces, the continuations indented;
// past max lines, the last is cut.
func wrap(s string, width int, indent string, maxLines int) []string {
	var out []string
	for runes(s) > width && len(out) < maxLines-1 {
		r := []rune(s)
		cut := strings.LastIndex(string(r[:width+1]), " ")
		if cut <= runes(indent) {
			break
		}
		out = append(out, strings.TrimRight(s[:cut], " "))
		s = indent + strings.TrimLeft(s[cut:], " ")
	}
	return append(out, fit(s, width))
}

func runes(s string) int { return len([]rune(s)) }
