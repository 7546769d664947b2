package capture

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// TestSample keeps whole connections, the same ones on every run.
func TestSample(t *testing.T) {
	path := filepath.Join(testenv.SharedPcaps(t), "http-browsing-338req-large.pcap")
	all, _ := captureFile(t, path, Options{})
	perConn := func(ex []tape.Exchange) map[string]int {
		m := make(map[string]int)
		for _, e := range ex {
			m[e.Client.String()+e.Server.String()]++
		}
		return m
	}
	full := perConn(all)
	half, st := captureFile(t, path, Options{SamplePct: 50})
	again, _ := captureFile(t, path, Options{SamplePct: 50})
	if len(half) == 0 || len(half) >= len(all) || st.SampledOut == 0 {
		t.Fatalf("50%% sample kept %d of %d exchanges, %d connections out", len(half), len(all), st.SampledOut)
	}
	if len(again) != len(half) {
		t.Errorf("sampling is not reproducible: %d then %d", len(half), len(again))
	}
	for conn, n := range perConn(half) {
		if full[conn] != n {
			t.Errorf("connection %s: %d exchanges sampled, %d in all: not kept whole", conn, n, full[conn])
		}
	}
	if st.Tape().Discarded["sampled_out_connections"] != st.SampledOut {
		t.Error("sampled-out connections not in the discarded counters")
	}
}

// TestRotator rotates by packet time: the files hold every exchange once,
// and their counters add up to the capture's.
func TestRotator(t *testing.T) {
	path := filepath.Join(testenv.SharedPcaps(t), "http-browsing-338req-large.pcap")
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(t.TempDir(), "rot.tape")
	rot, err := NewRotator(out, tape.Meta{}, tape.WriterOptions{NoSync: true}, Rotation{Every: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Run(t.Context(), src, Options{}, rot, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rot.Close(st.Tape()); err != nil {
		t.Fatal(err)
	}
	files := rot.Files()
	if len(files) < 3 || filepath.Base(files[0]) != "rot-0001.tape" {
		t.Fatalf("files %v", files)
	}
	var exchanges, packets int64
	for _, f := range files {
		r, err := tape.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		s, ok := r.Stats()
		if !ok {
			t.Fatalf("%s has no counters", f)
		}
		exchanges += s.Counters["exchanges"]
		packets += s.Counters["packets"]
		n := 0
		r.All(t.Context(), func(*tape.Exchange) error { n++; return nil })
		if int64(n) != s.Counters["exchanges"] {
			t.Errorf("%s holds %d exchanges, its counters say %d", f, n, s.Counters["exchanges"])
		}
		r.Close()
	}
	if exchanges != 338 || packets != st.Packets {
		t.Errorf("files hold %d exchanges and %d packets, want 338 and %d", exchanges, packets, st.Packets)
	}
}

// TestMemoryBound: a client pipelining large bodies to a server that never
// answers exceeds the per-connection bound; the connection is flushed and
// counted, and its complete requests are still written.
func TestMemoryBound(t *testing.T) {
	var b bytes.Buffer
	w, err := pcapgen.NewWriter(&b, ethernet, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := w.NewConn("10.0.0.1:40100", "10.0.0.2:80", 1, 1)
	c.Handshake()
	for i := range 20 {
		c.Send(true, pcapgen.Request("POST", fmt.Sprintf("/big/%d", i), nil, body(200<<10, 'm')))
	}
	c.Close()
	// Many connections each holding a partial head exceed the total bound.
	for i := range 40 {
		c := w.NewConn(fmt.Sprintf("10.0.1.%d:40000", i+1), "10.0.0.2:80", 1, 1)
		c.Handshake()
		c.Send(true, append([]byte("GET /partial HTTP/1.1\r\nX-Pad: "), body(100<<10, 'h')...))
	}
	src, err := NewReader("mem", bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	st, err := Run(t.Context(), src, Options{MaxConnBuffered: 1, MaxBuffered: 2 << 20}, &sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryFlushes == 0 || st.RequestFlushed == 0 {
		t.Errorf("memory flushes %d, requests cut by them %d; want some of both", st.MemoryFlushes, st.RequestFlushed)
	}
	// Every request started is accounted for: written, or discarded.
	if got := int64(len(sink.ex)) + st.RequestFlushed + st.RequestIncomplete; got != 20+40 {
		t.Errorf("%d written + %d flushed + %d incomplete = %d, want 60", len(sink.ex), st.RequestFlushed, st.RequestIncomplete, got)
	}
	for _, e := range sink.ex {
		if e.ReqBodyLen != 200<<10 || e.Flags != tape.NoResponse {
			t.Errorf("%s: body %d flags %b", e.Target, e.ReqBodyLen, e.Flags)
		}
	}
	if e := st.Tape(); e.Counters["memory_flushes"] == 0 || e.Discarded["request_memory_flush"] == 0 {
		t.Errorf("flushes not in the tape counters: %v %v", e.Counters, e.Discarded)
	}
}
