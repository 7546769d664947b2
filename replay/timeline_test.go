package replay

import (
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	s := int64(time.Second)
	from := int64(1000) * s
	tests := []struct {
		name    string
		starts  []int64 // offsets from the window start, seconds
		to      int64
		maxIdle time.Duration
		offsets []time.Duration // of each start, in order
		removed time.Duration
		idles   int
	}{
		{"no bound keeps wall-clock time", []int64{0, 1, 100, 101}, 102, 0,
			[]time.Duration{0, time.Second, 100 * time.Second, 101 * time.Second}, 0, 1},
		{"a long gap is shortened to the bound", []int64{0, 1, 100, 101}, 102, 5 * time.Second,
			[]time.Duration{0, time.Second, 6 * time.Second, 7 * time.Second}, 94 * time.Second, 1},
		{"gaps at the bound are kept", []int64{0, 5, 10}, 11, 5 * time.Second,
			[]time.Duration{0, 5 * time.Second, 10 * time.Second}, 0, 0},
		{"the leading stretch is shortened too", []int64{50, 51}, 52, 2 * time.Second,
			[]time.Duration{2 * time.Second, 3 * time.Second}, 48 * time.Second, 1},
		{"and the trailing one", []int64{0, 1}, 40, 2 * time.Second,
			[]time.Duration{0, time.Second}, 37 * time.Second, 1},
		{"starts in any order", []int64{100, 0, 101, 1}, 102, 5 * time.Second,
			[]time.Duration{0, time.Second, 6 * time.Second, 7 * time.Second}, 94 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			starts := make([]int64, len(tt.starts))
			for i, x := range tt.starts {
				starts[i] = from + x*s
			}
			tl := newTimeline(from, from+tt.to*s, starts, tt.maxIdle)
			for i, want := range tt.offsets {
				if got := tl.offset(starts[i]); got != want {
					t.Errorf("start %d: offset %v, want %v", i, got, want)
				}
			}
			if got := tl.removedTotal(); got != tt.removed {
				t.Errorf("removed %v, want %v", got, tt.removed)
			}
			if len(tl.idles) != tt.idles {
				t.Errorf("idles %+v, want %d", tl.idles, tt.idles)
			}
		})
	}
}

func TestIdleAt(t *testing.T) {
	p := &Plan{Length: 30 * time.Second, Idles: []Idle{{At: 10 * time.Second, Recorded: 48 * time.Hour, Kept: 15 * time.Second}}}
	clone := NewSchedule(Clone, 2, 1, p.Length, 90*time.Second)
	for _, tt := range []struct {
		at    time.Duration
		until time.Duration
		ok    bool
	}{
		{5 * time.Second, 0, false},
		{12 * time.Second, 25 * time.Second, true},
		{42 * time.Second, 55 * time.Second, true}, // the second pass
		{26 * time.Second, 0, false},
	} {
		until, rec, ok := clone.IdleAt(p, tt.at)
		if ok != tt.ok || until != tt.until || (ok && rec != 48*time.Hour) {
			t.Errorf("at %v: until %v (recorded %v) %v, want %v %v", tt.at, until, rec, ok, tt.until, tt.ok)
		}
	}
	compress := NewSchedule(Compress, 5, 1, p.Length, 0)
	if until, _, ok := compress.IdleAt(p, 3*time.Second); !ok || until != 5*time.Second {
		t.Errorf("compress 5x at 3s: until %v %v, want 5s", until, ok)
	}
}

// TestVConnIterBounded checks the iterator holds only the copies within
// the jitter bound of the next nominal start, not a pass's worth: the plan
// of a run at a high multiple is never materialised.
func TestVConnIterBounded(t *testing.T) {
	p := &Plan{Length: 60 * time.Second}
	for i := 0; i < 2000; i++ {
		p.Conns = append(p.Conns, Conn{ID: uint64(i), Reqs: []Req{{Offset: time.Duration(i) * 30 * time.Millisecond}}})
	}
	s := NewSchedule(Clone, 100, 1, p.Length, 0)
	it := s.iter(p)
	n, most := 0, 0
	var last time.Duration
	for vc, ok := it.Next(); ok; vc, ok = it.Next() {
		if vc.First < last {
			t.Fatalf("out of order: %v after %v", vc.First, last)
		}
		last = vc.First
		n++
		most = max(most, it.heap.Len())
	}
	if n != 2000*100 {
		t.Fatalf("%d replayed connections, want %d", n, 2000*100)
	}
	// 250 ms of jitter holds about 9 recorded connections' 100 copies.
	if most > 1500 {
		t.Fatalf("the iterator held %d connections at once", most)
	}
}

func TestPeakConns(t *testing.T) {
	// Three connections: two overlap for a second, one alone later.
	p := &Plan{Length: 10 * time.Second, Conns: []Conn{
		{ID: 1, Reqs: []Req{{Offset: 0}}, End: 2 * time.Second},
		{ID: 2, Reqs: []Req{{Offset: time.Second}}, End: 3 * time.Second},
		{ID: 3, Reqs: []Req{{Offset: 5 * time.Second}}, End: 6 * time.Second},
	}}
	if got := NewSchedule(Clone, 1, 1, p.Length, 0).PeakConns(p); got != 2 {
		t.Errorf("1x: %d, want 2", got)
	}
	if got := NewSchedule(Clone, 2.5, 1, p.Length, 0).PeakConns(p); got != 5 {
		t.Errorf("2.5x clone: %d, want 5", got)
	}
	if got := NewSchedule(Compress, 4, 1, p.Length, 0).PeakConns(p); got != 2 {
		t.Errorf("4x compress: %d, want 2", got)
	}
}

func TestParseShardStrict(t *testing.T) {
	for _, bad := range []string{"1/2/3", "2/2", "-1/2", "1/0", "a/2", "1", "1/2x", ""} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if sh, err := ParseShard("0/4"); err != nil || sh != (Shard{0, 4}) {
		t.Errorf("0/4: %+v %v", sh, err)
	}
}

func TestParsePortRange(t *testing.T) {
	if got := parsePortRange("32768\t60999\n"); got != 28232 {
		t.Errorf("got %d", got)
	}
	if got := parsePortRange("garbage"); got != 0 {
		t.Errorf("got %d", got)
	}
}
