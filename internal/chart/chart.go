// Package chart draws line charts as inline SVG for herd's HTML report:
// linear and logarithmic axes with readable ticks, series with markers,
// point labels and tooltips, stacked bars over named categories, labelled
// reference lines and shaded bands. It writes markup
// only: no script, no font, nothing fetched from anywhere, so a report
// that embeds it works offline and prints as it shows.
package chart

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Chart is one line chart.
type Chart struct {
	// ID prefixes the ids the chart defines (its clip path); unique in
	// the page.
	ID string
	// Label describes the chart for screen readers.
	Label string
	// Width and Height are the size of the drawing, in the units of its
	// viewBox; it scales to the width of its container. Default 640×300.
	Width, Height int
	X, Y          Axis
	Series        []Series
	Rules         []Rule
	Bands         []Band
	// Categories make the x axis one slot per category, labelled with
	// it; the slot of category i is at x = i. Stacks are drawn there as
	// bars piled up in order, and Series may run over them (X = i).
	Categories []string
	Stacks     []Stack
	// Empty is shown instead of the plot when no series has a point.
	Empty string
}

// Stack is one layer of stacked bars: its value in each category, piled
// on the layers before it.
type Stack struct {
	Name   string
	Color  string
	Values []float64 // by category; missing and non-positive values draw nothing
	Tips   []string  // by category
}

// Axis is a horizontal or vertical axis.
type Axis struct {
	Label string
	// Log makes the axis logarithmic (base 10); values <= 0 are not drawn.
	Log bool
	// Min and Max fix the range when Max > Min; otherwise it fits the
	// data, the rules and, with Zero, 0.
	Min, Max float64
	Zero     bool
	// Pad leaves a little room beyond the data at both ends of a linear
	// axis, so that points at the ends are not drawn on the frame.
	Pad bool
	// Ticks replace the computed ticks.
	Ticks []Tick
	// Format labels the computed ticks; Number by default.
	Format func(float64) string
}

// Tick is a labelled position on an axis.
type Tick struct {
	V     float64
	Label string
}

// Series is a line through points, in order.
type Series struct {
	Name   string
	Color  string
	Dash   bool
	Points []Point
	// Markers draws each point as a dot with its tooltip.
	Markers bool
	box     bool // a stack's legend entry
}

// Point is one point of a series.
type Point struct {
	X, Y float64
	// Tip is the point's tooltip (with Markers).
	Tip string
	// Hollow draws the marker as a ring: a point to read with care.
	Hollow bool
	// Gap breaks the line before this point.
	Gap bool
	// Label is written beside the point (with Markers).
	Label string
}

// Rule is a labelled reference line across the plot: horizontal at y = V,
// or vertical at x = V.
type Rule struct {
	Vertical bool
	V        float64
	Label    string
	Color    string
	Dash     bool
	// Optional rules do not widen the axis: one outside the data's range
	// is not drawn.
	Optional bool
}

// Band shades the plot between two x values, with a label at its top.
type Band struct {
	From, To float64
	Label    string
}

const (
	fontSize  = 12
	charWidth = 6.6 // average advance of a 12px sans-serif character
	textColor = "#374151"
	gridColor = "#e5e7eb"
	axisColor = "#9ca3af"
)

// SVG renders the chart.
func (c *Chart) SVG() string {
	w, h := float64(c.Width), float64(c.Height)
	if w <= 0 {
		w = 640
	}
	if h <= 0 {
		h = 300
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %s %s" width="100%%" role="img" aria-label="%s" font-size="%d" font-family="inherit">`,
		f1(w), f1(h), esc(c.Label), fontSize)
	if !c.hasData() {
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="%s">%s</text></svg>`, f1(w/2), f1(h/2), axisColor, esc(c.Empty))
		return b.String()
	}
	xs, ys := c.scale(&c.X, true), c.scale(&c.Y, false)
	yTicks := ys.ticks()
	left := 14.0 + fontSize + 8 + maxWidth(yTicks) + 6 // axis label, gap, tick labels, tick
	legendRows := c.legendRows(w - left - 12)
	p := plot{x0: left, x1: w - 14, y1: h - 22 - fontSize - 10}
	xs.lo, xs.hi = p.x0, p.x1
	// Labels of vertical rules go in rows above the plot, clear of the
	// data and of each other.
	labels, rows := c.ruleLabels(xs, p.x1)
	p.y0 = 12 + float64(len(legendRows))*18 + float64(rows)*15 + 2
	ys.lo, ys.hi = p.y1, p.y0
	clip := esc(c.ID) + "-plot"
	// The clip leaves room for a whole marker on the edge of the plot.
	fmt.Fprintf(&b, `<defs><clipPath id="%s"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath></defs>`,
		clip, f1(p.x0-6), f1(p.y0-6), f1(p.x1-p.x0+12), f1(p.y1-p.y0+12))

	// Bands, then the grid, then data on top.
	for _, bd := range c.Bands {
		x0, x1 := max(xs.at(bd.From), p.x0), min(xs.at(bd.To), p.x1)
		if x1 <= x0 {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#f3f4f6"/>`, f1(x0), f1(p.y0), f1(x1-x0), f1(p.y1-p.y0))
		if bd.Label != "" && textWidth(bd.Label) < x1-x0-2 {
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#6b7280" font-size="11">%s</text>`, f1((x0+x1)/2), f1(p.y0+12), esc(bd.Label))
		}
	}
	for _, t := range yTicks {
		y := ys.at(t.V)
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s"/>`, f1(p.x0), f1(p.x1), f1(y), f1(y), gridColor)
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle" fill="%s">%s</text>`, f1(p.x0-6), f1(y), textColor, esc(t.Label))
	}
	xTicks := xs.ticks()
	lastEnd := math.Inf(-1)
	for _, t := range xTicks {
		x := xs.at(t.V)
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s"/>`, f1(x), f1(x), f1(p.y1), f1(p.y1+5), axisColor)
		// A label at the right edge ends at its tick instead of running
		// off the drawing; labels that would overlap their left neighbour
		// are left out.
		tw := textWidth(t.Label)
		from, anchor := x-tw/2, "middle"
		if x+tw/2 > w-2 {
			from, anchor = x-tw, "end"
		}
		if from > lastEnd+4 {
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="%s" fill="%s">%s</text>`, f1(x), f1(p.y1+18), anchor, textColor, esc(t.Label))
			lastEnd = from + tw
		}
	}
	fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s"/>`, f1(p.x0), f1(p.x1), f1(p.y1), f1(p.y1), axisColor)
	fmt.Fprintf(&b, `<text class="axis-label" x="%s" y="%s" text-anchor="middle" fill="%s">%s</text>`, f1((p.x0+p.x1)/2), f1(h-6), textColor, esc(c.X.Label))
	fmt.Fprintf(&b, `<text class="axis-label" transform="translate(%s %s) rotate(-90)" text-anchor="middle" fill="%s">%s</text>`,
		f1(4+fontSize), f1((p.y0+p.y1)/2), textColor, esc(c.Y.Label))

	c.bars(&b, xs, ys)
	fmt.Fprintf(&b, `<g clip-path="url(#%s)">`, clip)
	for _, s := range c.Series {
		d := path(s.Points, xs, ys)
		if d == "" {
			continue
		}
		dash := ""
		if s.Dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s/>`, d, color(s.Color), dash)
	}
	b.WriteString(`</g>`)
	// Rules stay inside the plot but their labels may stand above it: not
	// clipped. Markers come last, on top of everything.
	for i, r := range c.Rules {
		c.rule(&b, r, xs, ys, p, labels[i])
	}
	fmt.Fprintf(&b, `<g clip-path="url(#%s)">`, clip)
	// Point labels keep clear of every marker and of each other.
	var pointLabel pointLabels
	for _, s := range c.Series {
		for _, pt := range s.Points {
			if s.Markers && xs.ok(pt.X) && ys.ok(pt.Y) {
				x, y := xs.at(pt.X), ys.at(pt.Y)
				pointLabel.taken = append(pointLabel.taken, [4]float64{x - 4, y - 4, x + 4, y + 4})
			}
		}
	}
	for _, s := range c.Series {
		if !s.Markers {
			continue
		}
		for _, pt := range s.Points {
			if !xs.ok(pt.X) || !ys.ok(pt.Y) {
				continue
			}
			fill := color(s.Color)
			if pt.Hollow {
				fill = "#fff"
			}
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="4" fill="%s" stroke="%s" stroke-width="1.5">`, f1(xs.at(pt.X)), f1(ys.at(pt.Y)), fill, color(s.Color))
			if pt.Tip != "" {
				fmt.Fprintf(&b, `<title>%s</title>`, esc(pt.Tip))
			}
			b.WriteString(`</circle>`)
			if pt.Label != "" {
				pointLabel.place(&b, xs.at(pt.X), ys.at(pt.Y), pt.Label, color(s.Color), p)
			}
		}
	}
	b.WriteString(`</g>`)
	c.legend(&b, legendRows, p.x1)
	b.WriteString(`</svg>`)
	return b.String()
}

type plot struct{ x0, x1, y0, y1 float64 }

// pointLabels places the labels of points clear of each other: above
// right of the point, else below right, above left, below left; a label
// with no free place is left out (its point keeps its tooltip).
type pointLabels struct{ taken [][4]float64 }

func (l *pointLabels) place(b *strings.Builder, x, y float64, text, col string, p plot) {
	const h = 11.0
	w := textWidth(text) * 11 / fontSize
	for _, at := range [][2]float64{{6, -6}, {6, 6 + h}, {-6 - w, -6}, {-6 - w, 6 + h}} {
		x0, y1 := x+at[0], y+at[1] // text starts at x0, its baseline is y1
		box := [4]float64{x0, y1 - h, x0 + w, y1}
		if box[0] < p.x0 || box[2] > p.x1+8 || box[1] < p.y0-4 || box[3] > p.y1 {
			continue
		}
		free := true
		for _, t := range l.taken {
			if box[0] < t[2]+2 && box[2] > t[0]-2 && box[1] < t[3]+1 && box[3] > t[1]-1 {
				free = false
				break
			}
		}
		if !free {
			continue
		}
		l.taken = append(l.taken, box)
		fmt.Fprintf(b, `<text class="point-label" x="%s" y="%s" fill="%s" font-size="11" stroke="#fff" stroke-width="3" paint-order="stroke">%s</text>`,
			f1(x0), f1(y1), col, esc(text))
		return
	}
}

// stackTotals are the heights of the piles of bars, by category.
func (c *Chart) stackTotals() []float64 {
	var totals []float64
	for _, st := range c.Stacks {
		for i, v := range st.Values {
			for len(totals) <= i {
				totals = append(totals, 0)
			}
			if finite(v) && v > 0 {
				totals[i] += v
			}
		}
	}
	return totals
}

// bars draws the stacks: in each category's slot, a bar per layer, piled
// in order, each with its tooltip.
func (c *Chart) bars(b *strings.Builder, xs, ys *scale) {
	if len(c.Stacks) == 0 || len(c.Categories) == 0 {
		return
	}
	slot := xs.at(1) - xs.at(0)
	w := math.Min(slot*0.6, 56)
	base := make([]float64, len(c.Categories))
	for _, st := range c.Stacks {
		for i, v := range st.Values {
			if i >= len(base) || !finite(v) || v <= 0 {
				continue
			}
			lo, hi := base[i], base[i]+v
			base[i] = hi
			if !ys.ok(lo) {
				lo = ys.min
			}
			y0, y1 := ys.at(math.Max(lo, ys.min)), ys.at(math.Min(hi, ys.max))
			if y0 <= y1 {
				continue
			}
			fmt.Fprintf(b, `<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s">`, f1(xs.at(float64(i))-w/2), f1(y1), f1(w), f1(y0-y1), color(st.Color))
			if i < len(st.Tips) && st.Tips[i] != "" {
				fmt.Fprintf(b, `<title>%s</title>`, esc(st.Tips[i]))
			}
			b.WriteString(`</rect>`)
		}
	}
}

func (c *Chart) hasData() bool {
	for _, st := range c.Stacks {
		for _, v := range st.Values {
			if finite(v) && v > 0 {
				return true
			}
		}
	}
	for _, s := range c.Series {
		for _, p := range s.Points {
			if finite(p.X) && finite(p.Y) && (!c.X.Log || p.X > 0) && (!c.Y.Log || p.Y > 0) {
				return true
			}
		}
	}
	return false
}

// ruleLabel places the label of a vertical rule: its anchor point, and
// the row above the plot it takes (0 nearest the plot).
type ruleLabel struct {
	x      float64
	anchor string
	row    int
}

// ruleLabels places the labels of the vertical rules: right of their line,
// or left of it at the right edge, in the first row where they do not
// overlap another. It returns a label per rule (zero for horizontal ones)
// and the number of rows used.
func (c *Chart) ruleLabels(xs *scale, right float64) ([]ruleLabel, int) {
	const maxRows = 3
	out := make([]ruleLabel, len(c.Rules))
	var taken [maxRows][][2]float64
	rows := 0
	for i, r := range c.Rules {
		if !r.Vertical || !xs.within(r.V) {
			continue
		}
		x, tw := xs.at(r.V), textWidth(r.Label)
		l := ruleLabel{x: x - 3, anchor: "end"}
		from, to := x-3-tw, x-3
		if x+3+tw <= right+8 {
			l = ruleLabel{x: x + 3, anchor: "start"}
			from, to = x+3, x+3+tw
		}
		for l.row = 0; l.row < maxRows-1; l.row++ {
			free := true
			for _, e := range taken[l.row] {
				if from < e[1]+8 && to > e[0]-8 {
					free = false
				}
			}
			if free {
				break
			}
		}
		taken[l.row] = append(taken[l.row], [2]float64{from, to})
		rows = max(rows, l.row+1)
		out[i] = l
	}
	return out, rows
}

// rule draws a reference line with its label, on a white halo so that it
// reads over the lines it crosses. A vertical rule's label sits above the
// plot, where ruleLabels put it.
func (c *Chart) rule(b *strings.Builder, r Rule, xs, ys *scale, p plot, l ruleLabel) {
	col := color(r.Color)
	dash := ""
	if r.Dash {
		dash = ` stroke-dasharray="4 3"`
	}
	halo := `stroke="#fff" stroke-width="3" paint-order="stroke"`
	if r.Vertical {
		if !xs.within(r.V) {
			return
		}
		x := xs.at(r.V)
		fmt.Fprintf(b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="1.5"%s/>`, f1(x), f1(x), f1(p.y0-2-float64(l.row)*15), f1(p.y1), col, dash)
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="%s" fill="%s" font-weight="600" %s>%s</text>`,
			f1(l.x), f1(p.y0-5-float64(l.row)*15), l.anchor, col, halo, esc(r.Label))
		return
	}
	if !ys.within(r.V) {
		return
	}
	y := ys.at(r.V)
	fmt.Fprintf(b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="1.5"%s/>`, f1(p.x0), f1(p.x1), f1(y), f1(y), col, dash)
	ty := y - 5
	if ty < p.y0+fontSize {
		ty = y + fontSize + 3
	}
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="start" fill="%s" font-weight="600" %s>%s</text>`, f1(p.x0+6), f1(ty), col, halo, esc(r.Label))
}

// legendRows lays the named series (and stacks, as boxes) out in rows
// that fit width.
func (c *Chart) legendRows(width float64) [][]Series {
	var rows [][]Series
	var row []Series
	used := 0.0
	entries := c.Series
	if len(c.Stacks) > 0 {
		entries = nil
		for _, st := range c.Stacks {
			entries = append(entries, Series{Name: st.Name, Color: st.Color, box: true})
		}
		entries = append(entries, c.Series...)
	}
	for _, s := range entries {
		if s.Name == "" {
			continue
		}
		wd := legendWidth(s)
		if len(row) > 0 && used+wd > width {
			rows = append(rows, row)
			row, used = nil, 0
		}
		row = append(row, s)
		used += wd
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	return rows
}

func legendWidth(s Series) float64 { return 24 + textWidth(s.Name) + 14 }

// legend draws the rows right-aligned above the plot.
func (c *Chart) legend(b *strings.Builder, rows [][]Series, right float64) {
	for i, row := range rows {
		total := 0.0
		for _, s := range row {
			total += legendWidth(s)
		}
		x, y := right-total+14, 12.0+float64(i)*18
		for _, s := range row {
			dash := ""
			if s.Dash {
				dash = ` stroke-dasharray="5 3"`
			}
			if s.box {
				fmt.Fprintf(b, `<rect x="%s" y="%s" width="14" height="10" fill="%s"/>`, f1(x+2), f1(y-5), color(s.Color))
			} else {
				fmt.Fprintf(b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="2.5"%s/>`, f1(x), f1(x+18), f1(y), f1(y), color(s.Color), dash)
			}
			fmt.Fprintf(b, `<text x="%s" y="%s" dominant-baseline="middle" fill="%s">%s</text>`, f1(x+24), f1(y), textColor, esc(s.Name))
			x += legendWidth(s)
		}
	}
}

// path is the SVG path of the points that can be drawn, broken at gaps
// and at points a log axis cannot show.
func path(pts []Point, xs, ys *scale) string {
	var b strings.Builder
	pen := false
	for _, p := range pts {
		if p.Gap || !xs.ok(p.X) || !ys.ok(p.Y) {
			pen = false
			if !xs.ok(p.X) || !ys.ok(p.Y) {
				continue
			}
		}
		cmd := "L"
		if !pen {
			cmd = "M"
		}
		fmt.Fprintf(&b, "%s%s %s", cmd, f1(xs.at(p.X)), f1(ys.at(p.Y)))
		pen = true
	}
	return b.String()
}

// scale maps data values to drawing coordinates along one axis.
type scale struct {
	axis        *Axis
	categories  []string // a categorical axis: its slots' labels
	min, max    float64  // data range, expanded to ticks
	lo, hi      float64  // drawing coordinates of min and max
	linearTicks float64  // tick step of a linear axis
}

func (c *Chart) scale(a *Axis, horizontal bool) *scale {
	s := &scale{axis: a}
	if horizontal && len(c.Categories) > 0 {
		// One slot per category, each as wide as the others.
		s.min, s.max = -0.5, float64(len(c.Categories))-0.5
		s.categories = c.Categories
		return s
	}
	if a.Max > a.Min && (!a.Log || a.Min > 0) {
		s.min, s.max = a.Min, a.Max
		if !a.Log {
			s.linearTicks = niceStep((s.max - s.min) / 5)
		}
		return s
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	add := func(v float64) {
		if finite(v) && (!a.Log || v > 0) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	for _, sr := range c.Series {
		for _, p := range sr.Points {
			if horizontal {
				add(p.X)
			} else {
				add(p.Y)
			}
		}
	}
	for _, r := range c.Rules {
		if r.Vertical == horizontal && !r.Optional {
			add(r.V)
		}
	}
	if !horizontal {
		for _, total := range c.stackTotals() {
			add(total)
		}
	}
	if a.Zero && !a.Log {
		add(0)
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
		if a.Log {
			lo, hi = 1, 10
		}
	}
	if a.Log {
		// At most twelve decades, within float64's range: a value next to
		// zero must not stretch the axis into nothing.
		hi = min(hi, 1e300)
		lo = min(max(lo, hi*1e-12, 1e-300), hi)
		s.min = math.Pow(10, math.Floor(math.Log10(lo)))
		s.max = math.Pow(10, math.Ceil(math.Log10(hi)))
		if s.max <= s.min {
			s.max = s.min * 10
		}
		return s
	}
	// Within float64's range with room to spare, as for a log axis: the
	// span, its padding and the ticks must stay finite.
	const limit = 1e300
	lo, hi = min(max(lo, -limit), limit), min(max(hi, -limit), limit)
	if hi == lo {
		pad := math.Max(math.Abs(hi)*0.1, 1)
		lo, hi = lo-pad, hi+pad
		if a.Zero && lo < 0 && hi-pad >= 0 {
			lo = 0
		}
	}
	step := niceStep((hi - lo) / 5)
	s.linearTicks = step
	if a.Pad {
		pad := 0.04 * (hi - lo)
		s.min, s.max = lo-pad, hi+pad
		return s
	}
	s.min = math.Floor(lo/step+1e-9) * step
	s.max = math.Ceil(hi/step-1e-9) * step
	return s
}

func (s *scale) ok(v float64) bool {
	return finite(v) && (!s.axis.Log || v > 0)
}

// within reports whether v is inside the axis's range.
func (s *scale) within(v float64) bool {
	return s.ok(v) && v >= s.min && v <= s.max
}

// at maps v to a drawing coordinate.
func (s *scale) at(v float64) float64 {
	var t float64
	if s.axis.Log {
		t = (math.Log10(v) - math.Log10(s.min)) / (math.Log10(s.max) - math.Log10(s.min))
	} else {
		t = (v - s.min) / (s.max - s.min)
	}
	return s.lo + t*(s.hi-s.lo)
}

func (s *scale) ticks() []Tick {
	a := s.axis
	if len(s.categories) > 0 {
		out := make([]Tick, len(s.categories))
		for i, c := range s.categories {
			out[i] = Tick{V: float64(i), Label: c}
		}
		return out
	}
	if len(a.Ticks) > 0 {
		var out []Tick
		for _, t := range a.Ticks {
			if t.V >= s.min-1e-9*math.Abs(s.min) && t.V <= s.max+1e-9*math.Abs(s.max) {
				out = append(out, t)
			}
		}
		return out
	}
	format := a.Format
	if format == nil {
		format = Number
	}
	var out []Tick
	if a.Log {
		decades := math.Log10(s.max / s.min)
		last := math.Round(math.Log10(s.max))
		for e := math.Round(math.Log10(s.min)); e <= last && len(out) < 100; e++ {
			base := math.Pow(10, e)
			out = append(out, Tick{base, format(base)})
			if decades <= 2 {
				for _, m := range []float64{2, 5} {
					if v := m * base; v < s.max {
						out = append(out, Tick{v, format(v)})
					}
				}
			}
		}
		return out
	}
	first := math.Ceil(s.min/s.linearTicks-1e-6) * s.linearTicks
	for i := 0; ; i++ {
		v := first + float64(i)*s.linearTicks
		if v > s.max+s.linearTicks*1e-6 || i > 100 {
			break
		}
		if math.Abs(v) < s.linearTicks*1e-9 {
			v = 0
		}
		out = append(out, Tick{v, format(v)})
	}
	return out
}

// niceStep rounds a rough tick step up to 1, 2, 2.5 or 5 times a power of
// ten.
func niceStep(rough float64) float64 {
	if rough <= 0 || !finite(rough) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(rough)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= rough*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// Number formats a value for a tick label: at most three significant
// digits, k and M for thousands and millions.
func Number(v float64) string {
	av := math.Abs(v)
	switch {
	case av >= 1e6:
		return trim(v/1e6) + "M"
	case av >= 1e4:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string {
	if v == 0 || !finite(v) {
		return "0"
	}
	decimals := max(0, 2-int(math.Floor(math.Log10(math.Abs(v)))))
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func maxWidth(ts []Tick) float64 {
	w := 0.0
	for _, t := range ts {
		w = max(w, textWidth(t.Label))
	}
	return w
}

func textWidth(s string) float64 { return float64(len([]rune(s))) * charWidth }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func f1(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		s = "0"
	}
	return s
}

func color(c string) string {
	if c == "" {
		return "#2563eb"
	}
	return esc(c)
}

func esc(s string) string { return html.EscapeString(s) }
