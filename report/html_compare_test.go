package report

import (
	"fmt"
	"strings"
	"testing"
)

// TestHTMLCompare parses the comparison page of a real regression (the
// demo with its fix as the base, without it as the candidate): the
// outcome, the two runs' numbers, both runs drawn on the same axes with
// their own figures, and every check in the table; self-contained.
func TestHTMLCompare(t *testing.T) {
	base, cand := fixture(t, "demo-ramp"), fixture(t, "demo-fixed-ramp")
	base, cand = cand, base // the fixed service is the base: a regression
	o := DefaultCompareOptions()
	o.BaseName, o.CandidateName = "runs/fixed.json", "runs/candidate.json"
	c := Compare(base, cand, o)
	var b strings.Builder
	if err := c.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	doc := parseHTML(t, out)
	checkSelfContained(t, out, doc, base.Target, cand.Target)

	reg := c.Regressions()
	verdict := byID(doc, "verdict")
	if !strings.Contains(attr(verdict, "class"), "fail") || !strings.Contains(text(verdict), fmt.Sprintf("%d regressions (%d checks)", len(reg), len(c.Checks))) {
		t.Errorf("verdict %q (class %q)", text(verdict), attr(verdict, "class"))
	}
	if !strings.Contains(text(verdict), "capacity fell from 578.9 to 369.6 req/s") || !strings.Contains(text(verdict), "and 15 more") {
		t.Errorf("the first regressions are not listed: %q", text(verdict))
	}
	if h := text(elements(doc, "h1")[0]); h != "candidate.json against fixed.json" {
		t.Errorf("heading %q", h)
	}
	numbers := text(byID(doc, "numbers"))
	for _, want := range []string{"Capacity578.9 req/s → 369.6 req/s", "-36.2%", "Breaking point6x → 4x", "Last good5.25x → 3x", "p99 at 4x56.3ms → 1.73s"} {
		if !strings.Contains(numbers, want) {
			t.Errorf("the numbers lack %q: %q", want, numbers)
		}
	}

	// Both runs on the same axes, each point with its own run's figure.
	for _, ch := range []struct {
		label string
		tips  []string
	}{
		{"Achieved throughput by scale, both runs", []string{"base 5x: achieved 578.9 of 607.5 req/s", "candidate 4x: achieved 369.6 of 486.4 req/s"}},
		{"p99 latency by scale, both runs", []string{"base 4x: p99 56.3ms", "candidate 4x: p99 1.73s"}},
		{"Latency against achieved throughput, both runs", []string{"candidate 4x: p99 1.73s at 369.6 req/s achieved"}},
		{"Error rate by scale, both runs", []string{"candidate 4x: errors 6.63%"}},
	} {
		svg := chartByLabel(t, doc, ch.label)
		got := text(svg)
		for _, want := range append([]string{"base", "candidate"}, ch.tips...) {
			if !strings.Contains(got, want) {
				t.Errorf("chart %q lacks %q", ch.label, want)
			}
		}
		if len(elements(svg, "path")) < 2 {
			t.Errorf("chart %q: %d lines, want both runs'", ch.label, len(elements(svg, "path")))
		}
	}
	if got := text(chartByLabel(t, doc, "Latency by percentile at 4x, both runs")); !strings.Contains(got, "base 4x") || !strings.Contains(got, "candidate 4x") {
		t.Errorf("distribution: %q", got)
	}

	rows := elements(byID(doc, "checks"), "tr")[1:]
	if len(rows) != len(c.Checks) {
		t.Fatalf("%d check rows for %d checks", len(rows), len(c.Checks))
	}
	bad := 0
	for i, r := range rows {
		if strings.Contains(attr(r, "class"), "bad") != c.Checks[i].Failed {
			t.Errorf("check %d (%s %s): row class %q, failed %v", i, c.Checks[i].Scope, c.Checks[i].Name, attr(r, "class"), c.Checks[i].Failed)
		}
		if c.Checks[i].Failed {
			bad++
		}
	}
	if bad != len(reg) {
		t.Errorf("%d regression rows, %d regressions", bad, len(reg))
	}
	if steps := elements(byID(doc, "steps"), "tr"); len(steps) != 1+len(c.Pairs) {
		t.Errorf("%d step rows for %d matched steps", len(steps)-1, len(c.Pairs))
	}

	// The other way round, an improvement: no regression, in green.
	c = Compare(cand, base, o)
	b.Reset()
	if err := c.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	v := byID(parseHTML(t, b.String()), "verdict")
	if !strings.Contains(attr(v, "class"), "pass") || !strings.Contains(text(v), "No regression") {
		t.Errorf("improvement: verdict %q (class %q)", text(v), attr(v, "class"))
	}
}
