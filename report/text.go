package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
)

// WriteText renders f as a compact text report that reads well in a
// terminal and in a CI log.
func WriteText(w io.Writer, f *results.File) error {
	var b strings.Builder
	win := f.Window
	fmt.Fprintf(&b, "herd %s: %s -> %s\n", f.Kind, f.Tape, f.Target)
	fmt.Fprintf(&b, "window   %s: %s, %s, %d requests on %d connections = %.1f req/s at 1x\n",
		win.Spec, win.Start.UTC().Format(dateLayout), fmtDur(win.DurationS), win.Requests, win.Conns, win.RPS)
	if len(win.Skipped) > 0 {
		fmt.Fprintf(&b, "         not replayed: %s\n", counts(win.Skipped))
	}
	for _, n := range windowNotes(win) {
		fmt.Fprintf(&b, "         %s\n", n)
	}
	p := f.Params
	fmt.Fprintf(&b, "replay   %s scaling, %s pacing, timeout %s, max %d connections, seed %d, abort on %s\n",
		p.ScaleMode, p.Pacing, fmtDur(p.TimeoutS), p.MaxConns, p.Seed, p.AbortOn)
	if len(p.SLOs) > 0 {
		sat := ""
		if p.Saturation > 0 {
			sat = fmt.Sprintf(", achieved >= %.0f%% of offered", p.Saturation*100)
		}
		fmt.Fprintf(&b, "SLOs     %s%s\n", strings.Join(p.SLOs, ", "), sat)
	}
	b.WriteString("\n")
	if singleReplay(f) {
		writeStep(&b, &f.Steps[0])
	} else {
		writeSteps(&b, f)
		writeDegraded(&b, f)
		writeFirstErrors(&b, f)
	}
	if f.Generator.Limited || len(f.Generator.Notes) > 0 {
		b.WriteString("\ngenerator\n")
		for _, n := range f.Generator.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	if r := f.Recovery; r != nil {
		c := recoveryCard(r)
		fmt.Fprintf(&b, "\nrecovery %s: %s\n", c.Value, c.Note)
	}
	if f.TruthCapacityScale != nil {
		t := *f.TruthCapacityScale
		fmt.Fprintf(&b, "\ntruth    analytic capacity %.2fx; measured %.2fx (%+.1f%%)\n", t, f.Capacity.Scale, 100*(f.Capacity.Scale-t)/t)
	}
	fmt.Fprintf(&b, "\n%s\n", f.Verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeStep(b *strings.Builder, st *results.Step) {
	fmt.Fprintf(b, "step     %gx for %s (+%s settle), %.2f cores used\n", st.Scale, fmtDur(st.DurationS), fmtDur(st.SettleS), st.CPU)
	fmt.Fprintf(b, "requests planned %d, sent %d, completed %d, errors %d (%s), mismatches %d\n",
		st.Planned, st.Sent, st.Completed, st.Errors, pct(st.ErrorRate), st.Mismatches)
	if len(st.NotSent) > 0 {
		fmt.Fprintf(b, "         not sent: %s\n", counts(st.NotSent))
	}
	if len(st.ErrorClasses) > 0 {
		fmt.Fprintf(b, "         errors: %s\n", counts(st.ErrorClasses))
	}
	for _, class := range slices.Sorted(maps.Keys(st.FirstErrors)) {
		fmt.Fprintf(b, "         first %s: %s\n", class, st.FirstErrors[class])
	}
	if st.Unsolicited > 0 {
		fmt.Fprintf(b, "         unsolicited responses: %d, discarded (bytes no request asked for, on idle connections)\n", st.Unsolicited)
	}
	if st.Retried > 0 {
		fmt.Fprintf(b, "         resent: %d (on a fresh connection, after an attempt that wrote nothing of them)\n", st.Retried)
	}
	if st.Attempts > 0 {
		fmt.Fprintf(b, "clients  %d attempts for %d requests (amplification %.2fx); retries: %s\n",
			st.Attempts, st.Sent, st.Amplification, counts(st.Retries))
		if a := st.AttemptLatencyMS; a != nil {
			fmt.Fprintf(b, "         attempt latency %s   (each attempt from its own due time)\n", percentiles(*a))
		}
	}
	fmt.Fprintf(b, "rate     offered %.1f req/s, achieved %.1f req/s\n", st.OfferedRPS, st.AchievedRPS)
	fmt.Fprintf(b, "latency  %s   (from each request's due time)\n", percentiles(st.LatencyMS))
	fmt.Fprintf(b, "service  %s   (from the actual send)\n", percentiles(st.ServiceMS))
	if h := st.HTTP2; h != nil && (h.Resent > 0 || h.SlotWaits > 0) {
		fmt.Fprintf(b, "http/2   %d streams resent after GOAWAY (never processed), %d waited for a stream slot\n", h.Resent, h.SlotWaits)
	}
	if c := st.ConnectMS; c != nil {
		fmt.Fprintf(b, "connect  %s   (TCP, TLS and HTTP/2 setup, per connection)\n", percentiles(*c))
	}
	fmt.Fprintf(b, "lag      schedule p50 %s, p99 %s, max %s; dispatch p99 %s\n",
		st.ScheduleLagMS.Text("p50"), st.ScheduleLagMS.Text("p99"), st.ScheduleLagMS.Text("max"), st.DispatchLagMS.Text("p99"))
	writeTargets(b, st)
	if len(st.Routes) > 0 {
		b.WriteString("\n")
		t := &textfmt.Table{Right: map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true}}
		t.Add("method", "route", "sent", "errors", "mismatch", "p50", "p99", "max")
		for _, r := range st.Routes {
			t.Add(r.Method, r.Route, fmt.Sprint(r.Sent), fmt.Sprint(r.Errors), fmt.Sprint(r.Mismatches),
				r.LatencyMS.Text("p50"), r.LatencyMS.Text("p99"), r.LatencyMS.Text("max"))
		}
		b.WriteString(t.String())
	}
	status := "SLOs met"
	if !st.Passed {
		status = "SLOs failed: " + strings.Join(st.Violations, "; ")
	}
	fmt.Fprintf(b, "\n%s\n", status)
}

func writeSteps(b *strings.Builder, f *results.File) {
	// Client emulation adds the amplification: attempts per request.
	clients := false
	for i := range f.Steps {
		clients = clients || f.Steps[i].Attempts > 0
	}
	t := &textfmt.Table{Right: map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true}}
	first := "scale"
	if f.Kind == results.KindShadow {
		first = "interval" // all at one multiple: told apart by their time
	}
	head := []string{first, "offered/s", "achieved/s", "p50", "p90", "p99", "errors", "mismatch", "lag p99"}
	if clients {
		head = append(head, "attempts/req")
		t.Right[9] = true
	}
	t.Add(append(head, "result")...)
	for i := range f.Steps {
		st := &f.Steps[i]
		kind, detail := stepOutcome(st)
		label := st.Label()
		if f.Kind == results.KindShadow {
			label = st.StartedAt.UTC().Format("15:04:05")
		}
		row := []string{label, fmt.Sprintf("%.1f", st.OfferedRPS), fmt.Sprintf("%.1f", st.AchievedRPS),
			st.LatencyMS.Text("p50"), st.LatencyMS.Text("p90"), st.LatencyMS.Text("p99"), pct(st.ErrorRate), pct(st.MismatchRate),
			st.ScheduleLagMS.Text("p99")}
		if clients {
			row = append(row, fmt.Sprintf("%.2f", max(st.Amplification, 1)))
		}
		t.Add(append(row, textOutcomes[kind]+detail)...)
	}
	b.WriteString(t.String())
}

// textOutcomes introduce a step's outcome in the steps table.
var textOutcomes = map[outcome]string{
	passed: "pass", aborted: "ABORTED: ", interrupted: "interrupted", limited: "generator-limited: ", failed: "FAIL: ",
}

// writeDegraded lists the routes that broke an SLO, in the order they did:
// where a ramp's failure started.
func writeDegraded(b *strings.Builder, f *results.File) {
	slos, err := results.ParseSLOs(f.Params.SLOs)
	if err != nil {
		return
	}
	t := &textfmt.Table{}
	for _, d := range degradation(stepsByScale(f), slos) {
		if d.Step != nil {
			t.Add(d.Step.Label(), d.Method, d.Route, strings.Join(d.Why, "; "))
		}
	}
	writeSection(b, "routes   in the order they first broke an SLO", t)
}

// writeSection writes a heading and, indented under it, a table; nothing
// when the table is empty.
func writeSection(b *strings.Builder, heading string, t *textfmt.Table) {
	if len(t.Rows) == 0 {
		return
	}
	b.WriteString("\n" + heading + "\n")
	for _, line := range strings.SplitAfter(t.String(), "\n") {
		if line != "" {
			b.WriteString("         " + line)
		}
	}
}

// windowNotes say where the replayed window is not what was asked for:
// a recording shorter than the window, idle time left out.
func windowNotes(w results.Window) []string {
	var out []string
	if w.Clamped {
		out = append(out, "the recording is shorter than the window asked for: the whole recording was replayed, its rate over the time it covers")
	}
	if w.IdleRemovedS > 0 {
		out = append(out, fmt.Sprintf("%s of idle time (stretches beyond %s with nothing due) left out of %s recorded",
			fmtDur(w.IdleRemovedS), fmtDur(w.MaxIdleS), fmtDur(w.RecordedS)))
	}
	return out
}

// writeFirstErrors says why requests of a ramp failed: the first error of
// each class, with the step it happened in.
func writeFirstErrors(b *strings.Builder, f *results.File) {
	seen := map[string]bool{}
	t := &textfmt.Table{}
	for i := range f.Steps {
		st := &f.Steps[i]
		for _, class := range slices.Sorted(maps.Keys(st.FirstErrors)) {
			if !seen[class] {
				seen[class] = true
				t.Add(st.Label(), "first "+class+": "+st.FirstErrors[class])
			}
		}
	}
	writeSection(b, "errors   the first of each class", t)
}

// dateLayout writes the times of a run in the reports.
const dateLayout = "2006-01-02 15:04:05 MST"

// singleReplay tells the layouts apart: a replay (one step) is shown as
// that step, anything else as a ramp, even a ramp of one step. A replay
// file without exactly one step is not one a replay writes, and is shown
// as a ramp too.
func singleReplay(f *results.File) bool { return f.Kind == "replay" && len(f.Steps) == 1 }

// outcome is how a step ended.
type outcome int

const (
	passed outcome = iota
	aborted
	interrupted
	limited // herd itself was the limit
	failed
)

// stepOutcome says how st ended, with what goes with it: the emergency
// stop's reason, the generator's notes, or the SLO violations and the
// route blamed. Each renderer words the outcome its own way.
func stepOutcome(st *results.Step) (outcome, string) {
	switch {
	case st.Aborted:
		return aborted, st.AbortReason
	case st.Interrupted:
		return interrupted, ""
	case st.Generator.Limited:
		return limited, strings.Join(st.Generator.Notes, "; ")
	case !st.Passed:
		why := strings.Join(st.Violations, "; ")
		if st.FailedRoute != "" {
			why += " (" + st.FailedRoute + ")"
		}
		return failed, why
	}
	return passed, ""
}

// percentiles writes the figures of a latency histogram on one line.
func percentiles(p results.Percentiles) string {
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, p99.9 %s, max %s", p.Text("p50"), p.Text("p90"), p.Text("p99"), p.Text("p999"), p.Text("max"))
}

// ms writes a latency in milliseconds as every text of herd does.
func ms(v float64) string { return textfmt.Millis(v) }

func pct(f float64) string {
	if f == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.2f%%", f*100)
}

func fmtDur(s float64) string { return textfmt.Seconds(s) }

func counts(m results.Counts) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// writeTargets lists where the requests went, for a run to several
// targets (--target-map).
func writeTargets(b *strings.Builder, st *results.Step) {
	if len(st.Targets) == 0 {
		return
	}
	b.WriteString("\n")
	t := &textfmt.Table{Right: map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true}}
	t.Add("server", "target", "sent", "errors", "not sent", "p50", "p99", "max")
	for _, x := range st.Targets {
		t.Add(x.Name, x.Target, fmt.Sprint(x.Sent), fmt.Sprint(x.Errors), fmt.Sprint(x.NotSent),
			x.LatencyMS.Text("p50"), x.LatencyMS.Text("p99"), x.LatencyMS.Text("max"))
	}
	b.WriteString(t.String())
}
