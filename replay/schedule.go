package replay

import (
	"fmt"
	"math"
	"sort"
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

// loopVConns lists the replayed connections of one pass, by first due
// time.
func (s Schedule) loopVConns(p *Plan, loop int) []VConn {
	var out []VConn
	for ci := range p.Conns {
		c := &p.Conns[ci]
		for cp := 0; cp < s.Copies(c.ID, loop); cp++ {
			shift := s.Shift(c.ID, loop, cp)
			if first := s.Due(c.Reqs[0].Offset, shift); first < s.Duration {
				out = append(out, VConn{Conn: int32(ci), Loop: int32(loop), Copy: int32(cp), Shift: shift, First: first})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].First < out[j].First })
	return out
}

// vconnIter yields the replayed connections of a whole run by first due
// time without listing them all: a pass never starts before its nominal
// start, and its jitter is under a pass, so only two passes are ever held.
type vconnIter struct {
	s    Schedule
	p    *Plan
	next int // next pass to load
	buf  []VConn
}

func (s Schedule) iter(p *Plan) *vconnIter { return &vconnIter{s: s, p: p} }

func (it *vconnIter) Next() (VConn, bool) {
	loops := it.s.Passes
	for it.next < loops && (len(it.buf) == 0 || it.buf[0].First >= it.s.Shift(0, it.next, 0)) {
		it.buf = append(it.buf, it.s.loopVConns(it.p, it.next)...)
		sort.SliceStable(it.buf, func(i, j int) bool { return it.buf[i].First < it.buf[j].First })
		it.next++
	}
	if len(it.buf) == 0 {
		return VConn{}, false
	}
	vc := it.buf[0]
	it.buf = it.buf[1:]
	return vc, true
}

// CountDue counts the requests of the run: all of them, and those due at
// or after settle (the measured period).
func (s Schedule) CountDue(p *Plan, settle time.Duration) (all, measured int64) {
	it := s.iter(p)
	for vc, ok := it.Next(); ok; vc, ok = it.Next() {
		for _, r := range p.Conns[vc.Conn].Reqs {
			if d := s.Due(r.Offset, vc.Shift); d < s.Duration {
				all++
				if d >= settle {
					measured++
				}
			}
		}
	}
	return all, measured
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
