package chart

import (
	"math"
	"strings"
	"testing"
)

func TestNiceStep(t *testing.T) {
	cases := []struct{ rough, want float64 }{
		{0.7, 1}, {1, 1}, {1.3, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {12, 20}, {0.013, 0.02}, {480, 500}, {0, 1}, {math.Inf(1), 1},
	}
	for _, c := range cases {
		if got := niceStep(c.rough); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", c.rough, got, c.want)
		}
	}
}

func TestNumber(t *testing.T) {
	cases := []struct {
		v    float64
		want string
	}{
		{0, "0"}, {1, "1"}, {2.5, "2.5"}, {0.1, "0.1"}, {0.30000000000000004, "0.3"}, {123.456, "123"},
		{1000, "1000"}, {12500, "12.5k"}, {2e6, "2M"}, {0.00012, "0.00012"}, {-40, "-40"},
	}
	for _, c := range cases {
		if got := Number(c.v); got != c.want {
			t.Errorf("Number(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestTicks(t *testing.T) {
	lin := &Chart{Series: []Series{{Points: []Point{{X: 1, Y: 3}, {X: 4, Y: 487}}}}, Y: Axis{Zero: true}}
	ys := lin.scale(&lin.Y, false)
	var got []string
	for _, tk := range ys.ticks() {
		got = append(got, tk.Label)
	}
	if strings.Join(got, " ") != "0 100 200 300 400 500" {
		t.Errorf("linear ticks %q", got)
	}
	log := &Chart{Series: []Series{{Points: []Point{{X: 1, Y: 3}, {X: 4, Y: 2400}}}}, Y: Axis{Log: true}}
	got = nil
	for _, tk := range log.scale(&log.Y, false).ticks() {
		got = append(got, tk.Label)
	}
	if strings.Join(got, " ") != "1 10 100 1000 10k" {
		t.Errorf("log ticks %q", got)
	}
	// Within two decades the log axis also marks 2 and 5.
	narrow := &Chart{Series: []Series{{Points: []Point{{X: 1, Y: 12}, {X: 2, Y: 90}}}}, Y: Axis{Log: true}}
	got = nil
	for _, tk := range narrow.scale(&narrow.Y, false).ticks() {
		got = append(got, tk.Label)
	}
	if strings.Join(got, " ") != "10 20 50 100" {
		t.Errorf("narrow log ticks %q", got)
	}
	// Padded: the data's ends are inside the frame, ticks still round.
	pad := &Chart{Series: []Series{{Points: []Point{{X: 1, Y: 1}, {X: 4, Y: 1}}}}, X: Axis{Pad: true}}
	xs := pad.scale(&pad.X, true)
	got = nil
	for _, tk := range xs.ticks() {
		got = append(got, tk.Label)
	}
	if xs.min >= 1 || xs.max <= 4 || strings.Join(got, " ") != "1 2 3 4" {
		t.Errorf("padded axis %v..%v, ticks %q", xs.min, xs.max, got)
	}
}

func TestSVG(t *testing.T) {
	c := &Chart{
		ID: "c1", Label: `latency & "more"`,
		X: Axis{Label: "scale"}, Y: Axis{Label: "ms", Log: true},
		Series: []Series{
			{Name: "p99 <b>", Color: "#7c3aed", Markers: true, Points: []Point{{X: 1, Y: 10, Tip: "1x: <10ms>"}, {X: 2, Y: math.NaN()}, {X: 3, Y: 0}, {X: 4, Y: 900, Hollow: true}}},
		},
		Rules: []Rule{{V: 500, Label: "SLO p99<500ms", Dash: true}, {Vertical: true, V: 4, Label: "breaks 4x"}, {V: 1e9, Label: "far", Optional: true}},
		Bands: []Band{{From: 0.5, To: 1.5, Label: "1x"}},
	}
	svg := c.SVG()
	for _, want := range []string{
		`aria-label="latency &amp; &#34;more&#34;"`, `<title>1x: &lt;10ms&gt;</title>`, "p99 &lt;b&gt;", "SLO p99&lt;500ms", "breaks 4x",
		`clip-path="url(#c1-plot)"`, `>scale</text>`, `>ms</text>`, `fill="#fff"`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %s", want)
		}
	}
	for _, bad := range []string{"NaN", "Inf", "far", "<b>", "http"} {
		if strings.Contains(svg, bad) {
			t.Errorf("svg contains %q", bad)
		}
	}
	// The NaN and the zero (on a log axis) break the line: two pieces.
	if n := strings.Count(svg, `<path d="M`); n != 1 || strings.Count(svg, "M") < 2 {
		t.Errorf("line pieces: %d paths\n%s", n, svg)
	}
	if n := strings.Count(svg, "<circle"); n != 2 {
		t.Errorf("%d markers, want 2 (NaN and 0 cannot be drawn on a log axis)", n)
	}
}

func TestSVGEmpty(t *testing.T) {
	c := &Chart{Empty: "no data", Series: []Series{{Points: []Point{{X: 1, Y: math.NaN()}}}}}
	if svg := c.SVG(); !strings.Contains(svg, ">no data</text>") || strings.Contains(svg, "<path") {
		t.Errorf("empty chart: %s", svg)
	}
}

// TestExtremes: values no chart should meet still give a finite drawing,
// at once: no NaN or infinite coordinate, a bounded number of labels.
func TestExtremes(t *testing.T) {
	for _, pts := range [][]Point{
		{{X: 1, Y: 5e-324}, {X: 2, Y: 1e308}},
		{{X: -1e308, Y: -1e308}, {X: 1e308, Y: 1e308}},
		{{X: 1, Y: 7}, {X: 1, Y: 7}},
	} {
		for _, log := range []bool{false, true} {
			c := &Chart{Y: Axis{Log: log}, X: Axis{Pad: true}, Series: []Series{{Markers: true, Points: pts}}}
			svg := c.SVG()
			if strings.Count(svg, "<text") > 300 {
				t.Errorf("%v log=%v: %d labels", pts, log, strings.Count(svg, "<text"))
			}
			for _, bad := range []string{"NaN", "Inf"} {
				if i := strings.Index(svg, bad); i >= 0 {
					t.Errorf("%v log=%v: %s in the drawing: %q", pts, log, bad, svg[max(0, i-80):min(len(svg), i+20)])
				}
			}
		}
	}
}

// TestStackedBars: bars on a categorical axis pile up in order, the axis
// reaches the tallest pile, each category is a labelled slot, and each
// bar carries its tooltip; stacks are in the legend as boxes.
func TestStackedBars(t *testing.T) {
	c := &Chart{
		ID: "errs", Label: "errors by class", Y: Axis{Label: "% of requests", Zero: true},
		Categories: []string{"1x", "2x", "4x"},
		Stacks: []Stack{
			{Name: "timeout", Color: "#111", Values: []float64{0, 1, 4}, Tips: []string{"", "2x: timeout 1%", "4x: timeout 4%"}},
			{Name: "http_5xx", Color: "#222", Values: []float64{0, 0.5, 3}, Tips: []string{"", "2x: 5xx 0.5%", "4x: 5xx 3%"}},
		},
	}
	ys := c.scale(&c.Y, false)
	if ys.max < 7 {
		t.Errorf("the y axis ends at %v, below the tallest pile (7)", ys.max)
	}
	svg := c.SVG()
	if n := strings.Count(svg, `class="bar"`); n != 4 {
		t.Errorf("%d bars, want 4 (zero values draw nothing)", n)
	}
	for _, want := range []string{">1x</text>", ">2x</text>", ">4x</text>", "<title>4x: timeout 4%</title>", ">timeout</text>", ">http_5xx</text>", `<rect x=`} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	// The 5xx bar of 4x sits on the timeout bar: its bottom is the
	// timeout bar's top.
	xs := c.scale(&c.X, true)
	if xs.min != -0.5 || xs.max != 2.5 {
		t.Errorf("categorical axis %v..%v, want -0.5..2.5", xs.min, xs.max)
	}
	empty := &Chart{Categories: []string{"1x"}, Stacks: []Stack{{Name: "x", Values: []float64{0}}}, Empty: "no errors"}
	if !strings.Contains(empty.SVG(), "no errors") {
		t.Error("a chart of zero bars is not shown as empty")
	}
}

// TestPointLabels: a labelled point is annotated beside its marker.
func TestPointLabels(t *testing.T) {
	c := &Chart{Series: []Series{{Name: "p99", Markers: true, Points: []Point{{X: 100, Y: 5, Label: "1x"}, {X: 200, Y: 9, Label: "2x <b>"}}}}}
	svg := c.SVG()
	if strings.Count(svg, `class="point-label"`) != 2 || !strings.Contains(svg, ">2x &lt;b&gt;</text>") {
		t.Errorf("point labels missing or unescaped:\n%s", svg)
	}
}
