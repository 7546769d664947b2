package replay

import (
	"testing"
	"time"
)

func TestScheduleDue(t *testing.T) {
	const W = 60 * time.Second
	cases := []struct {
		name   string
		s      Schedule
		conn   uint64
		loop   int
		copy   int
		offset time.Duration
		want   time.Duration
	}{
		{"clone copy 0 keeps the recorded time", NewSchedule(Clone, 3, 1, W, 0), 9, 0, 0, 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"clone second pass starts a window later", NewSchedule(Clone, 1, 1, W, 3*W), 9, 2, 0, time.Second, 2*W + time.Second},
		{"compress divides offsets", NewSchedule(Compress, 4, 1, W, 0), 9, 0, 0, 40 * time.Second, 10 * time.Second},
		{"compress loops every window/k", NewSchedule(Compress, 4, 1, W, 2*W), 9, 3, 0, 4 * time.Second, 3*W/4 + time.Second},
		{"fractional compress", NewSchedule(Compress, 2.5, 1, W, 0), 9, 0, 0, 5 * time.Second, 2 * time.Second},
	}
	for _, c := range cases {
		got := c.s.Due(c.offset, c.s.Shift(c.conn, c.loop, c.copy))
		if got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestScheduleDuration(t *testing.T) {
	const W = 10 * time.Second
	cases := []struct {
		s      Schedule
		dur    time.Duration
		passes int
	}{
		{NewSchedule(Clone, 1, 1, W, 0), W, 1},
		{NewSchedule(Clone, 2, 1, W, 0), W + 250*time.Millisecond, 1}, // room for the copies' jitter
		{NewSchedule(Compress, 4, 1, W, 0), W / 4, 1},
		{NewSchedule(Clone, 2, 1, W, 25*time.Second), 25 * time.Second, 3},
		{NewSchedule(Compress, 2, 1, W, 12*time.Second), 12 * time.Second, 3},
	}
	for i, c := range cases {
		if c.s.Duration != c.dur || c.s.Passes != c.passes {
			t.Errorf("case %d: duration %v passes %d, want %v and %d", i, c.s.Duration, c.s.Passes, c.dur, c.passes)
		}
	}
}

func TestCopiesAndJitter(t *testing.T) {
	const W = 60 * time.Second
	s := NewSchedule(Clone, 2.3, 42, W, 0)
	extra := 0
	const n = 20000
	for conn := uint64(0); conn < n; conn++ {
		c := s.Copies(conn, 0)
		if c != 2 && c != 3 {
			t.Fatalf("conn %d: %d copies at 2.3x", conn, c)
		}
		if c == 3 {
			extra++
		}
		if c != s.Copies(conn, 0) {
			t.Fatal("copies not reproducible")
		}
		if sh := s.Shift(conn, 0, 0); sh != 0 {
			t.Fatalf("copy 0 shifted by %v", sh)
		}
		for cp := 1; cp < c; cp++ {
			if sh := s.Shift(conn, 0, cp); sh < 0 || sh >= 250*time.Millisecond {
				t.Fatalf("copy %d jitter %v outside [0, 250ms)", cp, sh)
			}
		}
	}
	if frac := float64(extra) / n; frac < 0.28 || frac > 0.32 {
		t.Errorf("third copy taken for %.3f of connections, want about 0.3", frac)
	}
	if other := NewSchedule(Clone, 2.3, 43, W, 0); other.Copies(1, 0) == s.Copies(1, 0) && other.Shift(1, 0, 1) == s.Shift(1, 0, 1) {
		t.Error("the seed changes nothing")
	}
	if c := NewSchedule(Compress, 2.3, 1, W, 0).Copies(5, 0); c != 1 {
		t.Errorf("compress mode makes %d copies", c)
	}
}

// TestVConnOrder checks the lazy iterator yields every replayed connection
// once, by first due time, across passes whose jitter overlaps.
func TestVConnOrder(t *testing.T) {
	p := &Plan{Length: 2 * time.Second}
	for i := 0; i < 50; i++ {
		p.Conns = append(p.Conns, Conn{ID: uint64(i), Reqs: []Req{{Offset: time.Duration(i) * 39 * time.Millisecond}}})
	}
	s := NewSchedule(Clone, 3.5, 9, p.Length, 7*time.Second)
	var last time.Duration
	n := 0
	it := s.iter(p)
	for vc, ok := it.Next(); ok; vc, ok = it.Next() {
		if vc.First < last {
			t.Fatalf("out of order: %v after %v", vc.First, last)
		}
		if vc.First >= s.Duration {
			t.Fatalf("vconn due at %v after the end %v", vc.First, s.Duration)
		}
		last = vc.First
		n++
	}
	if want, _ := s.CountDue(p, 0); int64(n) != want {
		t.Fatalf("%d vconns, %d requests due", n, want)
	}
	// Each connection here has one request, so the measured count is the
	// replayed connections due from the settle time on.
	settle := s.Duration / 3
	late := int64(0)
	it = s.iter(p)
	for vc, ok := it.Next(); ok; vc, ok = it.Next() {
		if vc.First >= settle {
			late++
		}
	}
	if all, measured := s.CountDue(p, settle); all != int64(n) || measured != late || late == 0 || late == all {
		t.Fatalf("CountDue: all %d measured %d; want %d and %d", all, measured, n, late)
	}
	if n < 4*50*3 {
		t.Fatalf("only %d vconns over 3.5 passes at 3.5x", n)
	}
}

func TestParseWindow(t *testing.T) {
	cases := []struct {
		in   string
		kind string
		ok   bool
	}{
		{"all", "all", true},
		{"", "all", true},
		{"peak:60s", "peak", true},
		{"peak:1m", "peak", true},
		{"peak:1.5s", "", false},
		{"peak:0s", "", false},
		{"5m-6m", "range", true},
		{"300-360", "range", true},
		{"2026-11-16T11:55:00Z-2026-11-16T11:56:00Z", "range", true},
		{"6m-5m", "", false},
		{"yesterday", "", false},
	}
	for _, c := range cases {
		w, err := ParseWindow(c.in)
		if (err == nil) != c.ok || (c.ok && w.Kind != c.kind) {
			t.Errorf("ParseWindow(%q) = %+v, %v", c.in, w, err)
		}
	}
	w, _ := ParseWindow("2026-11-16T11:55:00Z-2026-11-16T11:56:00Z")
	if !w.Abs || time.Duration(w.To-w.From) != time.Minute {
		t.Errorf("absolute range: %+v", w)
	}
}

func TestParseAbort(t *testing.T) {
	r, err := ParseAbort("errors>50%/5s")
	if err != nil || r.Fraction != 0.5 || r.Window != 5*time.Second {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ParseAbort("off"); err != nil || !r.Off {
		t.Fatalf("off: %+v %v", r, err)
	}
	for _, bad := range []string{"errors>150%/5s", "errors>50%", "p99>1s/5s", "errors>50%/1ms"} {
		if _, err := ParseAbort(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func BenchmarkScheduleIter(b *testing.B) {
	p := &Plan{Length: 60 * time.Second}
	for i := 0; i < 2000; i++ {
		reqs := make([]Req, 8)
		for j := range reqs {
			reqs[j].Offset = time.Duration(i)*29*time.Millisecond + time.Duration(j)*time.Second
		}
		p.Conns = append(p.Conns, Conn{ID: uint64(i), Reqs: reqs})
	}
	s := NewSchedule(Clone, 4.5, 1, p.Length, 5*time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		it := s.iter(p)
		for _, ok := it.Next(); ok; _, ok = it.Next() {
		}
	}
}

// TestCountDueAgrees counts requests due per request and copy (countDue,
// one pass over the plan's requests) and by walking every replayed
// connection's requests, over passes, settle times and stop times.
func TestCountDueAgrees(t *testing.T) {
	p := &Plan{Length: 3 * time.Second}
	for i := 0; i < 120; i++ {
		reqs := make([]Req, 1+i%9)
		for j := range reqs {
			reqs[j].Offset = time.Duration(i)*23*time.Millisecond + time.Duration(j)*170*time.Millisecond
		}
		p.Conns = append(p.Conns, Conn{ID: uint64(i*7 + 1), Reqs: reqs})
	}
	for _, s := range []Schedule{
		NewSchedule(Clone, 1, 1, p.Length, 0),
		NewSchedule(Clone, 2.7, 5, p.Length, 0),
		NewSchedule(Clone, 3.3, 9, p.Length, 10*time.Second),
		NewSchedule(Compress, 4, 1, p.Length, 0),
		NewSchedule(Compress, 2.5, 1, p.Length, 7*time.Second),
	} {
		for _, w := range [][2]time.Duration{{0, s.Duration}, {s.Duration / 3, s.Duration}, {s.Duration / 5, s.Duration / 2}, {0, 1}} {
			var want int64
			it := s.iter(p)
			for vc, ok := it.Next(); ok; vc, ok = it.Next() {
				for _, r := range p.Conns[vc.Conn].Reqs {
					if d := s.Due(r.Offset, vc.Shift); d >= w[0] && d < w[1] && d < s.Duration {
						want++
					}
				}
			}
			if got := s.countDueIn(p, w[0], w[1]); got != want {
				t.Errorf("%v %gx over %v: %d due in [%v, %v), walking the connections finds %d", s.Mode, s.Scale, s.Duration, got, w[0], w[1], want)
			}
		}
	}
}

// TestConnPassKeepsForLateCopies: a copy that starts after another has
// taken (and finished) every request still gets them all; once every copy
// has started, what all have taken is dropped.
func TestConnPassKeepsForLateCopies(t *testing.T) {
	cp := newConnPass(0, 0, 300, 2)
	a := cp.attach()
	for i := 0; i < 300; i++ {
		cp.add(&Req{Offset: time.Duration(i)})
		if _, _, ok, _ := cp.take(a); !ok {
			t.Fatalf("request %d not there for the first copy", i)
		}
	}
	cp.closed = true
	cp.detach(a)
	if len(cp.reqs) != 300 {
		t.Fatalf("kept %d requests for a copy yet to start, want 300", len(cp.reqs))
	}
	b := cp.attach()
	for i := 0; i < 300; i++ {
		r, idx, ok, _ := cp.take(b)
		if !ok || idx != int32(i) || r.Offset != time.Duration(i) {
			t.Fatalf("the late copy's request %d: %v %d %v", i, ok, idx, r)
		}
		if i == 150 {
			cp.trim()
			if cp.base != 151 {
				t.Fatalf("after both copies took 151 requests, the pass keeps from %d", cp.base)
			}
		}
	}
	if _, _, ok, done := cp.take(b); ok || !done {
		t.Fatalf("after the last request: ok %v done %v", ok, done)
	}
}
