package report

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/results"
	"golang.org/x/net/html"
)

// node helpers over golang.org/x/net/html's tree.

func parseHTML(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func walk(n *html.Node, visit func(*html.Node)) {
	visit(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, visit)
	}
}

func elements(root *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(root, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	})
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return b.String()
}

func byID(root *html.Node, id string) *html.Node {
	var found *html.Node
	walk(root, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && attr(n, "id") == id {
			found = n
		}
	})
	return found
}

// TestHTMLRamp parses the report of a real ramp as a browser would and
// checks what a reader needs: the verdict and its numbers, every chart
// with its axes, the breaking point marked, the tables.
func TestHTMLRamp(t *testing.T) {
	f := fixture(t, "demo-ramp")
	out := render(t, f, "html")
	doc := parseHTML(t, out)
	checkSelfContained(t, out, doc, f.Target)

	verdict := byID(doc, "verdict")
	if verdict == nil || !strings.Contains(text(verdict), "Breaks at 4x, holds 3x") || !strings.Contains(text(verdict), f.Verdict) {
		t.Errorf("verdict section: %q", text(verdict))
	}
	if cl := attr(verdict, "class"); !strings.Contains(cl, "fail") {
		t.Errorf("verdict class %q: a broken target is shown as a failure", cl)
	}
	numbers := text(byID(doc, "numbers"))
	for _, want := range []string{"Breaking point", "4x", "Last good", "3x", "Refined estimate", "3.125x", "369.6 req/s", "3.03x", "122.0 req/s", "3.06x"} {
		if !strings.Contains(numbers, want) {
			t.Errorf("the numbers lack %q: %q", want, numbers)
		}
	}

	svgs := elements(doc, "svg")
	labels := map[string]*html.Node{}
	for _, s := range svgs {
		labels[attr(s, "aria-label")] = s
		if attr(s, "viewBox") == "" {
			t.Errorf("chart %q has no viewBox: it would not scale", attr(s, "aria-label"))
		}
	}
	for _, c := range []struct {
		chart string
		texts []string
	}{
		{"Offered and achieved throughput by scale", []string{"scale (multiple of the window's rate)", "requests per second", "offered", "achieved (successful)", "capacity 369.6 req/s", "breaks at 4x", "refined ~3.125x"}},
		{"Latency against achieved throughput", []string{"achieved throughput (successful responses per second)", "latency (ms, log scale)", "p50", "p99", "capacity 369.6 req/s", "SLO p99<1s", "1x", "2x", "4x"}},
		{"Latency percentiles by scale", []string{"latency (ms, log scale)", "p50", "p90", "p99", "p99.9", "SLO p99<1s", "breaks at 4x"}},
		{"Errors by class and scale", []string{"% of requests sent", "http_5xx", "SLO errors<1%", "1x", "~3.25x", "4x"}},
		{"Latency by percentile distribution", []string{"percentile", "90%", "99%", "99.9%", "1x", "4x", "~3.25x", "SLO p99<1s"}},
		{"Latency over time", []string{"seconds since the first step started", "latency (ms, log scale)", "SLO p99<1s", "~3.5x"}},
		{"Requests over time", []string{"requests per second", "achieved (successful, by completion second)", "sent (by due second)"}},
	} {
		s := labels[c.chart]
		if s == nil {
			t.Errorf("no chart %q (charts: %v)", c.chart, slices.Collect(maps.Keys(labels)))
			continue
		}
		got := text(s)
		for _, want := range c.texts {
			if !strings.Contains(got, want) {
				t.Errorf("chart %q lacks %q", c.chart, want)
			}
		}
		if n := len(elements(s, "path")) + len(elements(s, "rect")); n == 0 {
			t.Errorf("chart %q draws nothing", c.chart)
		}
	}
	// Each point of the charts by scale has a tooltip with its numbers.
	tips := text(labels["Latency percentiles by scale"])
	if !strings.Contains(tips, "4x: p99 1.73s") {
		t.Errorf("no tooltip for the p99 at 4x")
	}

	steps := byID(doc, "steps")
	if rows := elements(steps, "tr"); len(rows) != len(f.Steps)+1 {
		t.Errorf("steps table: %d rows for %d steps", len(rows), len(f.Steps))
	}
	if !strings.Contains(text(steps), "FAIL: p99 1.73s > 1s") {
		t.Errorf("the failing step's reason is not in the steps table")
	}
	routes := elements(byID(doc, "routes"), "tr")
	if len(routes) != 1+len(f.Steps[0].Routes) {
		t.Fatalf("routes table: %d rows", len(routes))
	}
	first := text(routes[1])
	if !strings.Contains(first, "~3.5x") || !strings.Contains(first, "p99 1.16s > 1s") {
		t.Errorf("the first route row is not the first to degrade: %q", first)
	}
	// The demo's routes share its reader slots and degrade together, so the
	// breaking point names none, and no row is marked as the one.
	if f.BreakingPoint.Route != "" {
		t.Fatalf("the fixture's breaking point names %q", f.BreakingPoint.Route)
	}
	for _, r := range routes[1:] {
		if strings.Contains(text(r), "breaking point") {
			t.Errorf("a route is marked though the breaking point names none: %q", text(r))
		}
	}
	params := text(byID(doc, "params"))
	for _, want := range []string{"peak:5s", "clone scaling, session pacing", "p99<1s, errors<1%", "2s before each refinement step", "10000 connections"} {
		if !strings.Contains(params, want) {
			t.Errorf("run parameters lack %q", want)
		}
	}
}

func TestHTMLReplay(t *testing.T) {
	f := fixture(t, "replay-http-server")
	out := render(t, f, "html")
	doc := parseHTML(t, out)
	checkSelfContained(t, out, doc, f.Target)
	if v := text(byID(doc, "verdict")); !strings.Contains(v, "SLOs failed at 1x") {
		t.Errorf("verdict %q", v)
	}
	// One step: no charts by scale, but the distribution (with service
	// time and schedule lag) and the timeline.
	var labels []string
	for _, s := range elements(doc, "svg") {
		labels = append(labels, attr(s, "aria-label"))
	}
	if strings.Join(labels, "|") != "Latency by percentile distribution|Latency over time|Requests over time" {
		t.Errorf("charts %q", labels)
	}
	numbers := text(byID(doc, "numbers"))
	for _, want := range []string{"29.2 req/s", "of 32.5 req/s offered", "1.97ms", "6.17ms", "10.15%"} {
		if !strings.Contains(numbers, want) {
			t.Errorf("numbers lack %q: %q", want, numbers)
		}
	}
	routes := text(byID(doc, "routes"))
	if !strings.Contains(routes, "errors 100% > 1%") || !strings.Contains(routes, "not judged: under 20 requests") {
		t.Errorf("routes: %q", routes)
	}
}

// checkSelfContained fails on anything that would make the page reach the
// network: scripts, stylesheets, images, frames, fonts, any URL in an
// attribute or in CSS. The only URLs allowed are the target's and the
// tape's, shown as text.
func checkSelfContained(t *testing.T, out string, doc *html.Node, allowed ...string) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "link", "img", "iframe", "object", "embed", "image", "use", "audio", "video", "source", "base", "form":
			t.Errorf("<%s> in a self-contained report", n.Data)
		}
		for _, a := range n.Attr {
			k := strings.ToLower(a.Key)
			if k == "src" || k == "href" || k == "xlink:href" || k == "action" || k == "srcset" || strings.HasPrefix(k, "on") {
				t.Errorf("<%s %s=%q>: a reference out of the page", n.Data, a.Key, a.Val)
			}
			if strings.Contains(a.Val, "url(") && !strings.Contains(a.Val, "url(#") {
				t.Errorf("<%s %s=%q>: a URL", n.Data, a.Key, a.Val)
			}
		}
		if n.Data == "style" {
			css := text(n)
			if strings.Contains(css, "@import") || strings.Contains(css, "url(") || strings.Contains(css, "@font-face") {
				t.Errorf("the stylesheet fetches something: %q", css)
			}
		}
	})
	rest := out
	for _, a := range allowed {
		rest = strings.ReplaceAll(rest, a, "")
	}
	for _, scheme := range []string{"http://", "https://", "//fonts", "data:"} {
		if i := strings.Index(rest, scheme); i >= 0 {
			t.Errorf("%q in the page: %q", scheme, rest[max(0, i-60):min(len(rest), i+60)])
		}
	}
	ids := map[string]bool{}
	walk(doc, func(n *html.Node) {
		if id := attr(n, "id"); n.Type == html.ElementNode && id != "" {
			if ids[id] {
				t.Errorf("id %q twice", id)
			}
			ids[id] = true
		}
	})
}

// TestHTMLEscapes: names from the traffic are text, never markup.
func TestHTMLEscapes(t *testing.T) {
	f := fixture(t, "demo-ramp")
	evil := `/x"><script>alert(1)</script>`
	for i := range f.Steps {
		f.Steps[i].Routes[0].Route = evil
	}
	f.Target = `http://h/<img src=x onerror=alert(1)>`
	f.Params.SLOs = append(f.Params.SLOs, "p99("+evil+")<1s")
	out := render(t, f, "html")
	if strings.Contains(out, "<script>") || strings.Contains(out, "<img") {
		t.Fatalf("markup from the results reached the page")
	}
	doc := parseHTML(t, out)
	if !strings.Contains(text(byID(doc, "routes")), evil) {
		t.Errorf("the route's name is not shown as text")
	}
}

// TestHTMLSparse renders files with little in them: nothing may fail, and
// the charts say there is no data rather than draw nothing.
func TestHTMLSparse(t *testing.T) {
	f := fixture(t, "replay-http-server")
	f.Steps[0].Timeline = nil
	f.Steps[0].Histograms.Latency = ""
	f.Steps[0].Routes = nil
	out := render(t, f, "html")
	if !strings.Contains(out, "no timeline recorded") {
		t.Errorf("an empty chart does not say so")
	}
	f.Steps = nil
	f.Verdict = "No step completed."
	if out := render(t, f, "html"); !strings.Contains(out, "No step completed") {
		t.Errorf("a file without steps: %s", out)
	}
}

// TestHTMLGeneratorLimited: when herd itself was the limit, the page says
// so first, in amber, lists the notes and draws those steps hollow.
func TestHTMLGeneratorLimited(t *testing.T) {
	f := fixture(t, "demo-fixed-ramp")
	// The ramp ends where herd is the limit: at 3x.
	f.Steps = f.Steps[:3]
	f.Steps[2].Generator = results.Generator{Limited: true, Notes: []string{"CPU saturated: herd used 1.98 of 2 cores"}}
	results.Analyze(f)
	doc := parseHTML(t, render(t, f, "html"))
	verdict := byID(doc, "verdict")
	if !strings.Contains(attr(verdict, "class"), "limited") || !strings.Contains(text(verdict), "herd was the limit at 3x") {
		t.Errorf("verdict %q (class %q)", text(verdict), attr(verdict, "class"))
	}
	if notes := text(byID(doc, "generator")); !strings.Contains(notes, "3x: CPU saturated") {
		t.Errorf("generator notes: %q", notes)
	}
	if numbers := text(byID(doc, "numbers")); !strings.Contains(numbers, "Last good2x") || !strings.Contains(numbers, "≥ ") {
		t.Errorf("numbers: %q", numbers)
	}
	hollow := 0
	for _, c := range elements(doc, "circle") {
		if attr(c, "fill") == "#fff" && !strings.HasPrefix(text(c), "SLO ") { // an SLO's ring is hollow too
			hollow++
		}
	}
	if hollow != 7 { // achieved, four percentiles, p50 and p99 on the capacity curve
		t.Errorf("%d hollow points, want the 3x step's 7", hollow)
	}
}

// TestOneStepRamp: a ramp of one step is shown as a ramp, in every part of
// the page and in the text, and a replay as a replay: one rule decides.
func TestOneStepRamp(t *testing.T) {
	f := fixture(t, "demo-ramp")
	f.Steps = f.Steps[:1]
	results.Analyze(f)
	doc := parseHTML(t, render(t, f, "html"))
	if v := text(byID(doc, "verdict")); strings.Contains(v, "SLOs met at") || !strings.Contains(v, "Holds 1x") {
		t.Errorf("verdict %q, want a ramp's", v)
	}
	numbers := text(byID(doc, "numbers"))
	if strings.Contains(numbers, "Latency p50") || !strings.Contains(numbers, "Capacity") {
		t.Errorf("numbers %q, want a ramp's", numbers)
	}
	if head := text(elements(byID(doc, "routes"), "thead")[0]); !strings.Contains(head, "degraded first at") {
		t.Errorf("routes table %q, want a ramp's", head)
	}
	dist := text(elements(doc, "svg")[0])
	if strings.Contains(dist, "service time") || !strings.Contains(dist, "1x") {
		t.Errorf("distribution chart %q, want one line per step", dist)
	}
	out := render(t, f, "text")
	if strings.Contains(out, "requests planned") || !strings.Contains(out, "offered/s") {
		t.Errorf("text, want the steps table:\n%s", out)
	}

	// The replay fixture, one step too, keeps the replay's layout.
	r := fixture(t, "replay-http-server")
	doc = parseHTML(t, render(t, r, "html"))
	if head := text(elements(byID(doc, "routes"), "thead")[0]); strings.Contains(head, "degraded first at") {
		t.Errorf("replay routes table %q", head)
	}
	if out := render(t, r, "text"); !strings.Contains(out, "requests planned") {
		t.Errorf("replay text:\n%s", out)
	}
}
