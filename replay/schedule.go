package replay

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Mode is how a multiple k of the recorded rate is produced.
type Mode int

const (
	// Clone replays every recorded connection k times, on k connections:
	// the window keeps its length and shape and the users multiply.
	Clone Mode = iota
	// Compress plays the window k times faster.
	Compress
)

func (m Mode) String() string {
	if m == Compress {
		return "compress"
	}
	return "clone"
}

// ParseMode parses clone or compress.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "clone", "":
		return Clone, nil
	case "compress":
		return Compress, nil
	}
	return 0, fmt.Errorf("scale mode %q: use clone or compress", s)
}

// Schedule decides when every request of a plan is due. Its methods are
// pure functions of the plan's offsets: no clock, no sleeping. Times are
// offsets from the start of the run.
type Schedule struct {
	Mode     Mode
	Scale    float64
	Seed     uint64
	Window   time.Duration // one pass at 1x
	Duration time.Duration // length of the run; requests due later are not sent
	Passes   int           // passes of the window played
	// Weight is Plan.SampleWeight: each recorded connection stands for
	// Weight real ones, so the schedule plays Scale×Weight times the
	// recording. 0 means 1.
	Weight float64
}

// NewSchedule makes the schedule of a run of the given duration, filled by
// repeating the window. Zero means one pass of the window, played to its
// end: in clone mode that is the window plus the jitter of the copies, so
// that every request of every copy is sent.
func NewSchedule(mode Mode, scale float64, seed uint64, window, duration time.Duration) Schedule {
	return newSchedule(mode, scale, 1, seed, window, duration)
}

// PlanSchedule is NewSchedule for plan p: its window, and its sample
// weight, so that scale is a multiple of the whole traffic's rate.
func PlanSchedule(p *Plan, mode Mode, scale float64, seed uint64, duration time.Duration) Schedule {
	return newSchedule(mode, scale, p.weight(), seed, p.Length, duration)
}

func newSchedule(mode Mode, scale, weight float64, seed uint64, window, duration time.Duration) Schedule {
	s := Schedule{Mode: mode, Scale: scale, Seed: seed, Window: window, Duration: duration, Weight: weight}
	if duration <= 0 {
		s.Passes = 1
		s.Duration = s.pass()
		if mode == Clone && s.k() > 1 {
			s.Duration += s.maxJitter()
		}
		return s
	}
	s.Passes = int(math.Ceil(float64(duration) / float64(s.pass())))
	return s
}

// k is the multiple of the recording played: Scale×Weight.
func (s Schedule) k() float64 {
	if s.Weight > 0 {
		return s.Scale * s.Weight
	}
	return s.Scale
}

// pass is how long one pass of the window takes.
func (s Schedule) pass() time.Duration {
	if s.Mode == Compress {
		return time.Duration(float64(s.Window) / s.k())
	}
	return s.Window
}

// Copies is the number of copies of a recorded connection in a pass: k in
// compress mode is applied to time, so one; in clone mode floor(k), plus one
// more with probability frac(k), decided by a seeded hash so that runs are
// reproducible.
func (s Schedule) Copies(conn uint64, loop int) int {
	if s.Mode == Compress {
		return 1
	}
	whole := math.Floor(s.k())
	n := int(whole)
	if frac := s.k() - whole; frac > 0 && unit(mix(s.Seed, conn, uint64(loop), 0x636f7079)) < frac {
		n++
	}
	return n
}

// maxJitter bounds the start shift of extra copies: enough to keep clones
// out of lockstep, small against the window (a single pass lasts the window
// plus this, which dilutes its measured rate by as much).
func (s Schedule) maxJitter() time.Duration {
	return min(250*time.Millisecond, s.Window/20)
}

// Shift is when a copy of a connection's pass starts: copy 0 keeps the
// recorded timing exactly; the others start up to maxJitter later, by a
// seeded hash, so that clones do not arrive in lockstep.
func (s Schedule) Shift(conn uint64, loop, copy int) time.Duration {
	if s.Mode == Compress {
		return time.Duration(float64(loop) * float64(s.Window) / s.k())
	}
	base := time.Duration(loop) * s.Window
	if copy == 0 {
		return base
	}
	return base + time.Duration(unit(mix(s.Seed, conn, uint64(loop), uint64(copy)))*float64(s.maxJitter()))
}

// Due is when a request recorded at offset is due in a pass shifted by
// shift.
func (s Schedule) Due(offset, shift time.Duration) time.Duration {
	if s.Mode == Compress {
		return shift + time.Duration(float64(offset)/s.k())
	}
	return shift + offset
}

// VConn is one replayed connection: a copy of a recorded connection in one
// pass of the window.
type VConn struct {
	Conn  int32 // index in Plan.Conns
	Loop  int32
	Copy  int32
	Shift time.Duration
	First time.Duration // due time of its first request
}

// vconnIter yields the replayed connections of a whole run by first due
// time without listing them: memory holds only the copies whose nominal
// start (the pass's start plus the connection's first offset, before
// jitter) lies within the jitter bound of the next one to come, whatever
// the scale and the number of passes.
//
// Nominal starts rise monotonically over passes and over a pass's
// connections (which the plan sorts by first offset), and a copy's first
// due time is its nominal start plus a jitter in [0, maxJitter), so a copy
// whose first due time is below the next nominal start can be yielded.
type vconnIter struct {
	s    Schedule
	p    *Plan
	loop int // pass of the next connection to push
	conn int // index of the next connection to push
	heap vconnHeap
}

func (s Schedule) iter(p *Plan) *vconnIter { return &vconnIter{s: s, p: p} }

// nominal is the first due time of copy 0 of the next connection to push,
// and false when every connection has been pushed.
func (it *vconnIter) nominal() (time.Duration, bool) {
	x := it.p.index()
	for it.loop < it.s.Passes {
		if it.conn < x.len() {
			return it.s.Due(x.first(int32(it.conn)), it.s.Shift(x.id(int32(it.conn)), it.loop, 0)), true
		}
		it.loop, it.conn = it.loop+1, 0
	}
	return 0, false
}

func (it *vconnIter) Next() (VConn, bool) {
	x := it.p.index()
	for {
		next, more := it.nominal()
		if it.heap.Len() > 0 && (!more || it.heap.min().First < next) {
			return it.heap.pop(), true
		}
		if !more {
			return VConn{}, false
		}
		if next >= it.s.Duration && it.heap.Len() == 0 {
			// Nominal starts only rise, and jitter only delays: nothing
			// later is due within the run.
			return VConn{}, false
		}
		id, first := x.id(int32(it.conn)), x.first(int32(it.conn))
		for cp := 0; cp < it.s.Copies(id, it.loop); cp++ {
			shift := it.s.Shift(id, it.loop, cp)
			if f := it.s.Due(first, shift); f < it.s.Duration {
				it.heap.push(VConn{Conn: int32(it.conn), Loop: int32(it.loop), Copy: int32(cp), Shift: shift, First: f})
			}
		}
		it.conn++
	}
}

// consumers is how many copies of recorded connection conn (its id and
// first offset) the run replays in pass loop: those whose first request is
// due within the run, as Next yields them.
func (s Schedule) consumers(id uint64, first time.Duration, loop int) int {
	n := 0
	for cp := 0; cp < s.Copies(id, loop); cp++ {
		if s.Due(first, s.Shift(id, loop, cp)) < s.Duration {
			n++
		}
	}
	return n
}

// vconnHeap orders replayed connections by first due time, then by pass,
// recorded connection and copy, so that the order is reproducible.
type vconnHeap []VConn

func (h vconnHeap) Len() int { return len(h) }

func (h vconnHeap) less(i, j int) bool {
	a, b := &h[i], &h[j]
	if a.First != b.First {
		return a.First < b.First
	}
	if a.Loop != b.Loop {
		return a.Loop < b.Loop
	}
	if a.Conn != b.Conn {
		return a.Conn < b.Conn
	}
	return a.Copy < b.Copy
}

func (h vconnHeap) min() VConn { return h[0] }

func (h *vconnHeap) push(v VConn) {
	*h = append(*h, v)
	for i := len(*h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		(*h)[i], (*h)[parent] = (*h)[parent], (*h)[i]
		i = parent
	}
}

func (h *vconnHeap) pop() VConn {
	old := *h
	top := old[0]
	n := len(old) - 1
	old[0] = old[n]
	*h = old[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(l, m) {
			m = l
		}
		if r < n && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		(*h)[i], (*h)[m] = (*h)[m], (*h)[i]
		i = m
	}
	return top
}

// countDueIn counts the requests of the run due in [from, to).
func (s Schedule) countDueIn(p *Plan, from, to time.Duration) int64 {
	n, _, _ := s.countDue(context.Background(), p, from, to, to)
	return n
}

// CountDue counts the requests of the run: all of them, and those due at
// or after settle (the measured period).
func (s Schedule) CountDue(p *Plan, settle time.Duration) (all, measured int64) {
	all, measured, _ = s.countDue(context.Background(), p, 0, settle, s.Duration)
	return all, measured
}

// countDue counts the requests of the run due in [from, to), and those of
// them due at or after mid, in one pass over the plan's requests: a
// request's copies in every pass are a pure function of its recorded
// connection's id and its offset.
func (s Schedule) countDue(ctx context.Context, p *Plan, from, mid, to time.Duration) (n, late int64, err error) {
	to = min(to, s.Duration)
	if to <= from {
		return 0, 0, nil
	}
	cur, err := p.requests(ctx, false)
	if err != nil {
		return 0, 0, err
	}
	x := p.index()
	for {
		c, r, err := cur.next()
		if err == io.EOF {
			return n, late, nil
		}
		if err != nil {
			return n, late, err
		}
		if s.Due(r.Offset, 0) >= to {
			// Offsets rise, and every copy in every pass is due no
			// earlier than this: the rest of a long window is not read.
			return n, late, nil
		}
		a, b := s.countReq(x.id(c), r.Offset, from, mid, to)
		n, late = n+a, late+b
	}
}

// countReq counts the copies of a request (of recorded connection id, at
// offset) due in [from, to), and those due at or after mid.
func (s Schedule) countReq(id uint64, offset, from, mid, to time.Duration) (n, late int64) {
	jitter := time.Duration(0)
	if s.Mode == Clone {
		jitter = s.maxJitter()
	}
	// The first pass that can reach from: passes start a window apart.
	loop := 0
	if pass := s.pass(); pass > 0 {
		if nominal := s.Due(offset, 0); from-jitter > nominal {
			loop = int((from - jitter - nominal) / pass)
		}
	}
	for ; loop < s.Passes; loop++ {
		base := s.Due(offset, s.Shift(id, loop, 0))
		if base >= to {
			break
		}
		if base+jitter < from {
			continue
		}
		copies := s.Copies(id, loop)
		if base >= from && base+jitter < to && (base >= mid || base+jitter < mid) {
			n += int64(copies)
			if base >= mid {
				late += int64(copies)
			}
			continue
		}
		for cp := 0; cp < copies; cp++ {
			if d := s.Due(offset, s.Shift(id, loop, cp)); d >= from && d < to {
				n++
				if d >= mid {
					late++
				}
			}
		}
	}
	return n, late
}

// mix hashes its inputs (splitmix64 finalizer over a running combination).
func mix(vs ...uint64) uint64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, v := range vs {
		h ^= v + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2)
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// PeakConns estimates the replayed connections open at once at the
// busiest moment of a run: a recorded connection is open from its first
// request to the end of its last exchange. In clone mode each is open k
// times over (copies jitter by a fraction of a second, small against a
// connection's life); in compress mode the recorded intervals shrink k
// times (a lower bound: responses do not get faster). It is what a plan
// needs from --max-conns and from the machine's ephemeral ports.
func (s Schedule) PeakConns(p *Plan) int64 {
	if p.peak1x > 0 {
		// Scaling every interval by the same factor leaves their overlaps
		// as they were: compress mode has the recording's peak.
		if s.Mode == Clone {
			return int64(math.Ceil(float64(p.peak1x) * s.k()))
		}
		return p.peak1x
	}
	type event struct {
		at    time.Duration
		delta int64
	}
	evs := make([]event, 0, 2*len(p.Conns))
	for i := range p.Conns {
		c := &p.Conns[i]
		first, end := c.Reqs[0].Offset, max(c.End, c.Reqs[len(c.Reqs)-1].Offset)
		if s.Mode == Compress {
			first, end = time.Duration(float64(first)/s.Scale), time.Duration(float64(end)/s.Scale)
		}
		evs = append(evs, event{first, 1}, event{end + 1, -1})
	}
	slices.SortFunc(evs, func(a, b event) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return cmp.Compare(a.delta, b.delta) // closes before opens at the same instant
	})
	var open, peak int64
	for _, e := range evs {
		open += e.delta
		peak = max(peak, open)
	}
	if s.Mode == Clone {
		return int64(math.Ceil(float64(peak) * s.k()))
	}
	return peak
}
