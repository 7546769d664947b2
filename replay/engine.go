package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// Pacing decides what happens to a request that is due while its
// connection still waits for the previous response.
type Pacing int

const (
	// Session pacing waits for the response, as the recorded client did;
	// the wait counts in the request's latency.
	Session Pacing = iota
	// Strict pacing sends every request at its due time, on a spare
	// connection when its own is busy: the open model.
	Strict
)

func (p Pacing) String() string {
	if p == Strict {
		return "strict"
	}
	return "session"
}

// ParsePacing parses session or strict.
func ParsePacing(s string) (Pacing, error) {
	switch s {
	case "session", "":
		return Session, nil
	case "strict":
		return Strict, nil
	}
	return 0, fmt.Errorf("pacing %q: use session or strict", s)
}

// Options configure one replay run (one step of a ramp).
type Options struct {
	Target      *url.URL
	Schedule    Schedule
	Pacing      Pacing
	Settle      time.Duration // leading part of the run left out of the statistics
	Timeout     time.Duration // per request, from its send; always on
	MaxConns    int           // open connections to the target, at most
	MaxInflight int           // requests awaiting a response, at most
	Abort       AbortRule
	// LagBound is the dispatch lag p99 beyond which herd itself, not the
	// target, limited the run.
	LagBound time.Duration
	TLS      *tls.Config // for https targets; nil uses defaults
	Engine   Engine      // how requests are sent (EngineAuto: the event loops where they apply)
	Protocol Protocol    // HTTP/1.1 or HTTP/2 (see Protocol)
	// Client emulation: ClientTimeout is how long the recorded clients
	// waited for a response before giving up and closing the connection
	// (0: as long as herd's Timeout); Retry is what they did after a
	// failure; RetryBudget, when positive, caps retries at that fraction of
	// the first attempts (plus 10), as a client-side retry budget does.
	ClientTimeout time.Duration
	Retry         RetryPolicy
	RetryBudget   float64
	// MaxRate caps the requests sent per second, every attempt counted,
	// on top of the schedule (ratecap.go): a request over it is not sent
	// and is counted as not_sent "max_rate". 0: no cap.
	MaxRate       float64
	Raw           io.Writer // one JSON line per request, when not nil
	Progress      func(Progress)
	ProgressEvery time.Duration
	// OnAbort, when set, is called once with the reason the moment the
	// emergency stop fires, before the requests in flight are waited for
	// (a coordinated ramp tells the other shards at once).
	OnAbort func(reason string)
}

// Defaults for Options fields left zero.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxConns    = 10000
	DefaultMaxInflight = 10000
	DefaultLagBound    = 10 * time.Millisecond
)

// Progress is a snapshot of a running replay.
type Progress struct {
	Scale       float64
	Elapsed     time.Duration
	Duration    time.Duration
	Planned     int64 // requests of the whole run
	Sent        int64
	Completed   int64
	Errors      int64
	InFlight    int64
	OfferedRPS  float64 // requests sent per second, over the last 5 s
	AchievedRPS float64 // successful responses completed per second, over the last 5 s
	P99         time.Duration
	Done        bool
	// Measured is the step so far as its results will count it (the
	// measured period's requests whose outcome is known: counts, latency
	// percentiles, routes), refreshed once a second, nil during the settle
	// time; the live view judges the SLOs on it. Never changed once handed
	// out.
	Measured *results.Step
	// IdleUntil, when not zero, is the elapsed time at which a long
	// stretch of the plan with no request due ends; IdleRecorded is that
	// stretch's recorded length.
	IdleUntil    time.Duration
	IdleRecorded time.Duration
}

func (o *Options) defaults() error {
	if o.Target == nil {
		return errors.New("no target")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.LagBound <= 0 {
		o.LagBound = DefaultLagBound
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 250 * time.Millisecond
	}
	if o.Schedule.Scale <= 0 {
		return fmt.Errorf("scale must be positive (got %g)", o.Schedule.Scale)
	}
	if o.Settle < 0 || o.Settle >= o.Schedule.Duration {
		return fmt.Errorf("settle time %v must be shorter than the run (%v)", o.Settle, o.Schedule.Duration)
	}
	return nil
}

// result is what one request produced, or why it was not sent. Times are
// on the replay clock relative to the run's time zero. It is the record
// every engine hands the aggregator, which does all the counting.
type result struct {
	due, ready, sent, first, done int64
	bytes                         int64
	status                        int32
	recorded                      int32
	route                         int32
	vconn                         int32 // index of the replayed connection, for the raw log
	connect                       int64 // ns to open the connection it was the first request of
	req                           int32
	target                        int32    // Req.Target
	class                         string   // error class; "" for a usable response
	fail                          *failure // why it failed, when class is set
	notSent                       string   // reason it was not sent
	mismatch                      bool
	written                       bool // a byte of it was written to a connection
	retried                       bool // resent on a fresh connection (judge)
	// unsolicited: bytes that no request asked for were found on an idle
	// connection. With event set, the result is no request but that
	// finding alone, on a connection herd was closing, at time due.
	unsolicited, event bool
	// Client emulation. attempt counts from 0; logical is the due time of
	// the request's first attempt (0: this one's); nonFinal marks an
	// attempt that failed and was retried (trigger says why), gaveUp a
	// final attempt after which the client had no retry left.
	attempt  int32
	logical  int64
	nonFinal bool
	// outcomeOnly is the outcome of a request whose retry a stop cut off:
	// its last attempt, already counted as one, decides it.
	outcomeOnly bool
	gaveUp      bool
	trigger     string
	retryAfter  time.Duration // what a 429 or 503 asked for
}

// engine is the portable engine: a goroutine per replayed connection,
// woken at due times by the dispatcher, on Go's own network poller. It
// runs every target (TLS, and on every platform); the event loops of
// loop_linux.go run plain HTTP/1.x on Linux faster, and count alike.
type engine struct {
	*run
	disp   *dispatcher
	cl     *client         // to Options.Target
	cls    []*client       // by Req.Target: the plan's targets (targets.go)
	dialer context.Context // dials outlive stop: in-flight work finishes

	connSlots chan struct{}
	inflight  chan struct{}
	spares    chan *conn
	inFlight  atomic.Int64
	waiting   atomic.Int64 // requests waiting for a slot (acquire)
	sends     atomic.Int64 // requests written so far, for the progress line
	vconns    sync.WaitGroup
}

var (
	errAborted = errors.New("emergency stop")
	errOverrun = errors.New("run overran its end")
)

// behindLimit is how late herd may dispatch a request that was ready to
// go. Past it, herd is hopelessly behind its schedule: the request is not
// sent (counted as generator_behind) rather than sent so late that the
// step overruns and the target sees a burst nobody recorded.
const behindLimit = time.Second

// Run replays the plan on the schedule in o and returns the step's
// results. It stops sending when ctx is cancelled (the step is then marked
// interrupted) or when the abort rule fires (marked aborted), waits for
// the requests in flight, up to their timeout, and returns what was
// measured either way.
func Run(ctx context.Context, p *Plan, o Options) (*results.Step, error) {
	return runStep(ctx, p, o, nil)
}

// runStep is Run, or with live set a step of a live replay: its time zero is
// the step's, its connections and requests come from live as they are
// captured, and what it planned is what live handed over.
func runStep(ctx context.Context, p *Plan, o Options, live *liveStep) (*results.Step, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	cl, err := newClient(o)
	if err != nil {
		return nil, err
	}
	cls, err := targetClients(p, o, cl)
	if err != nil {
		return nil, err
	}
	r := newRun(ctx, p, o, live)
	defer r.halt(nil)
	var planned, measured int64
	if live == nil {
		planned, measured, err = r.s.countDue(ctx, p, 0, o.Settle, r.s.Duration)
		if err != nil {
			return nil, fmt.Errorf("count the plan's requests: %w", err)
		}
	}
	if r.h2, err = newH2Engine(ctx, o, cl); err != nil {
		return nil, err
	}
	eng, err := r.engine(cl, cls)
	if err != nil {
		return nil, err
	}
	agg := newAggregator(r, planned, measured)
	cpu0 := cpuTime()
	wall0 := time.Now()
	// Time zero leaves the engine a moment to start.
	r.t0 = nanotime() + int64(20*time.Millisecond)
	if live != nil {
		r.t0 = live.t0
	}
	aggDone := make(chan struct{})
	go func() {
		defer close(aggDone)
		agg.run()
	}()

	// Nothing is sent after the end of the run plus one timeout, so a step
	// ends on time even when herd or the target falls far behind.
	stopAt := r.t0 + int64(r.s.Duration) + int64(o.Timeout)
	overrun := time.AfterFunc(time.Duration(stopAt-nanotime()), func() { r.halt(errOverrun) })
	defer overrun.Stop()
	runErr := eng.runStep()
	<-aggDone
	if runErr != nil {
		return nil, runErr
	}
	if live != nil {
		agg.measured = live.handed()
	}
	cores := 0.0
	if wall := time.Since(wall0).Seconds(); wall > 0 {
		cores = (cpuTime() - cpu0).Seconds() / wall
	}
	if r.stop.Err() != nil {
		<-r.stopNoted // the stop's time is noted by its own goroutine: wait for it
	}
	if at := r.stoppedAt.Load(); at > 0 {
		agg.cut(at - r.t0)
	}
	st := agg.step(cores)
	switch cause := context.Cause(r.stop); {
	case errors.Is(cause, errAborted):
		st.Aborted, st.AbortReason = true, agg.abortReason
	case ctx.Err() != nil:
		st.Interrupted = true
	}
	return st, nil
}

// stepEngine runs one step: it sends the run's requests, hands every
// result to the run's aggregator, and returns once every replayed
// connection is done, having closed the run's result channels.
type stepEngine interface {
	runStep() error
}

// newEngine is the portable engine for the run.
func newEngine(r *run, cl *client, cls []*client, dialer context.Context) *engine {
	e := &engine{
		run:       r,
		cl:        cl,
		cls:       cls,
		connSlots: make(chan struct{}, r.o.MaxConns),
		inflight:  make(chan struct{}, r.o.MaxInflight),
		spares:    make(chan *conn, r.o.MaxConns),
		dialer:    dialer,
	}
	r.sends, r.inFlight = e.sends.Load, e.inFlight.Load
	return e
}

func (e *engine) runStep() error {
	e.disp = newDispatcher()
	defer e.disp.close()
	var err error
	if e.live != nil {
		e.spawnLive()
	} else {
		err = newDriver(e.run, e).run()
	}
	e.vconns.Wait()
	for len(e.spares) > 0 { // every replayed connection is done: nothing else takes spares
		e.retire(<-e.spares)
	}
	close(e.results)
	close(e.batches)
	return err
}

func newClient(o Options) (*client, error) {
	u := o.Target
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: the scheme must be http or https", u.String())
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	c := &client{addr: net.JoinHostPort(host, port)}
	c.dialer.KeepAlive = 30 * time.Second
	if u.Scheme == "https" {
		// One session cache for the run: reconnects resume, as real
		// clients do.
		c.tls = &tls.Config{ServerName: host, NextProtos: []string{"http/1.1"}, ClientSessionCache: tls.NewLRUClientSessionCache(0)}
		if o.TLS != nil {
			c.tls = o.TLS.Clone()
			if c.tls.ServerName == "" {
				c.tls.ServerName = host
			}
			c.tls.NextProtos = []string{"http/1.1"}
		}
	}
	return c, nil
}

// The portable engine as the driver's sink: a goroutine per replayed
// connection, started shortly before its first request is due, reading its
// requests from its connection pass as the driver adds them. New
// connections keep arriving on schedule however slow the target is:
// nothing here waits on a response.

func (e *engine) pass(cp *connPass) {}

func (e *engine) add(cp *connPass, r *Req) {
	cp.mu.Lock()
	cp.add(r)
	e.wakePass(cp)
	cp.mu.Unlock()
}

func (e *engine) close(cp *connPass) {
	cp.mu.Lock()
	cp.closed = true
	e.wakePass(cp)
	cp.mu.Unlock()
}

func (e *engine) wakePass(cp *connPass) {
	if cp.wake != nil {
		close(cp.wake)
		cp.wake = nil
	}
}

func (e *engine) flush() {}

func (e *engine) spawn(vc VConn, cp *connPass, index int32) {
	cp.mu.Lock()
	c := cp.attach()
	cp.mu.Unlock()
	e.vconns.Add(1)
	go func() {
		defer e.vconns.Done()
		if e.h2.usesFlags(e.p.index().flag(vc.Conn)) {
			e.runH2VConn(vc, cp, c, index)
			return
		}
		e.runVConn(vc, index, &passReqs{e: e, cp: cp, consumer: c})
		cp.mu.Lock()
		cp.detach(c)
		cp.mu.Unlock()
	}()
}

// reqSource yields a replayed connection's requests in recorded order,
// with their index on it: a connection pass's as the driver reads them,
// or a live replay's as they are captured (live.go). ok is false when
// there are no more.
type reqSource interface {
	next() (r *Req, i int32, ok bool)
}

// passReqs is one copy's reqSource of a connection pass.
type passReqs struct {
	e        *engine
	cp       *connPass
	consumer int
}

func (s *passReqs) next() (*Req, int32, bool) { return s.e.next(s.cp, s.consumer) }

// next returns consumer c's next request of cp, waiting for the driver to
// read it if need be; false when there is none, or sending stopped.
func (e *engine) next(cp *connPass, c int) (*Req, int32, bool) {
	for {
		cp.mu.Lock()
		r, i, ok, done := cp.take(c)
		if ok || done {
			cp.mu.Unlock()
			return r, i, ok
		}
		if cp.wake == nil {
			cp.wake = make(chan struct{})
		}
		w := cp.wake
		cp.mu.Unlock()
		select {
		case <-w:
		case <-e.stop.Done():
			return nil, 0, false
		}
	}
}

// runVConn replays one connection over HTTP/1.x, its requests taken
// from src; the caller counts it in vconns.
func (e *engine) runVConn(vc VConn, index int32, src reqSource) {
	ch := make(chan struct{}, 1)
	var own *conn
	var ownMu sync.Mutex // strict pacing: held while own is in use
	var strict sync.WaitGroup
	defer func() {
		strict.Wait()
		if own != nil {
			e.retire(own)
		}
	}()
	var lastDone int64
	for {
		r, i, ok := src.next()
		if !ok {
			return
		}
		rel := e.s.Due(r.Offset, vc.Shift)
		if rel >= e.s.Duration {
			return
		}
		due := e.t0 + int64(rel)
		if e.disp.sleepUntil(e.stop, due, ch) != nil {
			return // stopped: the request is counted as not sent
		}
		id := reqID{vconn: index, req: i}
		if ready := max(due, lastDone); nanotime()-ready > int64(behindLimit) {
			e.report(result{due: due, ready: ready, route: r.Route, target: r.Target, vconn: id.vconn, req: id.req, notSent: "generator_behind"})
			continue
		}
		if e.o.Pacing == Session {
			lastDone = e.exec(&own, r, id, due, max(due, lastDone))
			continue
		}
		strict.Add(1)
		if ownMu.TryLock() {
			go func() {
				defer strict.Done()
				defer ownMu.Unlock()
				e.exec(&own, r, id, due, due)
			}()
			continue
		}
		go func() {
			defer strict.Done()
			var spare *conn
			select {
			case spare = <-e.spares:
			default:
			}
			e.exec(&spare, r, id, due, due)
			if spare != nil {
				select {
				case e.spares <- spare:
				default:
					e.retire(spare)
				}
			}
		}()
	}
}

type reqID struct{ vconn, req int32 }

// acquire takes a slot from sem, waiting at most until the replay-clock
// deadline.
func (e *engine) acquire(sem chan struct{}, deadline int64) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	wait := time.Duration(deadline - nanotime())
	if wait <= 0 {
		return false
	}
	// No more requests wait than the bound lets go at once: past that,
	// a generator far behind its target would hold them all in memory.
	if e.waiting.Add(1) > int64(cap(sem)) {
		e.waiting.Add(-1)
		return false
	}
	defer e.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// release closes a connection and frees its slot.
func (e *engine) release(c *conn) {
	c.close()
	<-e.connSlots
}

// retire closes a connection that has no request outstanding, counting
// what the target sent on it unasked (judge), and frees its slot.
func (e *engine) retire(c *conn) {
	if c.idle() == idleBytes {
		e.report(result{due: nanotime(), event: true, unsolicited: true})
	}
	e.release(c)
}

// emulating reports whether the recorded clients are emulated: attempts
// counted apart from requests.
func (o *Options) emulating() bool { return o.Retry.On() || o.ClientTimeout > 0 }

// exec sends one request on *cn and reports its result. It returns when the
// request is finished, on the replay clock. With client emulation, a failed
// attempt that the retry policy retries is reported as such, and the
// request is sent again after the policy's delay, on the same connection
// when the target answered (a 5xx) or a fresh one: the client waits, as a
// real one would, and its session waits with it.
func (e *engine) exec(cn **conn, r *Req, id reqID, due, ready int64) int64 {
	if !e.o.emulating() {
		res := e.try(cn, r, id, due, ready)
		e.report(res)
		return finished(res)
	}
	seed := mix(e.o.Schedule.Seed, uint64(id.vconn), uint64(id.req))
	sched, ch := due, make(chan struct{}, 1)
	for n := 0; ; n++ {
		if n == 0 {
			e.budget.firstAttempt()
		}
		res := e.try(cn, r, id, sched, ready)
		res.attempt = int32(n)
		if n > 0 {
			res.logical = due
		}
		if res.notSent != "" {
			e.report(res)
			return finished(res)
		}
		wait, retry := e.o.Retry.next(&res, n, seed, e.budget)
		e.report(res)
		if !retry {
			return finished(res)
		}
		sched = res.done + int64(wait)
		ready = sched
		if e.disp.sleepUntil(e.stop, sched, ch) != nil {
			// Stopped while the client waited to retry: nothing more is
			// sent, and the request's outcome is its last attempt's.
			res.nonFinal, res.outcomeOnly = false, true
			e.report(res)
			return nanotime()
		}
	}
}

// finished is when a request's handling ended, on the replay clock: its
// completion, or now for one that was not sent.
func finished(r result) int64 {
	if r.done != 0 {
		return r.done
	}
	return nanotime()
}

// try sends r once on *cn (dialing when it is nil) and returns the result,
// without reporting it. What the attempt counts as is judge's decision,
// not try's.
func (e *engine) try(cn **conn, r *Req, id reqID, due, ready int64) result {
	res := result{due: due, ready: ready, route: r.Route, recorded: int32(r.Status), vconn: id.vconn, req: id.req, target: r.Target}
	if e.cap != nil && !e.cap.allow(nanotime()) {
		res.notSent = "max_rate"
		return res
	}
	giveUp := due + int64(e.o.Timeout)
	if !e.acquire(e.inflight, giveUp) {
		res.notSent = "max_inflight"
		return res
	}
	defer func() { <-e.inflight }()
	e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	// A connection that sat idle is looked at before anything is written
	// on it: what arrived unasked is discarded and counted, and a
	// connection with bytes on it or closed by the target is replaced by
	// a fresh one in the same slot.
	if c := *cn; c != nil {
		// A connection to another target is closed like an unusable one:
		// the request goes on a fresh connection to its own target.
		if st := c.idle(); st != idleUsable || c.target != r.Target {
			res.unsolicited = st == idleBytes
			c.close()
			*cn = nil
		}
	} else if !e.acquire(e.connSlots, giveUp) {
		res.notSent = "max_conns"
		return res
	}
	res.sent = nanotime()
	e.sends.Add(1)
	deadline := clockTime(res.sent + int64(e.o.Timeout))
	// An emulated client gives up sooner than herd's own bound: its
	// deadline cuts the attempt short, and the connection is closed.
	clientGaveUp := e.o.ClientTimeout > 0 && e.o.ClientTimeout < e.o.Timeout
	if clientGaveUp {
		deadline = clockTime(res.sent + int64(e.o.ClientTimeout))
	}
	// At most two attempts: judge resends only from a reused connection,
	// and the resend goes on a fresh one.
	for {
		if *cn == nil {
			dialed := nanotime()
			c, class, err := e.client(r.Target).dial(e.dialer, deadline)
			res.connect = nanotime() - dialed
			if err != nil {
				<-e.connSlots
				res.class, res.fail, res.done = class, &failure{err: err}, nanotime()
				if clientGaveUp && class == ClassConnectTimeout {
					res.class = ClassClientTimeout
				}
				return res
			}
			c.target = r.Target
			*cn = c
		}
		c := *cn
		a, resp := c.roundTrip(r.Wire, r.Head, deadline)
		res.written = res.written || a.written > 0
		v := judge(r.Wire, a)
		if v.resend {
			c.close() // the fresh connection takes its slot
			*cn = nil
			res.retried = true
			continue
		}
		res.done = nanotime()
		res.class = v.class
		if clientGaveUp && v.class == ClassTimeout {
			res.class = ClassClientTimeout
		}
		if v.class != "" {
			res.fail = &failure{err: a.err, written: res.written, got: a.got, bytes: a.bytes, status: a.status}
		}
		switch {
		case !v.response:
			e.release(c) // broken, or closed by the target
			*cn = nil
		case resp.upgraded:
			e.release(c) // no longer HTTP: what follows is not herd's to judge
			*cn = nil
		case !resp.keepAlive:
			e.retire(c)
			*cn = nil
		default:
			c.done++
		}
		if v.response {
			res.first, res.status, res.bytes = resp.firstByte, int32(a.status), a.bytes
			res.mismatch = v.class == "" && r.Status != 0 && a.status != r.Status
			res.retryAfter = resp.retryAfter
		}
		return res
	}
}

func (e *engine) report(r result) {
	// The aggregator never waits on the target, so this send blocks only
	// if herd's own bookkeeping falls behind, which shows as dispatch lag.
	e.results <- r
}

// clockTime converts a replay-clock time to a wall time for deadlines.
func clockTime(t int64) time.Time { return clockEpoch.Add(time.Duration(t)) }

// GOMAXPROCS is how many cores herd may use.
func GOMAXPROCS() int { return runtime.GOMAXPROCS(0) }
