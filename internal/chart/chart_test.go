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
