package replay

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// The driver hands an engine the run's replayed connections and their
// requests a little before they are due: the connections from the pure
// schedule (vconnIter), the requests from the plan, read one pass of the
// window at a time (reqCursor). It never holds more than what is due
// within its lookahead and what the engine has not consumed yet, so a
// run's memory does not grow with the tape or the number of passes.

// Lookaheads of the driver: how long before its due time (copy 0's, which
// no other copy precedes) a request is read and handed over, and a
// replayed connection is started. Both are far above the driver's own
// wake-up latency; the connection's lead is the smaller, so that its
// first request is always there before it.
const (
	reqLead   = 100 * time.Millisecond
	spawnLead = 20 * time.Millisecond
)

// connPass is one pass of one recorded connection: the requests its
// copies replay, as the driver reads them. The copies (its consumers)
// read it at their own pace; it keeps a request until the slowest of them
// has taken it.
type connPass struct {
	conn  int32 // ordinal of the recorded connection
	loop  int32 // the pass
	total int32 // requests it receives in all, unless the run ends first

	mu sync.Mutex // the goroutine engine's copies read it concurrently; an event loop owns it
	// reqs holds requests base.. of the connection as read so far.
	reqs   []*Req
	base   int32
	closed bool // no request will be added
	// cursors holds, per consumer, the index of the next request it
	// takes; -1 once it is done. consumers is how many will attach: until
	// the last has, every request is kept for it.
	cursors   []int32
	consumers int
	wake      chan struct{} // closed when a request is added or the pass closes
	owner     int           // the event loop that owns it (loop engine)
}

func newConnPass(conn, loop, total int32, consumers int) *connPass {
	return &connPass{conn: conn, loop: loop, total: total, cursors: make([]int32, 0, consumers), consumers: consumers}
}

// attach adds a consumer, which starts at the first request.
func (cp *connPass) attach() int {
	cp.cursors = append(cp.cursors, 0)
	return len(cp.cursors) - 1
}

// add appends the connection's next request.
func (cp *connPass) add(r *Req) {
	cp.reqs = append(cp.reqs, r)
	if len(cp.reqs) >= 64 && len(cp.reqs) == cap(cp.reqs) {
		cp.trim()
	}
}

// trim drops the requests every consumer has taken.
func (cp *connPass) trim() {
	if len(cp.cursors) < cp.consumers {
		return // a copy yet to start needs them all
	}
	low := cp.base + int32(len(cp.reqs))
	for _, c := range cp.cursors {
		if c >= 0 {
			low = min(low, c)
		}
	}
	if drop := int(low - cp.base); drop > 0 {
		n := copy(cp.reqs, cp.reqs[drop:])
		clear(cp.reqs[n:])
		cp.reqs = cp.reqs[:n]
		cp.base = low
	}
}

// take returns consumer c's next request and its index on the
// connection; ok false when there is none yet, done true when there will
// be none.
func (cp *connPass) take(c int) (r *Req, i int32, ok, done bool) {
	i = cp.cursors[c]
	if k := i - cp.base; int(k) < len(cp.reqs) {
		cp.cursors[c]++
		return cp.reqs[k], i, true, false
	}
	return nil, i, false, cp.closed || i >= cp.total
}

// detach marks consumer c done.
func (cp *connPass) detach(c int) {
	cp.cursors[c] = -1
	live := len(cp.cursors) < cp.consumers
	for _, x := range cp.cursors {
		live = live || x >= 0
	}
	if !live {
		clear(cp.reqs)
		cp.reqs = nil
	}
}

// driverSink is an engine, as the driver sees it.
type driverSink interface {
	// pass makes a new connection pass known, before its first request.
	pass(cp *connPass)
	// add hands over the pass's next request.
	add(cp *connPass, r *Req)
	// close says the pass will get no more requests.
	close(cp *connPass)
	// spawn starts a replayed connection (a copy in a pass), numbered in
	// order of first due time.
	spawn(v VConn, cp *connPass, index int32)
	// flush is called before the driver sleeps: whatever it handed over
	// must reach the engine now.
	flush()
}

type passKey struct{ conn, loop int32 }

// passState is what the driver keeps of a live pass.
type passState struct {
	cp        *connPass // nil when no copy of it runs
	delivered int32
	spawned   int // copies started
	consumers int // copies the schedule starts in all
}

type driver struct {
	r    *run
	sink driverSink
	it   *vconnIter
	x    *connIndex

	cur     reqCursor // the pass being read; nil before and after
	loop    int       // pass of cur
	reqDone bool      // every pass read to the end of the run
	// the next request and replayed connection, read ahead
	nextConn int32
	nextReq  *Req
	nextDue  time.Duration // copy 0's due time of nextReq
	nextV    VConn
	haveV    bool
	vIndex   int32

	live map[passKey]*passState
	err  error
}

func newDriver(r *run, sink driverSink) *driver {
	return &driver{r: r, sink: sink, it: r.s.iter(r.p), x: r.p.index(), loop: -1, live: map[passKey]*passState{}}
}

// readReq reads the next request of the run, opening the next pass when
// one ends. Passes follow each other in time (each request of pass n+1 is
// due after every request of pass n, for copy 0), so one is read at a
// time.
func (d *driver) readReq(ctx context.Context) {
	s := d.r.s
	for !d.reqDone {
		if d.cur == nil {
			if d.loop+1 >= s.Passes {
				d.reqDone = true
				break
			}
			d.loop++
			cur, err := d.r.p.requests(ctx, true)
			if err != nil {
				d.err, d.reqDone = err, true
				break
			}
			d.cur = cur
		}
		c, r, err := d.cur.next()
		if err == io.EOF {
			d.endPass(int32(d.loop))
			d.cur = nil
			continue
		}
		if err != nil {
			d.err, d.reqDone = err, true
			break
		}
		due := s.Due(r.Offset, s.Shift(d.x.id(c), d.loop, 0))
		if due >= s.Duration {
			// Offsets rise through a pass and every later pass starts
			// later: nothing more is due within the run.
			d.endPass(int32(d.loop))
			d.cur, d.reqDone = nil, true
			break
		}
		d.nextConn, d.nextReq, d.nextDue = c, r, due
		return
	}
	d.nextReq = nil
}

// endPass closes the live passes of pass loop: they get no more requests.
func (d *driver) endPass(loop int32) {
	for k, ps := range d.live {
		if k.loop != loop {
			continue
		}
		if ps.cp != nil {
			d.sink.close(ps.cp)
		}
		ps.delivered = -1 // no more requests
		if ps.spawned >= ps.consumers {
			delete(d.live, k)
		}
	}
}

// run hands everything over in time, until the end of the run or a stop.
func (d *driver) run() error {
	ctx := d.r.stop
	d.readReq(ctx)
	d.nextV, d.haveV = d.it.Next()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			break
		}
		const never = time.Duration(1<<63 - 1)
		tReq, tV := never, never
		if d.nextReq != nil {
			tReq = d.nextDue - reqLead
		}
		if d.haveV {
			tV = d.nextV.First - spawnLead
		}
		if tReq == never && tV == never {
			break
		}
		at := min(tReq, tV)
		if wait := time.Duration(d.r.t0 + int64(at) - nanotime()); wait > 0 {
			d.sink.flush()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				continue
			}
		}
		if tReq <= tV {
			d.deliver()
			d.readReq(ctx)
		} else {
			d.start(d.nextV)
			d.nextV, d.haveV = d.it.Next()
		}
	}
	d.sink.flush()
	if d.err != nil && ctx.Err() == nil {
		return fmt.Errorf("read the plan's requests: %w", d.err)
	}
	return nil
}

func (d *driver) state(conn, loop int32) *passState {
	k := passKey{conn, loop}
	ps := d.live[k]
	if ps == nil {
		consumers := d.r.s.consumers(d.x.id(conn), d.x.first(conn), int(loop))
		ps = &passState{consumers: consumers}
		if consumers > 0 {
			ps.cp = newConnPass(conn, loop, d.x.n(conn), consumers)
			d.sink.pass(ps.cp)
		}
		d.live[k] = ps
	}
	return ps
}

// deliver hands over the request read ahead.
func (d *driver) deliver() {
	loop := int32(d.loop)
	ps := d.state(d.nextConn, loop)
	if ps.cp != nil {
		d.sink.add(ps.cp, d.nextReq)
	}
	ps.delivered++
	if ps.delivered >= d.x.n(d.nextConn) {
		if ps.cp != nil {
			d.sink.close(ps.cp)
		}
		ps.delivered = -1
		if ps.spawned >= ps.consumers {
			delete(d.live, passKey{d.nextConn, loop})
		}
	}
}

// start starts a replayed connection.
func (d *driver) start(v VConn) {
	k := passKey{v.Conn, v.Loop}
	ps := d.state(v.Conn, v.Loop)
	ps.spawned++
	d.sink.spawn(v, ps.cp, d.vIndex)
	d.vIndex++
	if ps.spawned >= ps.consumers && ps.delivered < 0 {
		delete(d.live, k)
	}
}
