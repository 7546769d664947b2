package cli

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
)

// syncBuffer is a bytes.Buffer safe for mpb's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// viewEvent is one thing a ramp tells the view.
type viewEvent struct {
	what string
	do   func(v *progressView)
}

// scriptedRamp is a 2-step ramp as the replay engine reports it, by
// snapshot: 1x passes; 2x fails its SLOs on /login while it runs. No
// clock is read: the frames depend on the snapshots alone.
func scriptedRamp(t *testing.T) ([]results.SLO, []viewEvent) {
	t.Helper()
	slos, err := results.ParseSLOs([]string{"p99<1s", "errors<1%"})
	if err != nil {
		t.Fatal(err)
	}
	routes := func(loginP99, cartP99 float64, loginErr, cartErr int64) []results.Route {
		return []results.Route{
			{Method: "POST", Route: "/login", Sent: 180, Completed: 180 - loginErr, Errors: loginErr,
				ErrorRate: results.Fraction(loginErr, 180), LatencyMS: results.Percentiles{P50: loginP99 / 3, P99: loginP99}},
			{Method: "GET", Route: "/api/cart/:id/items", Sent: 600, Completed: 600 - cartErr, Errors: cartErr,
				ErrorRate: results.Fraction(cartErr, 600), LatencyMS: results.Percentiles{P50: cartP99 / 3, P99: cartP99}},
		}
	}
	measured := func(p99 float64, sent, errs int64, r []results.Route) *results.Step {
		return &results.Step{Sent: sent, Completed: sent - errs, Errors: errs, ErrorRate: results.Fraction(errs, sent),
			LatencyMS: results.Percentiles{P50: p99 / 4, P99: p99}, Routes: r}
	}
	snap := func(k float64, elapsed time.Duration, planned, sent, errs, inflight int64, offered, achieved float64, p99 time.Duration, m *results.Step) func(*progressView) {
		return func(v *progressView) {
			v.Update(replay.Progress{Scale: k, Elapsed: elapsed, Duration: 6 * time.Second, Planned: planned, Sent: sent,
				Completed: sent - errs, Errors: errs, InFlight: inflight, OfferedRPS: offered, AchievedRPS: achieved,
				P99: p99, Done: elapsed > 6200*time.Millisecond, Measured: m})
		}
	}
	return slos, []viewEvent{
		{"the ramp starts", func(v *progressView) { v.Ramp(2, "1x to 2x by 1x") }},
		{"step 1 starts", func(v *progressView) { v.Step("step 1/2 1x") }},
		{"1x at 0.4s: no rates yet", snap(1, 400*time.Millisecond, 1116, 70, 0, 3, 0, 0, 0, nil)},
		{"1x at 3.2s", snap(1, 3200*time.Millisecond, 1116, 595, 0, 4, 186.2, 185.9, 87400*time.Microsecond,
			measured(85.1, 400, 0, routes(120, 40, 0, 0)))},
		{"1x at 6.1s: past its length, draining", snap(1, 6100*time.Millisecond, 1116, 1116, 0, 5, 186.0, 186.3, 88*time.Millisecond,
			measured(87.4, 932, 0, routes(121, 41, 0, 0)))},
		{"1x done", snap(1, 6300*time.Millisecond, 1116, 1116, 0, 0, 186.0, 186.1, 88*time.Millisecond,
			measured(87.4, 932, 0, routes(121, 41, 0, 0)))},
		{"1x ends: passed", func(v *progressView) {
			v.EndStep(&results.Step{Scale: 1, Sent: 932, OfferedRPS: 186.0, AchievedRPS: 186.1,
				LatencyMS: results.Percentiles{P99: 87.4}, Passed: true, Violations: []string{}})
		}},
		{"step 2 starts", func(v *progressView) { v.Step("step 2/2 2x") }},
		{"2x at 2.5s: slower, still within its SLOs", snap(2, 2500*time.Millisecond, 2232, 930, 3, 61, 372.4, 365.0, 640*time.Millisecond,
			measured(610, 560, 3, routes(900, 300, 2, 1)))},
		{"2x at 4.6s: failing on /login", snap(2, 4600*time.Millisecond, 2232, 1712, 41, 240, 372.1, 301.7, 1730*time.Millisecond,
			measured(1410, 1320, 32, routes(2900, 300, 29, 3)))},
		{"2x ends: failed", func(v *progressView) {
			v.EndStep(&results.Step{Scale: 2, Sent: 1861, Errors: 45, ErrorRate: 0.0242, OfferedRPS: 372.0, AchievedRPS: 298.4,
				LatencyMS: results.Percentiles{P99: 1532}, FailedRoute: "/login",
				Violations: []string{"p99 1.53s > 1s", "errors 2.42% > 1%", "achieved 298.4 req/s < 90% of offered 372.0 req/s"}})
		}},
	}
}

// TestProgressFrames is the golden of the live view of a scripted 2-step
// ramp at 80 and 120 columns, a frame after each event, and checks what
// the frames must show whatever their layout.
func TestProgressFrames(t *testing.T) {
	for _, width := range []int{80, 120} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			slos, events := scriptedRamp(t)
			// The view without a terminal: only its state is used here.
			v := newProgressViewWidth(IO{Err: &bytes.Buffer{}}, time.Hour, slos, 0)
			var b strings.Builder
			frames := map[string][]string{}
			for _, e := range events {
				e.do(v)
				f := v.state.frame(width)
				frames[e.what] = f
				fmt.Fprintf(&b, "== %s\n", e.what)
				for _, l := range f {
					if n := runes(l); n > width {
						t.Errorf("%s: a line of %d columns on a %d-column terminal: %q", e.what, n, width, l)
					}
					fmt.Fprintf(&b, "%s|\n", l)
				}
			}
			golden(t, fmt.Sprintf("progress-%d.golden", width), b.String())

			has := func(event string, want ...string) {
				t.Helper()
				got := strings.Join(frames[event], "\n")
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: the frame lacks %q:\n%s", event, w, got)
					}
				}
			}
			lacks := func(event string, bad ...string) {
				t.Helper()
				got := strings.Join(frames[event], "\n")
				for _, w := range bad {
					if strings.Contains(got, w) {
						t.Errorf("%s: the frame shows %q:\n%s", event, w, got)
					}
				}
			}
			// Item 9: no rate before a second has passed, not 0.0/s; the
			// most important figures are on screen at 80 columns.
			has("1x at 0.4s: no rates yet", "achieved — of — offered", "p99 —")
			lacks("1x at 0.4s: no rates yet", "0/s")
			has("1x at 3.2s", "p99 87.4ms", "errors 0", "achieved 186/s of 186/s offered", "3s/6s")
			// Item 8: the clock stops at the step's length, then drains.
			has("1x at 6.1s: past its length, draining", "6s/6s draining 5 in flight")
			lacks("1x at 6.1s: past its length, draining", "7s/6s")
			// Item 7: a finished step keeps its own figures while the next
			// one runs.
			for _, e := range []string{"step 2 starts", "2x at 4.6s: failing on /login", "2x ends: failed"} {
				has(e, "step 1/2 1x  pass  p99 87.4ms  errors 0%  achieved 186/s of 186/s offered")
			}
			// Item 11: the verdict as it happens, with the route, and the
			// breaking point so far on the ramp's line.
			lacks("2x at 2.5s: slower, still within its SLOs", "failing")
			has("2x at 4.6s: failing on /login", "failing so far: p99 1.41s > 1s", "route /login", "2x failing so far, holds 1x")
			has("2x ends: failed", "FAIL", "p99 1.53s", "ramp  2/2 steps", "breaks at 2x, holds 1x", "route /login")
		})
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// TestProgressTerminal drives the mpb path on a fake terminal of 80
// columns as a ramp does, concurrently with mpb's renderer: it must
// finish, draw the frames, and never draw a line wider than the terminal.
func TestProgressTerminal(t *testing.T) {
	var out syncBuffer
	slos, events := scriptedRamp(t)
	v := newProgressViewWidth(IO{Err: &out, ErrTTY: true}, time.Second, slos, 80)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, e := range events {
			e.do(v)
			time.Sleep(20 * time.Millisecond)
		}
		v.Close()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the progress view deadlocked")
	}
	s := ansi.ReplaceAllString(out.String(), "")
	for _, l := range strings.Split(s, "\n") {
		if runes(l) > 80 {
			t.Errorf("a line of %d columns: %q", runes(l), l)
		}
	}
	// The last frame drawn is the final state.
	last := strings.Join(v.state.frame(80), "\n")
	if !strings.HasSuffix(strings.TrimRight(s, "\n"), last) {
		t.Errorf("the last frame drawn is not the final one:\n%s\n--- want at the end\n%s", s, last)
	}
}

// TestProgressLog: without a terminal, status lines: the step's start,
// its figures every period, the live verdict as it changes, each outcome
// and the breaking point.
func TestProgressLog(t *testing.T) {
	var out syncBuffer
	slos, events := scriptedRamp(t)
	// A period of 0: every snapshot gets a status line.
	v := newProgressViewWidth(IO{Err: &out}, 0, slos, 0)
	for _, e := range events {
		e.do(v)
	}
	v.Close()
	s := out.String()
	for _, want := range []string{
		"herd: step 1/2 1x: starting\n",
		"herd: step 1/2 1x: 3s/6s  p99 87.4ms  errors 0  achieved 186/s of 186/s offered  4 in flight  sent 595/1116\n",
		"herd: step 1/2 1x: pass  p99 87.4ms  errors 0%  achieved 186/s of 186/s offered  sent 932\n",
		"herd: step 2/2 2x: failing so far: p99 1.41s > 1s; errors 2.42% > 1% · route /login\n",
		"herd: step 2/2 2x: FAIL: p99 1.53s > 1s; errors 2.42% > 1%; achieved 298.4 req/s < 90% of offered 372.0 req/s · route /login",
		"herd: ramp: breaks at 2x, holds 1x\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\x1b[") {
		t.Errorf("terminal escapes in a log:\n%q", s)
	}
}

// TestProgressZeroSize: a terminal that reports 0×0 columns gets status
// lines, not a view mpb would draw nowhere.
func TestProgressZeroSize(t *testing.T) {
	var out syncBuffer
	slos, events := scriptedRamp(t)
	v := newProgressViewWidth(IO{Err: &out, ErrTTY: true}, 0, slos, 0)
	if v.p != nil {
		t.Fatal("mpb on a terminal of no size")
	}
	for _, e := range events {
		e.do(v)
	}
	v.Close()
	if s := out.String(); !strings.Contains(s, "herd: step 1/2 1x: starting") || !strings.Contains(s, "herd: step 2/2 2x: FAIL") {
		t.Errorf("no status lines:\n%s", s)
	}
}

// TestRampStatus: the ramp's line says where the ramp stands after each
// kind of step outcome; a step herd could not drive says nothing once
// its rerun passed.
func TestRampStatus(t *testing.T) {
	pass := func(k float64) *results.Step { return &results.Step{Scale: k, Passed: true} }
	fail := func(k float64) *results.Step { return &results.Step{Scale: k} }
	limited := func(k float64) *results.Step {
		return &results.Step{Scale: k, Passed: true, Generator: results.Generator{Limited: true}}
	}
	again := func(st *results.Step) *results.Step { st.Retry = true; return st }
	for _, c := range []struct {
		steps []*results.Step
		want  string
	}{
		{nil, ""},
		{[]*results.Step{pass(1), pass(2)}, "holds 2x so far"},
		{[]*results.Step{pass(1), limited(2)}, "herd was the limit at 2x"},
		{[]*results.Step{limited(1), again(pass(1)), pass(2)}, "holds 2x so far"},
		{[]*results.Step{fail(1)}, "breaks at 1x, the first step"},
		{[]*results.Step{pass(1), pass(2), pass(3), fail(4), fail(3.5), pass(3.25)}, "breaks at 3.5x, holds 3.25x"},
		{[]*results.Step{pass(1), {Scale: 2, Aborted: true}}, "emergency stop at 2x"},
		{[]*results.Step{pass(1), {Scale: 2, Interrupted: true}}, "interrupted at 2x"},
	} {
		var s liveState
		for _, st := range c.steps {
			s.startStep(st.Label())
			s.current().final = st
		}
		if got := s.rampStatus(); got != c.want {
			t.Errorf("%d steps: got %q, want %q", len(c.steps), got, c.want)
		}
	}
}

// TestProgressIdle: in a long stretch of the recording with nothing due,
// the step says until when it is idle (on the clock of the snapshot) and
// how long the recorded gap was, not that nothing is offered.
func TestProgressIdle(t *testing.T) {
	v := newProgressViewWidth(IO{Err: &bytes.Buffer{}}, time.Hour, nil, 0)
	v.now = func() time.Time { return time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC) }
	v.Step("1x")
	v.Update(replay.Progress{Scale: 1, Elapsed: 10 * time.Second, Duration: 5 * time.Minute, Planned: 100, Sent: 40,
		IdleUntil: 70 * time.Second, IdleRecorded: 2*time.Hour + 5*time.Minute})
	got := strings.Join(v.state.frame(120), "\n")
	if !strings.Contains(got, "idle until 14:01:00 (recorded gap 2h05m)") || strings.Contains(got, "achieved") {
		t.Errorf("frame:\n%s", got)
	}
	for _, l := range v.state.frame(80) {
		if runes(l) > 80 {
			t.Errorf("a line of %d columns: %q", runes(l), l)
		}
	}
}
