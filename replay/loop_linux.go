package replay

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The event-loop engine: a few loops (one per core herd may use), each
// owning its sockets, timers and requests outright. A loop sleeps in
// epoll until the next request is due or a socket is ready, writes the
// requests due in one pass back to back, and parses responses as they
// arrive from one read buffer (respParser). Nothing is shared between
// loops while they run; the driver hands each loop its replayed
// connections, and each loop hands its results to the one aggregator in
// a batch per pass. What an attempt counts as is decided by judge, as in
// the goroutine engine, from the same observations.

const loopSupported = true

type loopEngine struct {
	*run
	t     target
	loops []*evloop
	// load is each loop's replayed connections, started or about to be:
	// the driver gives a new connection pass to the least loaded.
	load    []atomic.Int64
	pending [][]loopMsg // the driver's messages not yet posted, by loop
}

func newLoopEngine(r *run, cl *client) (stepEngine, error) {
	e := &loopEngine{run: r}
	host, port, err := net.SplitHostPort(cl.addr)
	if err != nil {
		return nil, err
	}
	pn, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("target port %q: %w", port, err)
	}
	e.t = resolve(r.stop, host, pn, r.o.Timeout)
	n := max(1, runtime.GOMAXPROCS(0))
	e.load = make([]atomic.Int64, n)
	e.pending = make([][]loopMsg, n)
	for i := 0; i < n; i++ {
		l, err := newEvloop(e, i, n)
		if err != nil {
			for _, l := range e.loops {
				l.p.close()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	r.sends = func() int64 {
		var s int64
		for _, l := range e.loops {
			s += l.sent.Load()
		}
		return s
	}
	r.inFlight = func() int64 {
		var s int64
		for _, l := range e.loops {
			s += l.inflightN.Load()
		}
		return s
	}
	return e, nil
}

// resolve finds the target's address once for the step; a failure is
// every dial's failure, as it would be for Go's dialer.
func resolve(ctx context.Context, host string, port int, timeout time.Duration) target {
	if ip := net.ParseIP(host); ip != nil {
		sa, fam := sockaddr(ip, port)
		return target{addr: &net.TCPAddr{IP: ip, Port: port}, sa: sa, family: fam}
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(rctx, host)
	if err == nil && len(ips) == 0 {
		err = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if err != nil {
		return target{err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	ip := ips[0].IP
	for _, a := range ips {
		if a.IP.To4() != nil {
			ip = a.IP // IPv4 first, as Go's dialer tries it
			break
		}
	}
	sa, fam := sockaddr(ip, port)
	return target{addr: &net.TCPAddr{IP: ip, Port: port}, sa: sa, family: fam}
}

func (e *loopEngine) runStep() error {
	var wg sync.WaitGroup
	for _, l := range e.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run()
		}()
	}
	err := newDriver(e.run, e).run()
	for i, l := range e.loops {
		e.pending[i] = append(e.pending[i], loopMsg{kind: msgEnd})
		l.inbox <- e.pending[i]
		e.pending[i] = nil
	}
	wg.Wait()
	for _, l := range e.loops {
		l.p.close()
	}
	close(e.results)
	close(e.batches)
	return err
}

// The loop engine as the driver's sink: messages to the owning loop,
// posted in batches.

type msgKind uint8

const (
	msgAdd msgKind = iota
	msgClose
	msgSpawn
	msgEnd
)

type loopMsg struct {
	kind  msgKind
	cp    *connPass
	r     *Req
	v     VConn
	index int32
}

func (e *loopEngine) pass(cp *connPass) {
	best := 0
	for i := range e.load {
		if e.load[i].Load() < e.load[best].Load() {
			best = i
		}
	}
	cp.owner = best
	e.load[best].Add(int64(cp.consumers))
}

func (e *loopEngine) post(m loopMsg) {
	i := m.cp.owner
	e.pending[i] = append(e.pending[i], m)
	if len(e.pending[i]) >= 1024 {
		e.loops[i].inbox <- e.pending[i]
		e.pending[i] = nil
	}
}

func (e *loopEngine) add(cp *connPass, r *Req) { e.post(loopMsg{kind: msgAdd, cp: cp, r: r}) }
func (e *loopEngine) close(cp *connPass)       { e.post(loopMsg{kind: msgClose, cp: cp}) }
func (e *loopEngine) spawn(v VConn, cp *connPass, index int32) {
	e.post(loopMsg{kind: msgSpawn, cp: cp, v: v, index: index})
}

func (e *loopEngine) flush() {
	for i, l := range e.loops {
		if len(e.pending[i]) > 0 {
			l.inbox <- e.pending[i]
			e.pending[i] = nil
		}
	}
}

// evloop is one event loop and everything it owns.
type evloop struct {
	e  *loopEngine
	r  *run
	t  target
	id int
	p  *poller

	inbox  chan []loopMsg
	events []unix.EpollEvent
	rbuf   []byte // every socket of the loop is read into it

	slots []*lconn // by epoll token
	free  []int32

	timers      timerHeap
	deadlines   reqList // requests in flight, by send time: their deadlines rise
	waitInfl    reqQueue
	waitConn    reqQueue
	freeReqs    []*lreq
	spares      []*lconn // strict pacing: idle connections any replayed connection may take
	waiting     map[*connPass][]*lvconn
	inflight    int
	conns       int
	maxInflight int
	maxConns    int
	live        int // replayed connections started and not done
	nWaiting    int // requests in the wait queues
	gen         int32
	admitting   bool
	driverDone  bool
	batch       []result
	now         int64
	polled      int64 // when the sockets were last looked at

	sent      atomic.Int64 // for the progress line
	inflightN atomic.Int64
}

func newEvloop(e *loopEngine, id, n int) (*evloop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	// The bounds are split between the loops: each owns its share.
	share := func(total int) int { return max(1, total/n+btoi(id < total%n)) }
	return &evloop{e: e, r: e.run, t: e.t.own(), id: id, p: p, inbox: make(chan []loopMsg, 64),
		events: make([]unix.EpollEvent, 256), rbuf: make([]byte, 64<<10), waiting: map[*connPass][]*lvconn{},
		maxInflight: share(e.o.MaxInflight), maxConns: share(e.o.MaxConns)}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lvconn is a replayed connection: a copy of a recorded connection in one
// pass, replaying its requests in order on a keep-alive connection of its
// own.
type lvconn struct {
	cp       *connPass
	consumer int
	shift    time.Duration
	index    int32

	r        *Req // the request due next, and its index and due time
	i        int32
	due      int64
	lastDone int64
	own      *lconn
	busy     bool // session: a request outstanding; strict: own in use
	inflight int  // strict: its requests not yet finished
	noMore   bool // no request left to send
	ended    bool
}

// lreq is a request being sent: from its admission to its result, over
// every attempt an emulated client makes. A loop recycles them; gen tells
// a timer or a queue entry made for an earlier use from the current one.
type lreq struct {
	gen    uint32
	v      *lvconn
	r      *Req
	res    result // of the attempt under way
	giveUp int64  // past it, waiting for a slot ends in not sent
	// Client emulation: the attempt (from 0), the first attempt's due
	// time, the seed of the retry jitter; clientTO says the attempt's
	// deadline is the client's timeout; kept is the connection kept for
	// the next attempt while the client waits to retry.
	attempt  int32
	logical  int64
	seed     uint64
	clientTO bool
	kept     *lconn
	retryAt  int64
	// spare: sent on a spare connection (strict pacing), not the
	// replayed connection's own.
	spare    bool
	c        *lconn
	written  int
	reused   bool
	deadline int64
	waiting  bool // in a wait queue
	holds    bool // holds an in-flight slot
	prev     *lreq
	next     *lreq
	listed   bool // in deadlines
}

type connState uint8

const (
	csConnecting connState = iota
	csWriting
	csReading
	csIdle
)

// lconn is one keep-alive TCP connection to the target.
type lconn struct {
	fd     int
	slot   int32
	gen    int32
	state  connState
	idle   idleState // what arrived while idle: judge's unsolicited bytes
	done   int       // complete exchanges it carried
	rd     bool      // readable: an edge not read to the end
	dialed int64     // when it began to connect
	q      *lreq
	p      respParser
}

func (l *evloop) register(c *lconn) error {
	if n := len(l.free); n > 0 {
		c.slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		c.slot = int32(len(l.slots))
		l.slots = append(l.slots, nil)
	}
	l.slots[c.slot] = c
	l.gen++
	c.gen = l.gen
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: c.slot, Pad: c.gen}
	return unix.EpollCtl(l.p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
}

// closeConn closes a connection; its slot of the connection bound stays
// taken (release frees it).
func (l *evloop) closeConn(c *lconn) {
	if c.fd < 0 {
		return
	}
	sysClose(c.fd) // closing leaves the epoll set too
	c.fd = -1
	l.slots[c.slot] = nil
	l.free = append(l.free, c.slot)
}

// release closes a connection and frees its slot (for a waiting request:
// admitWaiting).
func (l *evloop) release(c *lconn) {
	l.closeConn(c)
	l.conns--
}

// retire closes a connection with no request outstanding, counting what
// the target sent on it unasked.
func (l *evloop) retire(c *lconn) {
	if c.idle == idleBytes {
		l.report(result{due: nanotime(), event: true, unsolicited: true})
	}
	l.release(c)
}

func (l *evloop) report(r result) { l.batch = append(l.batch, r) }

func (l *evloop) flushResults() {
	if len(l.batch) == 0 {
		return
	}
	l.r.batches <- l.batch
	select {
	case l.batch = <-l.r.free:
	default:
		l.batch = make([]result, 0, 64)
	}
}

// run is the loop: messages from the driver, then due times, deadlines
// and socket events, until the driver is done and nothing is left.
func (l *evloop) run() {
	stopped := false
	for {
		l.drainInbox()
		if !stopped && l.r.stopped() {
			stopped = true
			l.stopAll()
		}
		l.now = nanotime()
		l.fireTimers()
		l.expire()
		l.flushResults()
		if l.driverDone && l.live == 0 && l.inflight == 0 && l.nWaiting == 0 {
			for _, c := range l.spares {
				l.retire(c)
			}
			l.spares = nil
			l.flushResults()
			return
		}
		// Sleep until the next due time or deadline (10 ms at most, to
		// read the driver's messages and see a stop), unless it is so
		// close that waking would cost more than looking again.
		until := nanotime() + int64(10*time.Millisecond)
		if at, ok := l.nextTimer(); ok {
			until = min(until, at)
		}
		var n int
		switch now := nanotime(); {
		case until-now >= int64(loopSpin):
			n = l.p.wait(l.events, until)
			l.polled = nanotime()
		case now-l.polled < int64(loopSpin):
			// Sockets were looked at a moment ago: wait for the due time
			// on the clock alone, which costs no system call.
			for nanotime() < until {
			}
		default:
			n = l.p.poll(l.events)
			l.polled = now
		}
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			if ev.Fd == timerToken {
				continue
			}
			c := l.slots[ev.Fd]
			if c == nil || c.gen != ev.Pad {
				continue // closed earlier in this pass
			}
			l.onEvent(c, ev.Events)
		}
	}
}

// loopSpin: a due time this close is waited for by polling, not by a
// timed sleep, whose wake-up latency would be of the same order.
const loopSpin = 20 * time.Microsecond

func (l *evloop) drainInbox() {
	for {
		select {
		case ms := <-l.inbox:
			for i := range ms {
				l.onMsg(&ms[i])
			}
		default:
			return
		}
	}
}

func (l *evloop) onMsg(m *loopMsg) {
	switch m.kind {
	case msgAdd:
		m.cp.add(m.r)
		l.wakeWaiting(m.cp)
	case msgClose:
		m.cp.closed = true
		l.wakeWaiting(m.cp)
	case msgSpawn:
		v := &lvconn{cp: m.cp, consumer: m.cp.attach(), shift: m.v.Shift, index: m.index}
		l.live++
		l.advance(v)
	case msgEnd:
		l.driverDone = true
	}
}

func (l *evloop) wakeWaiting(cp *connPass) {
	ws := l.waiting[cp]
	if len(ws) == 0 {
		return
	}
	delete(l.waiting, cp)
	for _, v := range ws {
		l.advance(v)
	}
}

// advance takes a replayed connection's next request and sets a timer
// for its due time; a connection with no request left ends once its
// requests in flight are done.
func (l *evloop) advance(v *lvconn) {
	if l.r.stopped() {
		v.noMore = true
		l.maybeEnd(v)
		return
	}
	r, i, ok, done := v.cp.take(v.consumer)
	if !ok {
		if done {
			v.noMore = true
			l.maybeEnd(v)
		} else {
			l.waiting[v.cp] = append(l.waiting[v.cp], v) // the driver has not read it yet
		}
		return
	}
	rel := l.r.s.Due(r.Offset, v.shift)
	if rel >= l.r.s.Duration {
		v.noMore = true
		l.maybeEnd(v)
		return
	}
	v.r, v.i, v.due = r, i, l.r.t0+int64(rel)
	l.timers.push(timer{at: v.due, v: v})
}

func (l *evloop) maybeEnd(v *lvconn) {
	if !v.noMore || v.busy || v.inflight > 0 || v.ended {
		return
	}
	v.ended = true
	if v.own != nil {
		l.retire(v.own)
		v.own = nil
		l.admitWaiting()
	}
	v.cp.detach(v.consumer)
	l.live--
	l.e.load[l.id].Add(-1)
}

// stopAll ends, at a stop, every replayed connection waiting for a due
// time or for the driver: what they had left is not sent. Requests in
// flight finish.
func (l *evloop) stopAll() {
	ts := l.timers
	l.timers = nil
	for _, t := range ts {
		switch {
		case t.v != nil:
			t.v.noMore = true
			l.maybeEnd(t.v)
		case t.retry && t.q.gen == t.gen:
			l.retryNow(t.q) // stopped: the request's outcome is its last attempt's
		default:
			l.timers.push(t) // a wait for a slot goes on, as it does in the goroutine engine
		}
	}
	for cp, ws := range l.waiting {
		delete(l.waiting, cp)
		for _, v := range ws {
			v.noMore = true
			l.maybeEnd(v)
		}
	}
}

// timer is a replayed connection's next due time (v), or for q the end
// of its wait for a slot, or (retry) its client's next attempt.
type timer struct {
	at    int64
	v     *lvconn
	q     *lreq
	gen   uint32 // q's generation: a request recycled since is not this one
	retry bool
}

// timerHeap is a min-heap of timers by time, typed so that pushing one
// allocates nothing.
type timerHeap []timer

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	s := *h
	t := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = timer{}
	s = s[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s[l].at < s[m].at {
			m = l
		}
		if r < n && s[r].at < s[m].at {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return t
}

func (l *evloop) nextTimer() (int64, bool) {
	at := int64(1<<63 - 1)
	ok := false
	if len(l.timers) > 0 {
		at, ok = l.timers[0].at, true
	}
	if q := l.deadlines.head; q != nil && q.deadline < at {
		at, ok = q.deadline, true
	}
	return at, ok
}

// fireTimers acts on every due time reached: the requests due in this
// pass are written back to back.
func (l *evloop) fireTimers() {
	for len(l.timers) > 0 {
		if l.timers[0].at > l.now {
			// Time moves while the pass writes: look again before
			// sleeping on a due time that is already here.
			if l.now = nanotime(); l.timers[0].at > l.now {
				return
			}
		}
		t := l.timers.pop()
		switch {
		case t.q != nil && t.q.gen != t.gen:
			continue // the request this was for is long done
		case t.retry:
			l.retryNow(t.q)
			continue
		case t.q != nil:
			if t.q.waiting {
				l.giveUp(t.q)
			}
			continue
		}
		l.due(t.v)
	}
}

// due acts on a replayed connection's request at its due time.
func (l *evloop) due(v *lvconn) {
	if l.r.stopped() {
		v.noMore = true
		l.maybeEnd(v)
		return
	}
	r, due := v.r, v.due
	id := reqID{vconn: v.index, req: v.i}
	ready := max(due, v.lastDone)
	if nanotime()-ready > int64(behindLimit) {
		l.report(result{due: due, ready: ready, route: r.Route, target: r.Target, vconn: id.vconn, req: id.req, notSent: "generator_behind"})
		l.advance(v)
		return
	}
	q := l.newReq()
	q.v, q.r, q.giveUp = v, r, due+int64(l.r.o.Timeout)
	q.res = result{due: due, ready: ready, route: r.Route, recorded: int32(r.Status), vconn: id.vconn, req: id.req, target: r.Target}
	if l.r.o.emulating() {
		q.seed = mix(l.r.o.Schedule.Seed, uint64(id.vconn), uint64(id.req))
		l.e.budget.firstAttempt()
	}
	if l.r.o.Pacing == Session {
		v.busy = true
		l.exec(q)
		return
	}
	// Strict pacing: the request leaves now, on the connection's own
	// connection when it is free, else on a spare; the connection moves
	// on to its next request at once.
	q.res.ready = due
	v.inflight++
	if v.busy {
		q.spare = true
	} else {
		v.busy = true
	}
	l.exec(q)
	l.advance(v)
}

// exec admits a request: a place under the rate cap, an in-flight slot,
// then a connection. Every attempt passes here, retries included, as
// every attempt passes the goroutine engine's try.
func (l *evloop) exec(q *lreq) {
	if l.r.cap != nil && !l.r.cap.allow(nanotime()) {
		q.res.notSent = "max_rate"
		l.finish(q)
		return
	}
	if l.inflight >= l.maxInflight {
		l.park(q, &l.waitInfl, "max_inflight")
		return
	}
	l.admit(q)
}

// park makes q wait in queue for a slot until its give-up time. No more
// requests wait than the in-flight bound lets go at once (a generator
// far behind would otherwise hold them all): past that, q is not sent,
// counted by reason.
func (l *evloop) park(q *lreq, queue *reqQueue, reason string) {
	if l.nWaiting >= l.maxInflight {
		q.res.notSent = reason
		l.finish(q)
		return
	}
	q.waiting = true
	l.nWaiting++
	queue.push(q)
	l.timers.push(timer{at: q.giveUp, q: q, gen: q.gen})
}

// admit gives the request an in-flight slot and a connection: its own
// (looked at first: what arrived on it unasked is counted, and a
// connection the target ended is replaced in the same slot), a spare, or
// a new one if the connection bound allows.
func (l *evloop) admit(q *lreq) {
	l.inflight++
	l.inflightN.Add(1)
	q.holds = true
	var c *lconn
	if q.kept != nil {
		c, q.kept = q.kept, nil // the connection of the attempt before
	} else if q.spare {
		if n := len(l.spares); n > 0 {
			c = l.spares[n-1]
			l.spares = l.spares[:n-1]
		}
	} else {
		c = q.v.own
		q.v.own = nil
	}
	if c != nil {
		if c.idle != idleUsable {
			q.res.unsolicited = c.idle == idleBytes
			l.closeConn(c) // the fresh connection takes its slot
			c = nil
		}
	} else if l.conns >= l.maxConns {
		l.park(q, &l.waitConn, "max_conns")
		return
	} else {
		l.conns++
	}
	l.send(q, c)
}

// send starts the request's attempt: on c, or on a fresh connection.
func (l *evloop) send(q *lreq, c *lconn) {
	now := nanotime()
	q.res.sent = now
	l.sent.Add(1)
	q.deadline = now + int64(l.r.o.Timeout)
	// An emulated client gives up sooner than herd's own bound: its
	// deadline cuts the attempt short, and the connection is closed.
	if ct := l.r.o.ClientTimeout; ct > 0 && ct < l.r.o.Timeout {
		q.deadline, q.clientTO = now+int64(ct), true
	}
	l.deadlines.push(q)
	if c == nil {
		l.dial(q)
		return
	}
	l.start(q, c)
}

// dial opens a fresh connection for q, whose slot q holds.
func (l *evloop) dial(q *lreq) {
	dialed := nanotime()
	fd, done, err := l.t.sockOpen()
	if err != nil {
		q.res.connect = nanotime() - dialed
		l.dialFailed(q, err)
		return
	}
	c := &lconn{fd: fd, state: csConnecting, dialed: dialed}
	if err := l.register(c); err != nil {
		l.closeConn(c)
		l.dialFailed(q, l.t.dialError(err))
		return
	}
	c.q, q.c = q, c
	if done {
		l.start(q, c)
	}
}

func (l *evloop) dialFailed(q *lreq, err error) {
	l.conns-- // the slot q held
	q.res.class, q.res.fail, q.res.done = dialClass(err), &failure{err: err}, nanotime()
	if q.clientTO && q.res.class == ClassConnectTimeout {
		q.res.class = ClassClientTimeout
	}
	l.finish(q)
}

// start writes q's request on a connected c.
func (l *evloop) start(q *lreq, c *lconn) {
	if c.state == csConnecting {
		q.res.connect = nanotime() - c.dialed // the connection it opened
	}
	c.q, q.c = q, c
	q.written = 0
	q.reused = c.done > 0
	c.state = csWriting
	c.p.reset(q.r.Head, q.reused)
	l.write(c)
}

func (l *evloop) write(c *lconn) {
	q := c.q
	wire := q.r.Wire
	for q.written < len(wire) {
		n, errno := sysWrite(c.fd, wire[q.written:])
		switch {
		case errno == unix.EAGAIN:
			return // the socket's buffer is full: on with the next writable edge
		case errno == unix.EINTR:
			continue
		case errno != 0:
			l.attemptDone(q, c, l.t.ioError("write", c.fd, errno))
			return
		}
		q.written += n
	}
	c.state = csReading
	if c.rd {
		l.read(c, true)
	}
}

// onEvent acts on a socket's readiness.
func (l *evloop) onEvent(c *lconn, ev uint32) {
	in := ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
	if in {
		c.rd = true
	}
	switch c.state {
	case csConnecting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if err := l.t.connectResult(c.fd); err != nil {
			q := c.q
			q.res.connect = nanotime() - c.dialed
			l.closeConn(c)
			q.c = nil
			l.dialFailed(q, err)
			return
		}
		l.start(c.q, c)
	case csWriting:
		// Bytes that arrive before the whole request is written wait,
		// as they do for the goroutine engine's blocking write.
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.write(c)
		}
	case csReading:
		if in {
			l.read(c, ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
		}
	case csIdle:
		if in && c.idle == idleUsable {
			l.idleRead(c)
		}
	}
}

// read feeds what arrived to the response parser. hup says the target
// may have ended the connection: read on to find out.
func (l *evloop) read(c *lconn, hup bool) {
	for {
		n, errno := sysRead(c.fd, l.rbuf)
		switch {
		case errno == unix.EAGAIN:
			c.rd = false
			return
		case errno == unix.EINTR:
			continue
		case errno != 0:
			c.rd = false
			c.p.abort(l.t.ioError("read", c.fd, errno))
			l.attemptDone(c.q, c, nil)
			return
		case n == 0:
			c.rd = false
			c.p.eof()
			l.attemptDone(c.q, c, nil)
			return
		}
		if !c.p.got {
			c.q.res.first = nanotime()
		}
		used := c.p.feed(l.rbuf[:n])
		if c.p.done() {
			// What follows the response no request asked for: judge
			// counts it when the connection is next used or closed.
			switch {
			case used < n:
				c.idle = idleBytes
			case n == len(l.rbuf) || hup:
				l.idleRead(c)
			default:
				c.rd = false
			}
			l.attemptDone(c.q, c, nil)
			return
		}
		if n < len(l.rbuf) && !hup {
			c.rd = false // read to the end: the next bytes bring a new edge
			return
		}
	}
}

// idleRead looks at what arrived on an idle connection: bytes no request
// asked for, or the target ending it. Either way the connection is not
// used again; it is replaced, and the bytes counted, when it is next
// needed or closed (judge).
func (l *evloop) idleRead(c *lconn) {
	for {
		n, errno := sysRead(c.fd, l.rbuf)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			c.rd = false
		case errno != 0 || n == 0:
			c.idle = idleEnded
		default:
			c.idle = idleBytes
		}
		return
	}
}

// attemptDone judges the attempt of c's request, with writeErr when the
// write failed; the parser holds what the read observed.
func (l *evloop) attemptDone(q *lreq, c *lconn, writeErr error) {
	a := attempt{reused: q.reused, written: q.written}
	if writeErr != nil {
		a.err = writeErr
	} else {
		p := &c.p
		a.got, a.status, a.bytes, a.err = p.got, p.status, p.bytes, p.err
	}
	c.q, q.c = nil, nil
	v := judge(q.r.Wire, a)
	if v.resend {
		// Not one byte left herd: the request goes once more, on a fresh
		// connection in the same slot, within the same deadline.
		l.closeConn(c)
		q.res.retried = true
		l.dial(q)
		return
	}
	q.res.written = q.res.written || a.written > 0
	q.res.done = nanotime()
	q.res.class = v.class
	if q.clientTO && v.class == ClassTimeout {
		q.res.class = ClassClientTimeout
	}
	if v.class != "" {
		q.res.fail = &failure{err: a.err, written: q.res.written, got: a.got, bytes: a.bytes, status: a.status}
	}
	switch {
	case !v.response, c.p.upgraded:
		l.release(c) // broken, closed by the target, or no longer HTTP
	case !c.p.keepAlive:
		l.retire(c)
	default:
		c.done++
		c.state = csIdle
		q.c = c // handed back to its owner in finish
	}
	if v.response {
		q.res.first, q.res.status, q.res.bytes = max(q.res.first, q.res.sent), int32(a.status), a.bytes
		q.res.mismatch = v.class == "" && q.r.Status != 0 && a.status != q.r.Status
		q.res.retryAfter = c.p.retryAfter
	}
	l.finish(q)
}

// finish ends a request's attempt: it frees the in-flight slot and, when
// an emulated client retries, reports the attempt and waits for the next
// one; otherwise it reports the request's result, gives its connection
// back and moves its replayed connection on.
func (l *evloop) finish(q *lreq) {
	if q.holds {
		q.holds = false
		l.inflight--
		l.inflightN.Add(-1)
		l.deadlines.remove(q)
	}
	if q.res.notSent == "" && l.r.o.emulating() && l.retryLater(q) {
		l.admitWaiting()
		return
	}
	l.report(q.res)
	l.done(q, q.c)
}

// retryLater applies the client's retry policy to the attempt that just
// ended (exec's rule in the goroutine engine): when it retries, the
// attempt is reported as one that was retried, and the next one is timed.
func (l *evloop) retryLater(q *lreq) bool {
	res := &q.res
	wait, retry := l.r.o.Retry.next(res, int(q.attempt), q.seed, l.e.budget)
	if !retry {
		return false
	}
	l.report(*res)
	// The client keeps its connection when the target answered; one that
	// failed is gone, and the next attempt opens another.
	q.kept, q.c = q.c, nil
	q.retryAt = res.done + int64(wait)
	l.timers.push(timer{at: q.retryAt, q: q, gen: q.gen, retry: true})
	return true
}

// retryNow makes an emulated client's next attempt, due now; after a stop
// it makes none, and the request's outcome is its last attempt's.
func (l *evloop) retryNow(q *lreq) {
	last := q.res
	if l.r.stopped() {
		last.nonFinal, last.outcomeOnly = false, true
		l.report(last)
		l.done(q, q.kept)
		return
	}
	if q.logical == 0 {
		q.logical = q.res.due
	}
	q.attempt++
	sched := q.retryAt // the attempt is due when the client retries
	q.giveUp = sched + int64(l.r.o.Timeout)
	q.res = result{due: sched, ready: sched, route: last.route, recorded: last.recorded, vconn: last.vconn, req: last.req,
		target: last.target, attempt: q.attempt, logical: q.logical}
	l.exec(q)
}

func (l *evloop) newReq() *lreq {
	if n := len(l.freeReqs); n > 0 {
		q := l.freeReqs[n-1]
		l.freeReqs = l.freeReqs[:n-1]
		return q
	}
	return &lreq{}
}

// recycle keeps a finished request for the next one.
func (l *evloop) recycle(q *lreq) {
	*q = lreq{gen: q.gen + 1}
	if len(l.freeReqs) < 4096 {
		l.freeReqs = append(l.freeReqs, q)
	}
}

// done gives a finished request's connection c back and moves its
// replayed connection on.
func (l *evloop) done(q *lreq, c *lconn) {
	v := q.v
	if c == nil {
		c = q.kept // a retry that never got its slot
	}
	q.c, q.kept = nil, nil
	defer l.recycle(q)
	switch {
	case q.spare:
		if c != nil {
			if len(l.spares) < l.maxConns {
				l.spares = append(l.spares, c)
			} else {
				l.retire(c)
			}
		}
		v.inflight--
		l.maybeEnd(v)
	case l.r.o.Pacing == Session:
		v.own = keepOwn(v.own, c)
		v.busy = false
		v.lastDone = q.res.done
		if q.res.notSent != "" {
			v.lastDone = nanotime()
		}
		l.advance(v)
	default:
		v.own = keepOwn(v.own, c)
		v.busy = false
		v.inflight--
		l.maybeEnd(v)
	}
	l.admitWaiting()
}

// keepOwn is a replayed connection's own connection once a request is
// done: c, the one the request ended on, or, when the request never took
// one (not sent before its admission), the one it had.
func keepOwn(own, c *lconn) *lconn {
	if c == nil {
		return own
	}
	return c
}

// giveUp ends a request's wait for a slot at its deadline: not sent.
func (l *evloop) giveUp(q *lreq) {
	q.waiting = false
	l.nWaiting--
	if q.holds {
		q.res.notSent = "max_conns"
	} else {
		q.res.notSent = "max_inflight"
	}
	// A replayed connection's own connection went with the request: it
	// is still its own.
	l.finish(q)
}

// admitWaiting lets waiting requests take the slots that freed. A
// request it admits may finish at once (a refused dial) and free its slot
// again: the outer call goes on until no slot or no request is left.
func (l *evloop) admitWaiting() {
	if l.admitting || l.nWaiting == 0 {
		return
	}
	l.admitting = true
	defer func() { l.admitting = false }()
	for progress := true; progress; {
		progress = false
		for l.conns < l.maxConns {
			q := l.waitConn.pop()
			if q == nil {
				break
			}
			q.waiting = false
			l.nWaiting--
			l.conns++
			l.send(q, nil)
			progress = true
		}
		for l.inflight < l.maxInflight {
			q := l.waitInfl.pop()
			if q == nil {
				break
			}
			q.waiting = false
			l.nWaiting--
			l.admit(q)
			progress = true
		}
	}
}

// expire ends the attempts whose deadline passed: a timeout, or a
// connection that did not open in time.
func (l *evloop) expire() {
	now := nanotime()
	for q := l.deadlines.head; q != nil && q.deadline <= now; q = l.deadlines.head {
		c := q.c
		if c == nil {
			l.deadlines.remove(q) // never: a request in the list is on a connection
			continue
		}
		if c.state == csConnecting {
			l.closeConn(c)
			q.c = nil
			l.dialFailed(q, l.t.dialError(os.ErrDeadlineExceeded))
			continue
		}
		op := "read"
		var werr error
		if c.state == csWriting {
			op = "write"
			werr = l.t.ioError(op, c.fd, os.ErrDeadlineExceeded)
		} else {
			c.p.abort(l.t.ioError(op, c.fd, os.ErrDeadlineExceeded))
		}
		l.attemptDone(q, c, werr)
	}
}

// reqList is the requests in flight in send order, which is deadline
// order: every request's deadline is its send plus the same timeout.
type reqList struct{ head, tail *lreq }

func (ls *reqList) push(q *lreq) {
	if q.listed {
		return // a resend keeps its place: its deadline is the first attempt's
	}
	q.listed = true
	q.prev, q.next = ls.tail, nil
	if ls.tail != nil {
		ls.tail.next = q
	} else {
		ls.head = q
	}
	ls.tail = q
}

func (ls *reqList) remove(q *lreq) {
	if !q.listed {
		return
	}
	q.listed = false
	if q.prev != nil {
		q.prev.next = q.next
	} else {
		ls.head = q.next
	}
	if q.next != nil {
		q.next.prev = q.prev
	} else {
		ls.tail = q.prev
	}
	q.prev, q.next = nil, nil
}

// reqQueue is a FIFO of requests waiting for a slot; those that gave up
// (or were recycled since) are skipped.
type reqQueue struct {
	q    []queued
	head int
}

type queued struct {
	q   *lreq
	gen uint32
}

func (rq *reqQueue) push(q *lreq) { rq.q = append(rq.q, queued{q, q.gen}) }

func (rq *reqQueue) pop() *lreq {
	for rq.head < len(rq.q) {
		e := rq.q[rq.head]
		rq.q[rq.head] = queued{}
		rq.head++
		if rq.head == len(rq.q) {
			rq.q, rq.head = rq.q[:0], 0
		}
		if e.q.gen == e.gen && e.q.waiting {
			return e.q
		}
	}
	return nil
}
