package report

import (
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/results"
)

// TestNoResponseIsNA: a latency over no response is n/a wherever herd
// shows it (text, the HTML report, the comparison), never 0 and never a
// point drawn at the floor of a chart; in a comparison it is no change.
func TestNoResponseIsNA(t *testing.T) {
	f := fixture(t, "demo-ramp")
	var st4 *results.Step
	for i := range f.Steps {
		if f.Steps[i].Scale == 4 {
			st4 = &f.Steps[i]
		}
	}
	st4.LatencyMS = results.Percentiles{None: true}
	for i := range st4.Routes {
		st4.Routes[i].LatencyMS = results.Percentiles{None: true}
	}
	txt := render(t, f, "text")
	var row string
	for _, l := range strings.Split(txt, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "4x ") && row == "" {
			row = l // the steps table's, before the routes'
		}
	}
	if strings.Count(row, "n/a") != 3 || strings.Contains(row, " 0s ") {
		t.Errorf("the 4x row: %q, want p50, p90 and p99 n/a", row)
	}
	doc := parseHTML(t, render(t, f, "html"))
	for _, tr := range elements(byID(doc, "steps"), "tr") {
		if tds := elements(tr, "td"); len(tds) > 0 && text(tds[0]) == "4x" {
			for _, i := range []int{3, 4, 5, 6, 7} { // p50 p90 p99 p99.9 max
				if text(tds[i]) != "n/a" {
					t.Errorf("steps table, 4x column %d: %q", i, text(tds[i]))
				}
			}
		}
	}
	for _, tr := range elements(byID(doc, "routes"), "tr")[1:] {
		cells := elements(tr, "td")
		if last := text(cells[len(cells)-1]); !strings.HasPrefix(last, "n/a") {
			t.Errorf("route %s at 4x: %q", text(cells[1]), last)
		}
	}
	for _, label := range []string{"Latency percentiles by scale", "Latency against achieved throughput"} {
		c := chartByLabel(t, doc, label)
		for tip := range tipped(c, "circle") {
			if strings.HasPrefix(tip, "4x:") {
				t.Errorf("%s: a point drawn for 4x, which has no latency: %q", label, tip)
			}
		}
	}
	// Compared with a base that had latencies, the candidate's n/a is no
	// change and no check: not -100%.
	c := Compare(fixture(t, "demo-ramp"), f, DefaultCompareOptions())
	for _, ch := range c.Checks {
		if ch.Scope == "4x" && ch.Name == "p99" && (ch.Skipped != "no latency in the candidate run" || ch.Candidate != "n/a" || ch.Failed) {
			t.Errorf("4x p99 check: %+v", ch)
		}
	}
	var b strings.Builder
	if err := c.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "-100.0%") {
		t.Errorf("a latency gone to n/a reads as -100%%:\n%s", b.String())
	}
}
