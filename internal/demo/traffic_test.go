package demo

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSampleTapeIsGenerated keeps the committed sample tape honest: it must
// be exactly what the generator writes (go generate ./internal/demo).
func TestTapesAreGenerated(t *testing.T) {
	for _, c := range []struct {
		preset, committed string
		opts              TrafficOptions
	}{
		{"sample", "../../testdata/sample.tape", SampleTraffic()},
		{"demo", "demo.tape", DemoTraffic()},
	} {
		path := filepath.Join(t.TempDir(), c.preset+".tape")
		if err := WriteTraffic(path, c.opts, c.preset); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(c.committed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the generator's output: run go generate ./internal/demo", c.committed)
		}
	}
	if !bytes.Equal(Tape(), mustRead(t, "demo.tape")) {
		t.Fatal("the embedded tape is not demo.tape")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrafficShape(t *testing.T) {
	o := SampleTraffic()
	exs := Traffic(o)
	if len(exs) < 5000 {
		t.Fatalf("only %d exchanges", len(exs))
	}
	type conn struct {
		next    uint32
		lastEnd int64
	}
	conns := make(map[uint64]*conn)
	perMinute := make([]int, int(o.Duration/time.Minute)+1)
	// Exchanges are in completion order; per connection they must be in
	// sequence, each request sent after the previous response ended.
	for _, e := range exs {
		c := conns[e.ConnID]
		if c == nil {
			c = &conn{}
			conns[e.ConnID] = c
		}
		if e.Seq != c.next {
			t.Fatalf("conn %d: seq %d, want %d", e.ConnID, e.Seq, c.next)
		}
		if e.Seq > 0 && e.ReqStart <= c.lastEnd {
			t.Fatalf("conn %d seq %d: request before the previous response ended", e.ConnID, e.Seq)
		}
		if !(e.ReqStart < e.ReqEnd && e.ReqEnd < e.RespStart && e.RespStart < e.RespEnd) {
			t.Fatalf("conn %d seq %d: timestamps out of order", e.ConnID, e.Seq)
		}
		c.next++
		c.lastEnd = e.RespEnd
		perMinute[time.Duration(e.ReqStart-o.Start.UnixNano())/time.Minute]++
	}
	if len(conns) < len(exs)/20 || len(conns) > len(exs)/2 {
		t.Errorf("%d connections for %d exchanges: sessions should carry several requests", len(conns), len(exs))
	}
	// The spike at minute 5 makes minutes 5-6 the busiest.
	spike := perMinute[5]
	for m, n := range perMinute[:4] {
		if n*3/2 > spike {
			t.Errorf("minute %d has %d requests, the spike minute only %d", m, n, spike)
		}
	}
}

func TestRoutesMatchTraffic(t *testing.T) {
	for _, e := range Traffic(SampleTraffic())[:2000] {
		if RouteOf(e.Method, e.Target) == nil {
			t.Fatalf("%s %s matches no demo route", e.Method, e.Target)
		}
	}
}
