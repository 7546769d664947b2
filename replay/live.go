package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/route"
	"github.com/herd-replay/herd/tape"
)

// A live replay (herd shadow) sends requests as they are captured: each is
// handed over (Live.Add) with the wall-clock time it is due, and sent then
// on the connection that mirrors its recorded one, k times over in clone
// mode. The run is cut into steps of a fixed interval, each a step of the
// results file measured exactly as a step of herd replay is (run, the
// aggregator): a request belongs to the step its due time falls in, and a
// step ends once every request due in it is done.
//
// The engine's side of it is small: a step's engine takes its replayed
// connections from the step (spawnLive) instead of the plan's schedule,
// and each connection takes its requests through a reqSource that waits
// for them to be captured. Everything else (pacing, timeouts, retries,
// the rate cap, the emergency stop, the counting) is the engine's and the
// aggregator's, unchanged.
//
// Memory is bounded: a request is held from its capture until every copy
// of its connection took it, and at most LiveOptions.MaxHeld bytes are
// held at once (past that, new requests are not taken: memory_limit); a
// request that cannot be sent within MaxLate of its due time (captured
// too late, or waiting behind its connection's slow responses) is not
// sent. Both are counted by reason.

// Defaults of LiveOptions.
const (
	DefaultInterval = 10 * time.Second
	DefaultMaxLate  = time.Second
)

// Reasons a live replay does not take a request (counted in
// window.skipped) or does not send one it took (in the step's not_sent).
const (
	SkipLateCapture = "late_capture" // complete only more than MaxLate after its due time
	SkipMemoryLimit = "memory_limit" // MaxHeld bytes were held already
	SkipClockSkew   = "clock_skew"   // due further ahead than a capture can be
	SkipAfterEnd    = "after_end"    // due after the last step
	NotSentLate     = "late"         // still unsent MaxLate after its due time
)

// LiveOptions configure a live replay.
type LiveOptions struct {
	Settings
	Scale    float64       // copies of each recorded connection (clone mode)
	Interval time.Duration // the length of a step (DefaultInterval)
	// Duration ends the run after this many intervals' worth, rounded up
	// to whole intervals; 0 runs until the context is done.
	Duration time.Duration
	// Start is when the first step starts, wall clock: a request is due
	// at or after it.
	Start time.Time
	// MaxLate is how late after its due time a request may still be sent
	// (DefaultMaxLate).
	MaxLate time.Duration
	// MaxHeld bounds the bytes of requests held between their capture and
	// their send (DefaultMaxHeld, as a plan's).
	MaxHeld int64
	// Saturation fails a step whose achieved rate is below this fraction
	// of the rate it was offered (a target that cannot keep up with the
	// traffic); 0 judges the steps by their SLOs alone.
	Saturation float64
	// StepProgress is called with the progress of each step as it runs;
	// several run at once for a moment at each interval's end, while the
	// older one finishes its requests in flight.
	StepProgress func(index int, p Progress)
	// OnStep is called as each step ends, in any order.
	OnStep func(index int, st *results.Step)
}

// Live is a live replay. Add, Status and Stats may be called from any
// goroutine, while Run runs.
type Live struct {
	o     LiveOptions
	p     *Plan // targets, routes and skipped counts, shared by the steps; no connections
	filt  *filter
	rw    *rewriter
	sched Schedule // the steps' schedule, all alike but for their time zero
	wall0 int64    // the first step's start, Unix ns
	clk0  int64    // the replay clock at wall0

	mu     sync.Mutex
	steps  map[int64]*liveStep // the steps that may still take requests
	routes map[RouteKey]int32
	conns  connCounter    // recorded connections seen
	taken  int64          // requests taken, at 1x
	last   int64          // index of the last step Run starts; -1: no end
	skip   results.Counts // what was not taken, by reason

	held, peakHeld atomic.Int64
}

// LiveStats are a live replay's counts so far.
type LiveStats struct {
	Taken       int64          // requests taken, at 1x
	Connections int64          // recorded connections they came on
	Skipped     results.Counts // requests not taken, by reason
	Held        int64          // bytes of requests held now
	PeakHeld    int64          // the most ever held
}

// NewLive prepares a live replay of requests rendered for the target by
// po, as a plan's are (filters, overrides, targets).
func NewLive(po PlanOptions, o LiveOptions) (*Live, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	switch {
	case !(o.Scale > 0) || math.IsInf(o.Scale, 0):
		return nil, &OptionError{Option: "scale", Err: fmt.Errorf("the multiple must be positive (got %g)", o.Scale)}
	case o.Interval < 0 || o.Interval > 0 && o.Interval < time.Second:
		return nil, &OptionError{Option: "interval", Err: errors.New("the interval must be at least 1s")}
	case o.Duration < 0:
		return nil, &OptionError{Option: "duration", Err: errors.New("the duration must not be negative")}
	case o.Saturation < 0 || o.Saturation > 1:
		return nil, &OptionError{Option: "saturation", Err: errors.New("saturation is a fraction between 0 and 1")}
	case o.Protocol == ProtoH2 || o.Protocol == ProtoH2C:
		return nil, &OptionError{Option: "protocol", Err: errors.New("a live replay sends HTTP/1.1: its connections are taken as they are captured, and the HTTP/2 engine replays a plan's")}
	case o.MaxLate < 0 || o.MaxHeld < 0:
		return nil, &OptionError{Option: "delay", Err: errors.New("the lateness and memory bounds must be positive")}
	}
	o.Protocol = ProtoH1 // auto would ask a TLS target for HTTP/2 every step, to no use
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxLate == 0 {
		o.MaxLate = DefaultMaxLate
	}
	if o.MaxHeld == 0 {
		o.MaxHeld = DefaultMaxHeld
	}
	if o.Start.IsZero() {
		o.Start = time.Now()
	}
	if po.Target == nil {
		po.Target = o.Target
	}
	if po.MaxRoutes <= 0 {
		po.MaxRoutes = 50
	}
	filt, err := newFilter(po)
	if err != nil {
		return nil, err
	}
	p := &Plan{Options: po, Spec: "live", Start: o.Start.UnixNano(), Length: o.Interval,
		Skipped: map[string]int64{}, Redacted: map[string]int64{}, Targets: planTargets(po)}
	// The routes are named as they are first seen, into slots fixed in
	// advance, so that a step's aggregator can size its counters at its
	// start; past MaxRoutes they are (other).
	p.Routes = make([]RouteKey, po.MaxRoutes+1)
	p.Routes[po.MaxRoutes] = RouteKey{Route: OtherRoute}
	l := &Live{o: o, p: p, filt: filt, rw: newRewriter(po), steps: map[int64]*liveStep{},
		routes: map[RouteKey]int32{}, last: -1, skip: results.Counts{}}
	l.sched = Schedule{Mode: Clone, Scale: o.Scale, Seed: o.Seed, Window: o.Interval, Passes: 1}
	l.sched.Duration = o.Interval + l.sched.maxJitter()
	if o.Duration > 0 {
		l.last = int64((o.Duration+o.Interval-1)/o.Interval) - 1
	}
	l.wall0 = o.Start.UnixNano()
	l.clk0 = nanotime() + (l.wall0 - time.Now().UnixNano())
	return l, nil
}

// Plan is the live replay's plan: its targets, and the routes named so
// far. It holds no connections.
func (l *Live) Plan() *Plan { return l.p }

// End is when the last step ends, wall clock (zero without a duration):
// nothing captured later can be due in a step.
func (l *Live) End() time.Time {
	if l.last < 0 {
		return time.Time{}
	}
	return time.Unix(0, l.wall0+(l.last+1)*int64(l.o.Interval))
}

// Add takes a captured request, to be sent at due (wall clock) on the
// replayed copies of its recorded connection, and returns "" or the
// reason it was not taken (a filter's, or the live replay's own). It may
// change e (its path, by the rewrite rules); it keeps nothing of e.
func (l *Live) Add(e *tape.Exchange, due time.Time) string {
	target, why := l.filt.server(e)
	if why == "" {
		why = skipReason(e, l.p.Options, false)
	}
	if why == "" {
		why = l.filt.request(e)
	}
	dueWall := due.UnixNano()
	dueClk := l.clk0 + (dueWall - l.wall0)
	now := nanotime()
	idx := floorDiv(dueWall-l.wall0, int64(l.o.Interval))
	switch {
	case why != "":
	case now-dueClk > int64(l.o.MaxLate) || idx < 0:
		why = SkipLateCapture
	case dueClk-now > int64(l.o.Interval+l.o.MaxLate)+int64(time.Hour):
		why = SkipClockSkew
	case l.last >= 0 && idx > l.last:
		why = SkipAfterEnd
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if why != "" {
		l.skip[why]++
		return why
	}
	ls := l.stepLocked(idx)
	if ls == nil {
		l.skip[SkipLateCapture]++
		return SkipLateCapture
	}
	k := RouteKey{e.Method, route.Template(e.Target)}
	ri, ok := l.routes[k]
	if !ok {
		// Past MaxRoutes, a route is (other) and not remembered: paths
		// that carry free text must not grow the map.
		ri = int32(l.p.Options.MaxRoutes)
		if len(l.routes) < l.p.Options.MaxRoutes {
			ri = int32(len(l.routes))
			l.p.Routes[ri] = k
			l.routes[k] = ri
		}
	}
	r := Req{Offset: time.Duration(dueClk - ls.t0), Head: e.Method == "HEAD", Route: ri, Target: target,
		Wire: requestBytes(l.rw.request(e), l.p.Targets[target].URL.Host, l.p.Options)}
	size := int64(len(r.Wire)) + 96
	if l.held.Load()+size > l.o.MaxHeld {
		l.skip[SkipMemoryLimit]++
		return SkipMemoryLimit
	}
	if !ls.add(e.ConnID, e.Seq, r, size) {
		l.skip[SkipLateCapture]++
		return SkipLateCapture
	}
	l.conns.add(e.ConnID)
	l.taken++
	return ""
}

// Status records the status the recorded server answered a request
// taken earlier with (conn and seq as Add had them), so that a
// different status from the target counts as a mismatch. A request
// already sent is left as it was.
func (l *Live) Status(conn uint64, seq uint32, status int) {
	l.mu.Lock()
	steps := make([]*liveStep, 0, len(l.steps))
	for _, ls := range l.steps {
		steps = append(steps, ls)
	}
	l.mu.Unlock()
	for _, ls := range steps {
		if ls.status(conn, seq, status) {
			return
		}
	}
}

// Stats returns the counts so far.
func (l *Live) Stats() LiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LiveStats{Taken: l.taken, Connections: l.conns.n, Skipped: maps.Clone(l.skip),
		Held: l.held.Load(), PeakHeld: l.peakHeld.Load()}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// stepLocked returns step idx, making it if need be; nil once it closed.
func (l *Live) stepLocked(idx int64) *liveStep {
	if ls := l.steps[idx]; ls != nil {
		return ls
	}
	if l.steps == nil {
		return nil
	}
	ls := &liveStep{l: l, index: idx, t0: l.clk0 + idx*int64(l.o.Interval), byID: map[uint64]*liveConn{},
		wake: make(chan struct{})}
	l.steps[idx] = ls
	return ls
}

// closeStep closes step idx: nothing more is due in it.
func (l *Live) closeStep(ls *liveStep) {
	ls.close()
	l.mu.Lock()
	if l.steps[ls.index] == ls {
		delete(l.steps, ls.index)
	}
	l.mu.Unlock()
}

// stepLead is how long before its time zero a step's engine starts: it
// must be waiting when its first request is due.
const stepLead = 200 * time.Millisecond

// Run runs the steps, one per interval from Start, until Duration or
// until ctx is done, and returns the complete results: one step per
// interval, each evaluated against the SLOs. The emergency stop in any
// step ends the run. An interrupted run returns what was measured,
// marked so, with a nil error.
func (l *Live) Run(ctx context.Context) (*results.File, error) {
	f := newFile(results.KindShadow, l.p, &l.o.Settings)
	f.Params.StepS = l.o.Interval.Seconds()
	f.Params.Saturation = l.o.Saturation
	stop, halt := context.WithCancelCause(ctx)
	defer halt(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		steps    = map[int64]*results.Step{}
		firstErr error
		newest   atomic.Int64
	)
	so := l.o.Settings.step(l.sched, 0)
	so.Progress = nil
	for i := int64(0); l.last < 0 || i <= l.last; i++ {
		t0 := l.clk0 + i*int64(l.o.Interval)
		if err := sleepClock(stop, t0-int64(stepLead)); err != nil {
			break
		}
		l.mu.Lock()
		ls := l.stepLocked(i)
		l.mu.Unlock()
		// Nothing can be taken for the step once its end is MaxLate past.
		closeAt := t0 + int64(l.o.Interval) + int64(l.o.MaxLate) + int64(50*time.Millisecond)
		closer := time.AfterFunc(time.Duration(closeAt-nanotime()), func() { l.closeStep(ls) })
		unhook := context.AfterFunc(stop, func() { l.closeStep(ls) })
		newest.Store(i)
		o := so
		if l.o.StepProgress != nil {
			idx := i
			o.Progress = func(p Progress) {
				if newest.Load() == idx || p.Done {
					l.o.StepProgress(int(idx), p)
				}
			}
		}
		wg.Add(1)
		go func(i int64) {
			defer wg.Done()
			defer closer.Stop()
			defer unhook()
			st, err := runStep(stop, l.p, o, ls)
			l.closeStep(ls)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				halt(err)
				return
			}
			evaluate(st, l.o.SLOs, l.o.Saturation)
			steps[i] = st
			if st.Aborted {
				halt(errAborted)
			}
			if l.o.OnStep != nil {
				l.o.OnStep(int(i), st)
			}
		}(i)
	}
	wg.Wait()
	l.mu.Lock()
	for _, ls := range l.steps {
		ls.close()
	}
	l.steps = nil // nothing more is taken
	l.mu.Unlock()
	if firstErr != nil {
		return nil, firstErr
	}
	for _, i := range slices.Sorted(maps.Keys(steps)) {
		st := steps[i]
		// A step the emergency stop of an earlier one ended is stopped,
		// not interrupted by the user.
		if errors.Is(context.Cause(stop), errAborted) && st.Interrupted && ctx.Err() == nil {
			st.Interrupted = false
			st.Aborted, st.AbortReason = true, "the emergency stop of an earlier interval"
			evaluate(st, l.o.SLOs, l.o.Saturation)
		}
		f.Steps = append(f.Steps, *st)
		switch {
		case st.Aborted && !f.Aborted:
			f.Aborted, f.AbortReason = true, st.AbortReason
		case st.Interrupted:
			f.Interrupted = true
		}
	}
	if ctx.Err() != nil {
		f.Interrupted = true
	}
	l.window(f)
	results.Analyze(f)
	return f, nil
}

// window describes what was shadowed in the results' window: the live
// capture from the first step's start, the requests taken at 1x over
// the time the steps covered, and everything not taken, by reason.
func (l *Live) window(f *results.File) {
	st := l.Stats()
	var covered float64
	for i := range f.Steps {
		covered += f.Steps[i].DurationS
	}
	w := &f.Window
	w.Spec, w.Start = "live", time.Unix(0, l.wall0).UTC()
	w.DurationS, w.RecordedS = results.Round3(covered), results.Round3(covered)
	w.Requests, w.Conns = st.Taken, st.Connections
	w.RPS = results.Rate(st.Taken, covered)
	w.IdleRemovedS, w.MaxIdleS, w.Clamped = 0, 0, false
	w.Skipped = results.Counts{}
	l.mu.Lock()
	for k, v := range l.p.Skipped {
		w.Skipped[k] += v
	}
	l.mu.Unlock()
	for k, v := range st.Skipped {
		w.Skipped[k] += v
	}
}

// sleepClock waits until t on the replay clock, or until ctx is done.
func sleepClock(ctx context.Context, t int64) error {
	return sleepCtx(ctx, time.Duration(t-nanotime()))
}

// liveStep is one step of a live replay: the recorded connections whose
// requests are due in it, as they are captured.
type liveStep struct {
	l     *Live
	index int64
	t0    int64 // time zero on the replay clock

	mu     sync.Mutex
	conns  []*liveConn // in order of their first request
	byID   map[uint64]*liveConn
	closed bool
	wake   chan struct{} // closed when a connection is added, or the step closes
	// dues are the due times of every copy of every request handed over,
	// from time zero: what the step planned.
	dues []time.Duration
}

// add hands over a request of recorded connection conn; false once the
// step is closed.
func (ls *liveStep) add(conn uint64, seq uint32, r Req, size int64) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return false
	}
	lc := ls.byID[conn]
	if lc == nil {
		lc = &liveConn{step: ls, id: conn, copies: ls.l.sched.Copies(conn, 0)}
		lc.cursors = make([]int32, lc.copies)
		ls.byID[conn] = lc
		if lc.copies > 0 {
			ls.conns = append(ls.conns, lc)
			ls.wakeLocked()
		}
	}
	for cp := 0; cp < lc.copies; cp++ {
		ls.dues = append(ls.dues, ls.l.sched.Due(r.Offset, ls.l.sched.Shift(conn, 0, cp)))
	}
	if lc.copies == 0 {
		return true // a fractional multiple left the connection out
	}
	held := ls.l.held.Add(size)
	for {
		peak := ls.l.peakHeld.Load()
		if held <= peak || ls.l.peakHeld.CompareAndSwap(peak, held) {
			break
		}
	}
	lc.add(liveReq{Req: r, seq: seq, size: size})
	return true
}

func (ls *liveStep) wakeLocked() {
	close(ls.wake)
	ls.wake = make(chan struct{})
}

// close ends the step's intake: its connections get no more requests.
func (ls *liveStep) close() {
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return
	}
	ls.closed = true
	ls.wakeLocked()
	conns := slices.Clone(ls.conns)
	ls.mu.Unlock()
	for _, lc := range conns {
		lc.close()
	}
}

func (ls *liveStep) status(conn uint64, seq uint32, status int) bool {
	ls.mu.Lock()
	lc := ls.byID[conn]
	ls.mu.Unlock()
	return lc != nil && lc.status(seq, status)
}

// handed is how many requests the step planned: every copy of every
// request handed over.
func (ls *liveStep) handed() int64 {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return int64(len(ls.dues))
}

// handedIn counts the planned requests due in [from, to).
func (ls *liveStep) handedIn(s Schedule, from, to time.Duration) int64 {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var n int64
	for _, d := range ls.dues {
		if d >= from && d < to && d < s.Duration {
			n++
		}
	}
	return n
}

// nextConn returns the step's connection number i, waiting for it to be
// captured; false once the step is closed without it, or stop is done.
func (ls *liveStep) nextConn(stop context.Context, i int) (*liveConn, bool) {
	for {
		ls.mu.Lock()
		if i < len(ls.conns) {
			lc := ls.conns[i]
			ls.mu.Unlock()
			return lc, true
		}
		closed, wake := ls.closed, ls.wake
		ls.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-wake:
		case <-stop.Done():
			return nil, false
		}
	}
}

// liveConn is one recorded connection in a step: its requests as they are
// captured, each kept until every copy of the connection took it.
type liveConn struct {
	step   *liveStep
	id     uint64
	copies int

	mu      sync.Mutex
	reqs    []liveReq // requests base.. of the connection
	base    int32
	cursors []int32 // per copy, the index of its next request
	closed  bool
	wake    chan struct{} // closed when a request is added or the connection closes
}

type liveReq struct {
	Req
	seq  uint32 // the recorded exchange's
	size int64  // bytes held for it
}

func (lc *liveConn) add(r liveReq) {
	lc.mu.Lock()
	lc.reqs = append(lc.reqs, r)
	lc.wakeLocked()
	lc.mu.Unlock()
}

func (lc *liveConn) wakeLocked() {
	if lc.wake != nil {
		close(lc.wake)
		lc.wake = nil
	}
}

func (lc *liveConn) close() {
	lc.mu.Lock()
	lc.closed = true
	lc.wakeLocked()
	lc.mu.Unlock()
}

func (lc *liveConn) status(seq uint32, status int) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	i := sort.Search(len(lc.reqs), func(i int) bool { return lc.reqs[i].seq >= seq })
	if i < len(lc.reqs) && lc.reqs[i].seq == seq {
		lc.reqs[i].Status = status
		return true
	}
	return false
}

// peek returns copy cp's next request and its index on the connection,
// without taking it; wait is set, with the channel to wait on, when none
// has been captured yet, and both are zero when there will be none.
func (lc *liveConn) peek(cp int) (r Req, i int32, ok bool, wait chan struct{}) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	i = lc.cursors[cp]
	if k := int(i - lc.base); k < len(lc.reqs) {
		return lc.reqs[k].Req, i, true, nil
	}
	if lc.closed {
		return r, i, false, nil
	}
	if lc.wake == nil {
		lc.wake = make(chan struct{})
	}
	return r, i, false, lc.wake
}

// take takes copy cp's next request, which peek returned: as it is now,
// with the recorded status if it came meanwhile.
func (lc *liveConn) take(cp int) Req {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	r := lc.reqs[lc.cursors[cp]-lc.base].Req
	lc.cursors[cp]++
	lc.trimLocked()
	return r
}

// trimLocked drops the requests every copy has taken.
func (lc *liveConn) trimLocked() {
	low := slices.Min(lc.cursors)
	drop := int(low - lc.base)
	if drop <= 0 {
		return
	}
	var freed int64
	for _, r := range lc.reqs[:drop] {
		freed += r.size
	}
	lc.step.l.held.Add(-freed)
	n := copy(lc.reqs, lc.reqs[drop:])
	clear(lc.reqs[n:])
	lc.reqs = lc.reqs[:n]
	lc.base = low
}

// done marks copy cp as gone: it takes nothing more, and what it left is
// freed once the other copies took it.
func (lc *liveConn) done(cp int) {
	lc.mu.Lock()
	lc.cursors[cp] = math.MaxInt32
	if slices.Min(lc.cursors) == math.MaxInt32 {
		var freed int64
		for _, r := range lc.reqs {
			freed += r.size
		}
		lc.step.l.held.Add(-freed)
		lc.reqs, lc.base = nil, math.MaxInt32
	} else {
		lc.trimLocked()
	}
	lc.mu.Unlock()
}

// liveReqs is one copy's reqSource: it waits for each request to be
// captured, takes it at its due time (so that it carries the recorded
// status when the capture saw the response by then), and reports one it
// takes too late to send as not sent.
type liveReqs struct {
	e     *engine
	lc    *liveConn
	cp    int
	shift time.Duration
	vconn int32
	ch    chan struct{}
}

func (s *liveReqs) next() (*Req, int32, bool) {
	e := s.e
	if s.ch == nil {
		s.ch = make(chan struct{}, 1)
	}
	for {
		r, i, ok, wait := s.lc.peek(s.cp)
		if ok {
			due := e.t0 + int64(e.s.Due(r.Offset, s.shift))
			if e.disp.sleepUntil(e.stop, due, s.ch) != nil {
				return nil, 0, false
			}
			r = s.lc.take(s.cp)
			if late := nanotime() - due; late > int64(e.live.l.o.MaxLate) {
				e.report(result{due: due, ready: due, route: r.Route, target: r.Target, vconn: s.vconn, req: i, notSent: NotSentLate})
				continue
			}
			return &r, i, true
		}
		if wait == nil {
			return nil, 0, false
		}
		select {
		case <-wait:
		case <-e.stop.Done():
			return nil, 0, false
		}
	}
}

// spawnLive starts the replayed copies of each recorded connection of the
// step as it is captured, until the step closes or sending stops.
func (e *engine) spawnLive() {
	ls := e.live
	var index int32
	for i := 0; ; i++ {
		lc, ok := ls.nextConn(e.stop, i)
		if !ok {
			return
		}
		for cp := 0; cp < lc.copies; cp++ {
			vc := VConn{Copy: int32(cp), Shift: e.s.Shift(lc.id, 0, cp)}
			src := &liveReqs{e: e, lc: lc, cp: cp, shift: vc.Shift, vconn: index}
			e.vconns.Add(1)
			go func(index int32) {
				defer e.vconns.Done()
				e.runVConn(vc, index, src)
				lc.done(cp) // a copy that stopped early frees what it left
			}(index)
			index++
		}
	}
}

// connCounter counts the distinct recorded connections of a live replay
// in fixed memory, whatever the run's length. Capture numbers connections
// in the order it first sees them, and a connection's first request comes
// right after, so an id is new unless it is among the last connWindow ids
// already seen, which a ring of bits remembers.
type connCounter struct {
	top  uint64 // the highest id seen
	bits [connWindow / 64]uint64
	n    int64
}

const connWindow = 1 << 16

func (c *connCounter) add(id uint64) {
	bit := func(id uint64) (*uint64, uint64) { return &c.bits[(id%connWindow)/64], 1 << (id % 64) }
	switch {
	case c.n == 0 || id > c.top:
		if c.n == 0 || id-c.top >= connWindow {
			clear(c.bits[:])
		} else {
			for x := c.top + 1; x <= id; x++ {
				w, b := bit(x)
				*w &^= b
			}
		}
		c.top = id
	case c.top-id >= connWindow:
		return // long before the window: seen, as capture numbers them
	}
	if w, b := bit(id); *w&b == 0 {
		*w |= b
		c.n++
	}
}
