package report

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
	"golang.org/x/net/html"
)

// chartByLabel is the <svg> whose aria-label is label, or fails t.
func chartByLabel(t *testing.T, doc *html.Node, label string) *html.Node {
	t.Helper()
	for _, s := range elements(doc, "svg") {
		if attr(s, "aria-label") == label {
			return s
		}
	}
	t.Fatalf("no chart %q", label)
	return nil
}

// tipped maps the tooltips of a chart's markers (or bars) to their element.
func tipped(n *html.Node, tag string) map[string]*html.Node {
	out := map[string]*html.Node{}
	for _, e := range elements(n, tag) {
		out[text(e)] = e
	}
	return out
}

func attrNum(t *testing.T, n *html.Node, key string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(attr(n, key), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.Data, key, attr(n, key), err)
	}
	return v
}

// TestHTMLCapacityCurve: latency against achieved throughput in absolute
// units: one p99 point per step, placed left to right by the req/s it
// achieved (not by its scale), labelled with its step, the capacity
// marked where it was measured.
func TestHTMLCapacityCurve(t *testing.T) {
	f := fixture(t, "demo-ramp")
	doc := parseHTML(t, render(t, f, "html"))
	c := chartByLabel(t, doc, "Latency against achieved throughput")
	marks := tipped(c, "circle")
	byScale := stepsByScale(f)
	var xs []float64
	for _, st := range byScale {
		tip := fmt.Sprintf("%s: p99 %s at %.1f req/s achieved (%.1f offered)", st.Label(), ms(st.LatencyMS.P99), st.AchievedRPS, st.OfferedRPS)
		m := marks[tip]
		if m == nil {
			t.Fatalf("no point %q", tip)
		}
		xs = append(xs, attrNum(t, m, "cx"))
	}
	// x follows achieved req/s, linearly: the step that achieved most is
	// rightmost, and every step is placed at the same pixels per req/s.
	right := 0
	for i := range byScale {
		if byScale[i].AchievedRPS > byScale[right].AchievedRPS {
			right = i
		}
	}
	for i, x := range xs {
		if x > xs[right] {
			t.Errorf("%s is right of %s, which achieved more", byScale[i].Label(), byScale[right].Label())
		}
	}
	labels := text(c)
	for _, want := range []string{"1x", "2x", "3x", "4x", "capacity 369.6 req/s"} {
		if !strings.Contains(labels, want) {
			t.Errorf("the curve lacks %q", want)
		}
	}
	slope := (xs[1] - xs[0]) / (byScale[1].AchievedRPS - byScale[0].AchievedRPS)
	if slope <= 0 {
		t.Fatalf("x does not grow with achieved req/s")
	}
	for i := range xs {
		want := xs[0] + slope*(byScale[i].AchievedRPS-byScale[0].AchievedRPS)
		if d := xs[i] - want; d > 0.5 || d < -0.5 {
			t.Errorf("%s at x %.1f, want %.1f for %.1f req/s", byScale[i].Label(), xs[i], want, byScale[i].AchievedRPS)
		}
	}
}

// TestHTMLErrorClasses: each step's errors by class are stacked bars, as
// a share of the requests it sent, one colour per class, each bar with its
// count; a step without errors has no bar.
func TestHTMLErrorClasses(t *testing.T) {
	f := fixture(t, "demo-ramp")
	// The 4x step's errors, split into two classes.
	var st4 *results.Step
	for i := range f.Steps {
		if f.Steps[i].Scale == 4 {
			st4 = &f.Steps[i]
		}
	}
	n := st4.ErrorClasses["http_5xx"]
	st4.ErrorClasses = results.Counts{"http_5xx": n - 10, "timeout": 10}
	doc := parseHTML(t, render(t, f, "html"))
	c := chartByLabel(t, doc, "Errors by class and scale")
	bars := tipped(c, "rect")
	five := bars[fmt.Sprintf("4x: http_5xx %d of %d sent (%s)", n-10, st4.Sent, pct(results.Fraction(n-10, st4.Sent)))]
	tmo := bars[fmt.Sprintf("4x: timeout 10 of %d sent (%s)", st4.Sent, pct(results.Fraction(10, st4.Sent)))]
	if five == nil || tmo == nil {
		t.Fatalf("bars of 4x missing: %v", keys(bars))
	}
	if len(elements(c, "rect")) < 2 {
		t.Fatal("no bars")
	}
	// Stacked: the smaller class sits on the larger, in the same slot
	// (coordinates are written to 0.1).
	if d := attrNum(t, tmo, "y") + attrNum(t, tmo, "height") - attrNum(t, five, "y"); attrNum(t, five, "x") != attrNum(t, tmo, "x") || d > 0.15 || d < -0.15 {
		t.Errorf("the timeout bar (x %s, y %s, h %s) does not sit on the 5xx bar (x %s, y %s)",
			attr(tmo, "x"), attr(tmo, "y"), attr(tmo, "height"), attr(five, "x"), attr(five, "y"))
	}
	if attr(five, "fill") == attr(tmo, "fill") {
		t.Error("two classes in one colour")
	}
	// Heights in proportion to the counts.
	if h5, ht := attrNum(t, five, "height"), attrNum(t, tmo, "height"); h5/ht < float64(n-10)/10*0.9 || h5/ht > float64(n-10)/10*1.1 {
		t.Errorf("bar heights %v and %v for %d and 10 errors", h5, ht, n-10)
	}
	classBars := 0
	for tip := range bars {
		if strings.Contains(tip, " sent (") {
			classBars++
		}
	}
	if classBars != 2 {
		t.Errorf("%d bars, want the 4x step's 2: the others had no errors", classBars)
	}
}

// TestHTMLRouteThroughput: beside each route's p99 at each scale, its
// throughput and error rate; the replay's route table has a throughput
// column.
func TestHTMLRouteThroughput(t *testing.T) {
	f := fixture(t, "demo-ramp")
	doc := parseHTML(t, render(t, f, "html"))
	byScale := stepsByScale(f)
	var login *html.Node
	for _, tr := range elements(byID(doc, "routes"), "tr") {
		if strings.Contains(text(tr), "/login") {
			login = tr
		}
	}
	if login == nil {
		t.Fatal("no /login row")
	}
	cells := elements(login, "td")[3:]
	if len(cells) != len(byScale) {
		t.Fatalf("%d cells for %d scales", len(cells), len(byScale))
	}
	for i, st := range byScale {
		r := findRoute(st, "POST", "/login")
		want := ms(r.LatencyMS.P99) + textfmt.Rate(float64(r.Completed)/st.DurationS) + " · " + pct(r.ErrorRate)
		if got := text(cells[i]); got != want {
			t.Errorf("%s: cell %q, want %q", st.Label(), got, want)
		}
	}
	r := fixture(t, "replay-http-server")
	doc = parseHTML(t, render(t, r, "html"))
	head := text(elements(byID(doc, "routes"), "thead")[0])
	if !strings.Contains(head, "successful/s") {
		t.Errorf("replay routes head %q", head)
	}
	st := &r.Steps[0]
	for _, tr := range elements(byID(doc, "routes"), "tr")[1:] {
		tds := elements(tr, "td")
		rt := findRoute(st, text(tds[0]), strings.TrimSuffix(text(tds[1]), "failed"))
		if rt == nil {
			t.Fatalf("row %q is no route of the step", text(tr))
		}
		if want := textfmt.Rate(float64(rt.Completed) / st.DurationS); text(tds[3]) != want {
			t.Errorf("%s: throughput %q, want %q", rt.Route, text(tds[3]), want)
		}
	}
}

// TestHTMLReplaySLOLine: the replay page's percentile chart carries each
// latency SLO as a line at its bound and a ring where it applies (p99<1s
// at 99%), on a log axis that keeps the data readable beneath a far bound.
func TestHTMLReplaySLOLine(t *testing.T) {
	f := fixture(t, "replay-http-server")
	f.Params.SLOs = []string{"p99<1s", "p50<5ms", "errors<1%"}
	doc := parseHTML(t, render(t, f, "html"))
	c := chartByLabel(t, doc, "Latency by percentile distribution")
	got := text(c)
	for _, want := range []string{"SLO p99<1s", "SLO p50<5ms", "latency (ms, log scale)"} {
		if !strings.Contains(got, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	rings := tipped(c, "circle")
	p99, p50 := rings["SLO p99<1s: the line must pass under this point"], rings["SLO p50<5ms: the line must pass under this point"]
	if p99 == nil || p50 == nil {
		t.Fatalf("rings: %v", keys(rings))
	}
	// 99% is right of 50%, and 1s is above 5ms.
	if attrNum(t, p99, "cx") <= attrNum(t, p50, "cx") || attrNum(t, p99, "cy") >= attrNum(t, p50, "cy") {
		t.Errorf("ring p99 at (%s, %s), p50 at (%s, %s)", attr(p99, "cx"), attr(p99, "cy"), attr(p50, "cx"), attr(p50, "cy"))
	}
}

// TestHTMLOfferedPerSecond: the per-second chart draws what the schedule
// offered each second beside what the target achieved, and what herd
// sent where it sent less; a file from before timeline[].due shows sent.
func TestHTMLOfferedPerSecond(t *testing.T) {
	f := fixture(t, "replay-http-server")
	st := &f.Steps[0]
	for i := range st.Timeline {
		st.Timeline[i].Due = st.Timeline[i].Sent
	}
	st.Timeline[3].Due += 40 // herd could not send 40 of that second's requests
	doc := parseHTML(t, render(t, f, "html"))
	c := chartByLabel(t, doc, "Requests over time")
	got := text(c)
	for _, want := range []string{"offered (due that second)", "sent, where herd sent less", "achieved (successful, by completion second)"} {
		if !strings.Contains(got, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	if strings.Contains(got, "sent (by due second)") {
		t.Error("sent is drawn as the offered load of a file that has it")
	}
	// The offered line's peak is the second herd fell short in: the
	// highest point of all, above every achieved and sent point.
	paths := elements(c, "path")
	offered := paths[0]
	top := func(p *html.Node) float64 {
		lo := 1e9
		for _, f := range strings.FieldsFunc(attr(p, "d"), func(r rune) bool { return r == 'M' || r == 'L' }) {
			var x, y float64
			fmt.Sscanf(f, "%g %g", &x, &y)
			lo = min(lo, y)
		}
		return lo
	}
	for _, p := range paths[1:] {
		if top(p) <= top(offered) {
			t.Errorf("a line reaches %v, above the offered peak at %v", top(p), top(offered))
		}
	}
	// Without due, sent stands for it, and says so.
	old := fixture(t, "replay-http-server")
	if got := text(chartByLabel(t, parseHTML(t, render(t, old, "html")), "Requests over time")); !strings.Contains(got, "sent (by due second)") || strings.Contains(got, "offered (due") {
		t.Errorf("old file: %q", got)
	}
}

func keys(m map[string]*html.Node) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWindowNotes: a window clamped to a shorter recording, or with idle
// time left out, says so in the text and on the page.
func TestWindowNotes(t *testing.T) {
	f := fixture(t, "demo-ramp")
	f.Window.Clamped = true
	f.Window.RecordedS, f.Window.IdleRemovedS, f.Window.MaxIdleS = 7325, 7200, 60
	want := []string{"the whole recording was replayed", "2h00m of idle time (stretches beyond 1m00s with nothing due) left out of 2h02m recorded"}
	txt := render(t, f, "text")
	params := text(byID(parseHTML(t, render(t, f, "html")), "params"))
	for _, w := range want {
		if !strings.Contains(txt, w) || !strings.Contains(params, w) {
			t.Errorf("%q: in the text %v, on the page %v", w, strings.Contains(txt, w), strings.Contains(params, w))
		}
	}
	f.Capacity.Evidence = "the plateau of 4x and ~3.5x: achieved within 4% while offered rose 14%"
	if params := text(byID(parseHTML(t, render(t, f, "html")), "params")); !strings.Contains(params, "capacity"+f.Capacity.Evidence) {
		t.Errorf("the capacity's evidence is not in the run section: %q", params)
	}
	if txt := render(t, fixture(t, "demo-ramp"), "text"); strings.Contains(txt, "idle time") || strings.Contains(txt, "whole recording") {
		t.Error("notes for a window that needs none")
	}
}

// TestHTMLBlame: the breaking point's blame is a card of its own: the
// route and why, or none and why no route stood out.
func TestHTMLBlame(t *testing.T) {
	f := fixture(t, "demo-ramp")
	numbers := text(byID(parseHTML(t, render(t, f, "html")), "numbers"))
	if !strings.Contains(numbers, "Route blamednone") || !strings.Contains(numbers, f.BreakingPoint.Blame) {
		t.Errorf("no route stood out: %q", numbers)
	}
	f.BreakingPoint.Route, f.BreakingPoint.Blame = "/login", "POST /login: 9% of its requests over 1s, against 1% of the other routes'"
	numbers = text(byID(parseHTML(t, render(t, f, "html")), "numbers"))
	if !strings.Contains(numbers, "Route blamed/login"+f.BreakingPoint.Blame) || !strings.Contains(numbers, "on /login: p99 1.73s > 1s") {
		t.Errorf("a route blamed: %q", numbers)
	}
}
