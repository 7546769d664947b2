package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
	"github.com/klauspost/compress/zstd"
)

// aggregator owns every histogram and counter of a run. Results arrive on
// its run's channels (one at a time, or in batches from an event loop), so
// it is the single owner hdrhistogram needs, with no locks.
type aggregator struct {
	r        *run
	settle   int64 // ns from time zero
	end      int64
	planned  int64
	measured int64 // requests due in the measured period
	// remaining are the requests of the measured period a stop cut off:
	// due after it, never sent, and outside the period the step ran.
	remaining int64

	sent, completed, errs, mismatches, good int64
	written, retried, unsolicited           int64
	attempts                                int64          // client emulation: every attempt
	retries                                 results.Counts // client emulation: retries by trigger
	attemptLat                              *hdr.Histogram
	classes                                 results.Counts
	notSent                                 results.Counts
	firstErrors                             map[string]string

	// The last failure of the run, to say why the emergency stop fired.
	lastClass string
	lastFail  failure

	latency, service, ttfb, lag, dispatch *hdr.Histogram
	connect                               *hdr.Histogram // connection setup (TCP, TLS, HTTP/2 settings)
	routes                                []routeAgg
	targets                               []targetAgg // by Req.Target, with several targets (targets.go)
	seconds                               []*secondAgg

	abort       *abortWindow
	abortReason string

	// Sent and failed over the whole run, settle included, for progress.
	allSent, allErr int64
	recent          [8]recentSecond // the last seconds, for progress; see recentAt
	sendSamples     []sendSample    // engine.sends on each tick, the last 5 s
	live            liveMeasure     // the last Progress.Measured

	raw    *zstd.Encoder
	rawErr error
}

type routeAgg struct {
	sent, completed, errors, mismatches int64
	attempts                            int64 // client emulation
	hist                                *hdr.Histogram
}

type secondAgg struct {
	finished                            int64 // successful responses completed in this second
	due                                 int64 // requests due in this second, sent or not
	sent, completed, errors, mismatches int64
	attempts                            int64 // client emulation
	hist                                *hdr.Histogram
	encoded                             string
}

// recentSecond is one second of the run, for the progress line: the
// successful responses completed in it, and their latency.
type recentSecond struct {
	sec  int64
	good int64
	hist *hdr.Histogram
}

// sendSample is the number of requests sent by a time, for the send rate:
// a request is known here only once it finishes, too late to show what is
// being offered to a target that has stopped answering.
type sendSample struct{ at, sends int64 }

func newAggregator(r *run, planned, measured int64) *aggregator {
	a := &aggregator{
		r:           r,
		settle:      int64(r.o.Settle),
		end:         int64(r.s.Duration),
		planned:     planned,
		measured:    measured,
		classes:     results.Counts{},
		notSent:     results.Counts{},
		firstErrors: map[string]string{},
		latency:     results.NewHist(),
		service:     results.NewHist(),
		ttfb:        results.NewHist(),
		lag:         results.NewHist(),
		dispatch:    results.NewHist(),
		connect:     results.NewHist(),
		attemptLat:  results.NewHist(),
		retries:     results.Counts{},
		routes:      make([]routeAgg, len(r.p.Routes)),
		targets:     newTargetAggs(r.p),
		seconds:     make([]*secondAgg, int((r.s.Duration+time.Second-1)/time.Second)),
		abort:       newAbortWindow(r.o.Abort),
	}
	for i := range a.recent {
		a.recent[i] = recentSecond{sec: -1, hist: results.NewTimelineHist()}
	}
	if r.o.Raw != nil {
		a.raw, a.rawErr = zstd.NewWriter(r.o.Raw, zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	return a
}

func (a *aggregator) run() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastProgress := time.Now()
	in, batches := a.r.results, a.r.batches
	for in != nil || batches != nil {
		select {
		case r, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			a.add(r)
		case b, ok := <-batches:
			if !ok {
				batches = nil
				continue
			}
			for i := range b {
				a.add(b[i])
			}
			clear(b)
			select {
			case a.r.free <- b[:0]:
			default:
			}
		case <-tick.C:
			now := nanotime() - a.r.t0
			a.sampleSends(now)
			a.checkAbort(now)
			a.finalizeSeconds(now)
			if a.r.o.Progress != nil && time.Since(lastProgress) >= a.r.o.ProgressEvery {
				a.r.o.Progress(a.progress(now, false))
				lastProgress = time.Now()
			}
		}
	}
	a.finish()
}

func (a *aggregator) checkAbort(now int64) {
	if a.abortReason != "" {
		return
	}
	if why := a.abort.check(now); why != "" {
		if a.lastClass != "" {
			why += "; the last: " + a.lastClass + ": " + describe(a.lastClass, a.lastFail, a.r.o.Timeout)
		}
		a.abortReason = why
		a.r.halt(errAborted)
		if a.r.o.OnAbort != nil {
			a.r.o.OnAbort(why)
		}
	}
}

func (a *aggregator) add(r result) {
	t0 := a.r.t0
	if r.event {
		// Found on a connection herd was closing: counted when found, from
		// the end of the settle period on, whenever the step ended.
		if r.unsolicited && r.due-t0 >= a.settle {
			a.unsolicited++
		}
		return
	}
	// A request's period and timeline second are those of its first
	// attempt's due time; each attempt has its own due time for its lag.
	logical := r.due
	if r.logical != 0 {
		logical = r.logical
	}
	due := logical - t0
	failed := r.class != ""
	if r.notSent == "" {
		done := r.done - t0
		// Every attempt is load the target saw and a failure it may have
		// caused: the emergency stop judges attempts.
		if !generatorClass(r.class) && !r.outcomeOnly {
			a.abort.add(done, failed)
			if failed {
				a.checkAbort(done) // only a failure can trip the rule
			}
		}
		if !r.nonFinal {
			a.allSent++
			if failed {
				a.allErr++
				if !generatorClass(r.class) && r.fail != nil {
					a.lastClass, a.lastFail = r.class, *r.fail
				}
			}
			a.noteRecent(r)
			// Throughput is counted by completion time, whenever the
			// request was due: under load, what completes early in the
			// period was due before it, and must count. What completes
			// after a stop, while herd drains, is outside the period the
			// step ran.
			if stop := a.r.stoppedAt.Load(); !failed && done >= a.settle && done < a.end && (stop == 0 || r.done < stop) {
				a.good++
				a.second(done).finished++
			}
		}
	}
	if !r.outcomeOnly {
		a.writeRaw(r)
	}
	if due < a.settle || due >= a.end {
		return
	}
	a.second(due).due++
	if r.notSent != "" {
		a.notSent[r.notSent]++
		countTarget(a.targets, &r, "", 0)
		return
	}
	sec := a.second(due)
	if r.outcomeOnly {
		a.outcome(r, logical, sec)
		return
	}
	// What each attempt did on the wire.
	if r.written {
		a.written++
	}
	if r.retried {
		a.retried++
	}
	if r.unsolicited {
		a.unsolicited++
	}
	if a.r.o.emulating() {
		a.attempts++
		sec.attempts++
		results.Record(a.attemptLat, r.done-r.due)
		if r.nonFinal {
			a.retries[r.trigger]++
			return // the request goes on: its outcome is its last attempt's
		}
	}
	a.outcome(r, logical, sec)
}

// outcome counts a request by its last attempt r: sent, completed or
// failed, its latency from its first attempt's due time (logical).
func (a *aggregator) outcome(r result, logical int64, sec *secondAgg) {
	a.sent++
	rt := &a.routes[r.route]
	rt.sent++
	sec.sent++
	latency := r.done - logical
	class := r.class
	if r.gaveUp {
		class = ClassGaveUp
	}
	if class != "" {
		a.errs++
		a.classes[class]++
		if _, ok := a.firstErrors[class]; !ok {
			f := failure{}
			if r.fail != nil {
				f = *r.fail
			}
			bound := a.r.o.Timeout
			if r.class == ClassClientTimeout {
				bound = a.r.o.ClientTimeout
			}
			msg := describe(r.class, f, bound)
			if r.gaveUp {
				msg = fmt.Sprintf("%d attempts failed; the last: %s", r.attempt+1, msg)
			}
			a.firstErrors[class] = msg
		}
		rt.errors++
		sec.errors++
	} else {
		a.completed++
		rt.completed++
		sec.completed++
		if r.mismatch {
			a.mismatches++
			rt.mismatches++
			sec.mismatches++
		}
	}
	countTarget(a.targets, &r, class, latency)
	// Latencies are those of requests that got a response, errors (5xx)
	// included; a request with no response is an error, not a latency.
	// With retries, a request's latency runs from its first attempt's due
	// time to its last attempt's end: what its user waited.
	if r.status != 0 {
		results.Record(a.latency, latency)
		results.Record(a.service, r.done-r.sent)
		results.Record(a.ttfb, r.first-r.sent)
		if rt.hist == nil {
			rt.hist = results.NewHist()
		}
		results.Record(rt.hist, latency)
		if sec.hist != nil {
			results.Record(sec.hist, latency)
		}
	}
	results.Record(a.lag, r.sent-r.due)
	results.Record(a.dispatch, r.sent-r.ready)
	if r.connect > 0 {
		results.Record(a.connect, r.connect)
	}
}

func (a *aggregator) second(due int64) *secondAgg {
	i := due / int64(time.Second)
	if a.seconds[i] == nil {
		a.seconds[i] = &secondAgg{hist: results.NewTimelineHist()}
	}
	return a.seconds[i]
}

// finalizeSeconds encodes and frees the per-second histograms no request
// can still reach: their requests were due so long ago that all have
// finished or timed out. Memory stays bounded on long runs.
func (a *aggregator) finalizeSeconds(now int64) {
	horizon := now - int64(a.r.o.Timeout) - int64(2*time.Second)
	for i, s := range a.seconds {
		if int64(i+1)*int64(time.Second) > horizon {
			break
		}
		if s != nil && s.hist != nil {
			s.close()
		}
	}
}

func (s *secondAgg) close() {
	s.encoded = results.Encode(s.hist)
	s.hist = nil
}

// recentAt is the ring slot of the second sec of the run, reset when it
// last held an older second. Eight slots cover the five seconds the
// progress line reads and the ones results are still arriving for.
func (a *aggregator) recentAt(t int64) *recentSecond {
	sec := max(t-a.r.t0, 0) / int64(time.Second)
	b := &a.recent[sec%int64(len(a.recent))]
	if b.sec != sec {
		b.sec, b.good = sec, 0
		b.hist.Reset()
	}
	return b
}

// noteRecent counts a request's success and latency in the second it
// completed.
func (a *aggregator) noteRecent(r result) {
	done := a.recentAt(r.done)
	if r.class == "" {
		done.good++
	}
	if r.status != 0 {
		results.Record(done.hist, r.done-r.due)
	}
}

// sampleSends records the requests sent by now, keeping the last 5 s.
func (a *aggregator) sampleSends(now int64) {
	a.sendSamples = append(a.sendSamples, sendSample{at: now, sends: a.r.sends()})
	for len(a.sendSamples) > 2 && a.sendSamples[1].at <= now-int64(5*time.Second) {
		a.sendSamples = a.sendSamples[1:]
	}
}

func (a *aggregator) progress(now int64, done bool) Progress {
	p := Progress{
		Scale:     a.r.s.Scale,
		Elapsed:   time.Duration(max(now, 0)),
		Duration:  a.r.s.Duration,
		Planned:   a.planned,
		Sent:      a.allSent,
		Completed: a.allSent - a.allErr,
		Errors:    a.allErr,
		InFlight:  a.r.inFlight(),
		Done:      done,
	}
	h := results.NewTimelineHist()
	var good int64
	cur := now / int64(time.Second)
	for _, b := range a.recent {
		if b.sec >= cur-5 && b.sec < cur && b.sec >= 0 {
			good += b.good
			h.Merge(b.hist)
		}
	}
	span := min(5.0, float64(max(cur, 1)))
	p.AchievedRPS = float64(good) / span
	if n := len(a.sendSamples); n > 1 {
		first, last := a.sendSamples[0], a.sendSamples[n-1]
		if d := last.at - first.at; d > 0 {
			p.OfferedRPS = float64(last.sends-first.sends) / (float64(d) / 1e9)
		}
	}
	p.P99 = time.Duration(h.ValueAtQuantile(99)) * time.Microsecond
	p.Measured = a.measuredSoFar(now, done)
	if until, rec, ok := a.r.s.IdleAt(a.r.p, p.Elapsed); ok && !done {
		p.IdleUntil, p.IdleRecorded = until, rec
	}
	return p
}

type rawLine struct {
	DueMS     float64 `json:"due_ms"`
	VConn     int32   `json:"vconn"`
	Req       int32   `json:"req"`
	Method    string  `json:"method"`
	Route     string  `json:"route"`
	Status    int32   `json:"status,omitempty"`
	Recorded  int32   `json:"recorded,omitempty"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	ServiceMS float64 `json:"service_ms,omitempty"`
	TTFBMS    float64 `json:"ttfb_ms,omitempty"`
	LagMS     float64 `json:"lag_ms,omitempty"`
	Bytes     int64   `json:"bytes,omitempty"`
	Error     string  `json:"error,omitempty"`
	NotSent   string  `json:"not_sent,omitempty"`
	// Retried: resent on a fresh connection after an attempt that wrote
	// nothing. Unsolicited: bytes no request asked for were found on the
	// connection just before this request, which went on a fresh one.
	Retried     bool `json:"retried,omitempty"`
	Unsolicited bool `json:"unsolicited,omitempty"`
}

func (a *aggregator) writeRaw(r result) {
	if a.raw == nil || a.rawErr != nil {
		return
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	rk := a.r.p.Routes[r.route]
	l := rawLine{DueMS: ms(r.due - a.r.t0), VConn: r.vconn, Req: r.req, Method: rk.Method, Route: rk.Route,
		Recorded: r.recorded, Error: r.class, NotSent: r.notSent, Retried: r.retried, Unsolicited: r.unsolicited}
	if r.notSent == "" {
		l.LagMS = ms(r.sent - r.due)
		l.LatencyMS = ms(r.done - r.due)
		if r.status != 0 {
			l.Status, l.Bytes = r.status, r.bytes
			l.ServiceMS, l.TTFBMS = ms(r.done-r.sent), ms(r.first-r.sent)
		}
	}
	b, _ := json.Marshal(l)
	b = append(b, '\n')
	_, a.rawErr = a.raw.Write(b)
}

func (a *aggregator) finish() {
	for _, s := range a.seconds {
		if s != nil && s.hist != nil {
			s.close()
		}
	}
	if a.raw != nil {
		if err := a.raw.Close(); err != nil && a.rawErr == nil {
			a.rawErr = err
		}
	}
	if a.r.o.Progress != nil {
		a.r.o.Progress(a.progress(nanotime()-a.r.t0, true))
	}
}

// cut ends the measured period at end (from time zero), when a stop ended
// the step early: its rates are over the time it ran, and what it planned
// is what was due before the stop.
func (a *aggregator) cut(end int64) {
	if end >= a.end {
		return
	}
	a.end = max(end, a.settle)
	before := a.r.countDueIn(time.Duration(a.settle), time.Duration(a.end))
	a.remaining = a.measured - before
	a.measured = before
}

// step builds the step's results once the run is over.
func (a *aggregator) step(cores float64) *results.Step {
	o := a.r.o
	dur := float64(a.end-a.settle) / 1e9
	// The counters and histograms are recorded here; every statistic
	// derived from them (rates, percentiles) is computed by
	// results.Summarize, the same code that recomputes merged results.
	st := &results.Step{
		Scale:        a.r.s.Scale,
		StartedAt:    clockTime(a.r.t0).UTC(),
		DurationS:    dur,
		SettleS:      o.Settle.Seconds(),
		Planned:      a.measured,
		Sent:         a.sent,
		Completed:    a.completed,
		Errors:       a.errs,
		Mismatches:   a.mismatches,
		Good:         a.good,
		Written:      a.written,
		Retried:      a.retried,
		Unsolicited:  a.unsolicited,
		Remaining:    a.remaining,
		ErrorClasses: a.classes,
		FirstErrors:  a.firstErrors,
		NotSent:      a.notSent,
		Histograms: results.Histograms{
			Latency:     results.Encode(a.latency),
			Service:     results.Encode(a.service),
			TTFB:        results.Encode(a.ttfb),
			ScheduleLag: results.Encode(a.lag),
			DispatchLag: results.Encode(a.dispatch),
			Connect:     results.Encode(a.connect),
		},
		Violations: []string{},
		Generator:  results.Generator{Notes: []string{}},
		CPU:        results.Round3(cores),
	}
	// Every request due in the measured period is either sent or counted
	// with the reason it was not; those never dispatched were stopped.
	var unsent int64
	for _, n := range a.notSent {
		unsent += n
	}
	if stopped := a.measured - a.sent - unsent; stopped > 0 {
		reason := "stopped"
		if errors.Is(context.Cause(a.r.stop), errOverrun) {
			reason = "overrun"
		}
		st.NotSent[reason] = stopped
	}
	for i := range a.r.p.Routes {
		r := &a.routes[i]
		if r.sent == 0 {
			continue
		}
		// Read only the routes that were sent: a live plan (live.go)
		// names its routes while it runs.
		k := a.r.p.Routes[i]
		rr := results.Route{Method: k.Method, Route: k.Route, Sent: r.sent, Completed: r.completed, Errors: r.errors,
			Mismatches: r.mismatches}
		if r.hist != nil {
			rr.Histogram = results.Encode(r.hist)
		}
		st.Routes = append(st.Routes, rr)
	}
	for i, s := range a.seconds {
		// Every second that overlaps the measured period [settle, end):
		// its counts are of measured requests only.
		if s == nil || int64(i+1)*int64(time.Second) <= a.settle {
			continue
		}
		st.Timeline = append(st.Timeline, results.Second{T: int64(i), Finished: s.finished, Due: s.due, Sent: s.sent, Completed: s.completed,
			Errors: s.errors, Mismatches: s.mismatches, Attempts: s.attempts, Histogram: s.encoded})
	}
	st.Targets = targetResults(a.r.p, a.targets)
	if a.r.o.emulating() {
		st.Attempts, st.Retries = a.attempts, a.retries
		st.Histograms.Attempt = results.Encode(a.attemptLat)
	}
	if err := results.Summarize(st); err != nil {
		// Only a histogram this process encoded could fail to decode.
		panic(fmt.Sprintf("summarize the step's own histograms: %v", err))
	}
	a.generatorNotes(st, cores)
	if a.rawErr != nil {
		st.Generator.Notes = append(st.Generator.Notes, "raw log incomplete: "+a.rawErr.Error())
	}
	return st
}

// generatorNotes decides whether herd, not the target, was the limit.
func (a *aggregator) generatorNotes(st *results.Step, cores float64) {
	g := &st.Generator
	o := a.r.o
	if p99 := time.Duration(a.dispatch.ValueAtQuantile(99)) * time.Microsecond; a.dispatch.TotalCount() > 0 && p99 > o.LagBound {
		g.Limited = true
		g.Notes = append(g.Notes, fmt.Sprintf("herd fell behind its schedule: dispatch lag p99 %s > %s", textfmt.Duration(p99), textfmt.Duration(o.LagBound)))
	}
	if n := a.notSent["generator_behind"]; n > 0 {
		g.Limited = true
		g.Notes = append(g.Notes, fmt.Sprintf("%d requests not sent: herd was more than %v behind its schedule", n, behindLimit))
	}
	if n := a.notSent["overrun"]; n > 0 {
		g.Notes = append(g.Notes, fmt.Sprintf("%d requests not sent: still queued one timeout after the end of the step", n))
	}
	if n := a.classes[ClassFDs]; n > 0 {
		g.Limited = true
		g.Notes = append(g.Notes, fmt.Sprintf("out of file descriptors: %d connections could not be opened (raise ulimit -n)", n))
	}
	if n := a.classes[ClassPorts]; n > 0 {
		g.Limited = true
		g.Notes = append(g.Notes, fmt.Sprintf("out of ephemeral ports: %d connections could not be opened", n))
	}
	if procs := float64(GOMAXPROCS()); cores >= 0.95*procs {
		g.Limited = true
		g.Notes = append(g.Notes, fmt.Sprintf("CPU saturated: herd used %.2f of %d cores", cores, int(procs)))
	}
	if n := a.notSent["max_rate"]; n > 0 {
		g.Notes = append(g.Notes, fmt.Sprintf("%d requests not sent: over the cap of %g req/s (--max-rate)", n, o.MaxRate))
	}
	if n := a.notSent["max_conns"]; n > 0 {
		g.Notes = append(g.Notes, fmt.Sprintf("%d requests not sent: --max-conns %d connections were all in use", n, o.MaxConns))
	}
	if n := a.notSent["max_inflight"]; n > 0 {
		g.Notes = append(g.Notes, fmt.Sprintf("%d requests not sent: --max-inflight %d requests were all awaiting responses", n, o.MaxInflight))
	}
	a.r.h2.notes(st)
}
