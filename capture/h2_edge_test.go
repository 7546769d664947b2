package capture

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/herd-replay/herd/tape"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conv builds the two byte streams of an HTTP/2 connection with x/net's
// framer and HPACK encoder: the client's (preface first) and the server's.
type h2conv struct {
	cli, srv   bytes.Buffer
	cf, sf     *http2.Framer
	cblk, sblk bytes.Buffer
	cenc, senc *hpack.Encoder
}

func newH2Conv(preface bool) *h2conv {
	c := &h2conv{}
	if preface {
		c.cli.WriteString(http2.ClientPreface)
	}
	c.cf, c.sf = http2.NewFramer(&c.cli, nil), http2.NewFramer(&c.srv, nil)
	c.cenc, c.senc = hpack.NewEncoder(&c.cblk), hpack.NewEncoder(&c.sblk)
	c.cf.WriteSettings()
	c.sf.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	c.cf.WriteSettingsAck()
	c.sf.WriteSettingsAck()
	return c
}

func (c *h2conv) req(id uint32, method, path string, end bool, extra ...string) {
	c.cblk.Reset()
	fs := append([]string{":method", method, ":scheme", "http", ":authority", "app.test", ":path", path}, extra...)
	for i := 0; i+1 < len(fs); i += 2 {
		c.cenc.WriteField(hpack.HeaderField{Name: fs[i], Value: fs[i+1]})
	}
	c.cf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.cblk.Bytes(), EndHeaders: true, EndStream: end})
}

func (c *h2conv) resp(id uint32, status string, end bool, fields ...string) {
	c.sblk.Reset()
	if status != "" {
		c.senc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	}
	for i := 0; i+1 < len(fields); i += 2 {
		c.senc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	c.sf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.sblk.Bytes(), EndHeaders: true, EndStream: end})
}

// feedH2 feeds the client's bytes, then the server's, to a test
// connection in segments of at most seg bytes, and ends it.
func feedH2(t *testing.T, opts Options, cli, srv []byte, seg int) ([]tape.Exchange, Stats) {
	t.Helper()
	var sink memSink
	c := testConn(t, opts, &sink)
	ts := t0.UnixNano()
	for i, b := range [][]byte{cli, srv} {
		for len(b) > 0 {
			n := min(seg, len(b))
			ts += int64(time.Millisecond)
			c.h[i].feed(&segment{data: b[:n], ts: ts, packet: true})
			c.afterData()
			b = b[n:]
		}
	}
	c.ReassemblyComplete(nil)
	if c.eng.err != nil {
		t.Fatal(c.eng.err)
	}
	if c.eng.mem != 0 {
		t.Errorf("%d bytes still accounted after the connection ended", c.eng.mem)
	}
	return sink.ex, c.eng.stats
}

func TestH2Streams(t *testing.T) {
	c := newH2Conv(true)
	c.req(1, "GET", "/a", true)
	c.req(3, "POST", "/b", false, "content-type", "text/plain")
	c.cf.WriteData(3, false, []byte("hel"))
	c.cf.WriteDataPadded(3, false, []byte("lo"), []byte{0, 0, 0})
	c.cblk.Reset()
	c.cenc.WriteField(hpack.HeaderField{Name: "x-checksum", Value: "42"})
	c.cf.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.cblk.Bytes(), EndHeaders: true, EndStream: true})
	c.resp(3, "100", false)
	c.resp(3, "201", false, "content-type", "text/plain")
	c.sf.WriteData(3, true, []byte("created"))
	c.resp(1, "200", false)
	c.sf.WriteData(1, false, []byte("ok"))
	c.resp(1, "", true, "grpc-status", "0")
	for _, seg := range []int{1, 7, 1500} {
		ex, st := feedH2(t, Options{}, c.cli.Bytes(), c.srv.Bytes(), seg)
		wantCount(t, ex, 2)
		a, b := ex[0], ex[1]
		if b.Target == "/a" {
			a, b = b, a
		}
		if a.Stream != 1 || a.Status != 200 || a.RespBodyLen != 2 || a.Seq != 0 {
			t.Errorf("seg %d: /a stream %d status %d body %d seq %d", seg, a.Stream, a.Status, a.RespBodyLen, a.Seq)
		}
		if v, _ := a.Trailer("grpc-status"); v != "0" {
			t.Errorf("seg %d: /a trailers %v", seg, a.RespTrailer)
		}
		if b.Method != "POST" || string(b.ReqBody) != "hello" || b.Status != 201 || b.RespBodyHash != crc([]byte("created")) || b.Seq != 1 {
			t.Errorf("seg %d: /b %s body %q status %d seq %d", seg, b.Method, b.ReqBody, b.Status, b.Seq)
		}
		if len(b.ReqTrailer) != 1 || b.ReqTrailer[0] != (tape.Field{Name: "x-checksum", Value: "42"}) {
			t.Errorf("seg %d: /b request trailers %v", seg, b.ReqTrailer)
		}
		if st.InterimResponses != 1 || st.Responses != 2 || st.H2Connections != 1 {
			t.Errorf("seg %d: interim %d responses %d h2 %d", seg, st.InterimResponses, st.Responses, st.H2Connections)
		}
	}
}

func TestH2Faults(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		c := newH2Conv(true)
		c.req(1, "GET", "/reset-response", true)
		c.req(3, "POST", "/reset-request", false)
		c.cf.WriteData(3, false, []byte("part"))
		c.cf.WriteRSTStream(3, http2.ErrCodeCancel)
		c.req(5, "GET", "/refused", true)
		c.resp(1, "200", false)
		c.sf.WriteData(1, false, []byte("par"))
		c.sf.WriteRSTStream(1, http2.ErrCodeInternal)
		c.sf.WriteRSTStream(5, http2.ErrCodeRefusedStream)
		ex, st := feedH2(t, Options{}, c.cli.Bytes(), c.srv.Bytes(), 1500)
		wantCount(t, ex, 2)
		if st.IncompleteReset != 1 || st.RequestReset != 1 || st.NoResponse != 1 {
			t.Errorf("incomplete_reset %d, request_reset %d, no response %d", st.IncompleteReset, st.RequestReset, st.NoResponse)
		}
	})
	t.Run("push", func(t *testing.T) {
		c := newH2Conv(true)
		c.req(1, "GET", "/page", true)
		c.sblk.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "app.test"}, {":path", "/style.css"}} {
			c.senc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		c.sf.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: c.sblk.Bytes(), EndHeaders: true})
		c.resp(1, "200", true)
		c.resp(2, "200", false)
		c.sf.WriteData(2, true, []byte("body{}"))
		ex, st := feedH2(t, Options{}, c.cli.Bytes(), c.srv.Bytes(), 1500)
		wantCount(t, ex, 1)
		if st.PushedStreams != 1 || st.OrphanResponses != 0 || ex[0].Target != "/page" {
			t.Errorf("pushed %d orphans %d", st.PushedStreams, st.OrphanResponses)
		}
	})
	t.Run("mid-stream", func(t *testing.T) {
		// No preface: the capture began after it; HPACK state is unknown.
		c := newH2Conv(false)
		c.req(1, "GET", "/a", true)
		c.resp(1, "200", true)
		ex, st := feedH2(t, Options{}, c.cli.Bytes(), c.srv.Bytes(), 1500)
		wantCount(t, ex, 0)
		if st.NonHTTPConnections != 1 || st.H2Connections != 0 {
			t.Errorf("non-HTTP %d, h2 %d", st.NonHTTPConnections, st.H2Connections)
		}
	})
	t.Run("bad frame", func(t *testing.T) {
		c := newH2Conv(true)
		c.req(1, "GET", "/a", true)
		c.cli.Write([]byte{0, 0, 4, 0x9, 0, 0, 0, 0, 1, 1, 2, 3, 4}) // CONTINUATION outside a block
		c.req(3, "GET", "/b", true)
		c.resp(1, "200", true)
		c.resp(3, "200", true)
		ex, st := feedH2(t, Options{}, c.cli.Bytes(), c.srv.Bytes(), 1500)
		// /a was whole when the client's framing broke: it is written,
		// without a response; /b was never seen; both answers are orphans.
		wantCount(t, ex, 1)
		if st.H2SyncLost != 1 || st.NoResponse != 1 || st.OrphanResponses != 2 {
			t.Errorf("sync lost %d, no response %d, orphans %d", st.H2SyncLost, st.NoResponse, st.OrphanResponses)
		}
	})
	t.Run("memory flush", func(t *testing.T) {
		// Three request bodies stored at once exceed the connection's
		// bound (the body limit plus a head): all three are flushed, and
		// decoding goes on with the next stream.
		c := newH2Conv(true)
		for id := uint32(1); id <= 5; id += 2 {
			c.req(id, "POST", "/big", false)
		}
		for i := 0; i < 13; i++ {
			for id := uint32(1); id <= 5; id += 2 {
				c.cf.WriteData(id, false, bytes.Repeat([]byte{'b'}, 16000))
			}
		}
		for id := uint32(1); id <= 5; id += 2 {
			c.cf.WriteData(id, true, nil)
		}
		c.req(7, "GET", "/after", true)
		for id := uint32(1); id <= 7; id += 2 {
			c.resp(id, "200", true)
		}
		ex, st := feedH2(t, Options{MaxBody: 200000, MaxConnBuffered: 1 << 16}, c.cli.Bytes(), c.srv.Bytes(), 1500)
		wantCount(t, ex, 1)
		if st.MemoryFlushes != 1 || st.RequestFlushed != 3 || st.OrphanResponses != 3 || ex[0].Target != "/after" || ex[0].Status != 200 {
			t.Errorf("flushes %d, request_memory_flush %d, orphans %d, exchange %s %d", st.MemoryFlushes, st.RequestFlushed, st.OrphanResponses, ex[0].Target, ex[0].Status)
		}
	})
}

// TestH2Gaps cuts segments out of the server's stream: inside a DATA
// payload the framing stays in step; inside a header block it is lost.
func TestH2Gaps(t *testing.T) {
	c := newH2Conv(true)
	c.req(1, "GET", "/gap-in-body", true)
	c.req(3, "GET", "/after", true)
	cli := bytes.Clone(c.cli.Bytes())
	c.srv.Reset()
	c.resp(1, "200", false)
	head := c.srv.Len()
	c.sf.WriteData(1, true, bytes.Repeat([]byte{'d'}, 1000))
	c.resp(3, "200", true)
	srv := bytes.Clone(c.srv.Bytes())

	run := func(cut, n int) Stats {
		var sink memSink
		conn := testConn(t, Options{}, &sink)
		ts := t0.UnixNano()
		conn.h[0].feed(&segment{data: cli, ts: ts, packet: true})
		conn.h[1].feed(&segment{data: srv[:cut], ts: ts + 1, packet: true})
		conn.h[1].gap(int64(n), ts+2)
		conn.h[1].feed(&segment{data: srv[cut+n:], ts: ts + 3, packet: true})
		conn.ReassemblyComplete(nil)
		if len(sink.ex) != 2 {
			t.Fatalf("cut %d+%d: %d exchanges", cut, n, len(sink.ex))
		}
		return conn.eng.stats
	}
	st := run(head+9+100, 300) // inside the DATA payload
	if st.IncompleteGap != 1 || st.Responses != 1 || st.H2SyncLost != 0 {
		t.Errorf("gap in a body: incomplete_gap %d, responses %d, sync lost %d", st.IncompleteGap, st.Responses, st.H2SyncLost)
	}
	st = run(2, 5) // inside the first HEADERS frame
	if st.H2SyncLost != 1 || st.Responses != 0 {
		t.Errorf("gap in a header block: sync lost %d, responses %d", st.H2SyncLost, st.Responses)
	}
}

// FuzzH2Stream feeds arbitrary bytes to the parser of one connection
// whose client starts with the HTTP/2 preface (segments framed as in
// FuzzHTTPStream): no panic, every exchange one a tape can hold, nothing
// left accounted once the connection ends.
func FuzzH2Stream(f *testing.F) {
	c := newH2Conv(true)
	c.req(1, "GET", "/a?x=1", true)
	c.req(3, "POST", "/b", false, "content-type", "application/grpc")
	c.cf.WriteDataPadded(3, false, []byte("hello"), []byte{0, 0})
	c.cblk.Reset()
	c.cenc.WriteField(hpack.HeaderField{Name: "x-sum", Value: "1"})
	c.cf.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.cblk.Bytes(), EndHeaders: true, EndStream: true})
	c.req(5, "GET", "/reset", true)
	c.resp(1, "200", false)
	c.sf.WriteData(1, true, []byte("ok"))
	c.resp(3, "200", false, "content-type", "application/grpc")
	c.sf.WriteData(3, false, []byte("hello"))
	c.resp(3, "", true, "grpc-status", "0")
	c.sf.WriteRSTStream(5, http2.ErrCodeRefusedStream)
	c.sf.WriteGoAway(5, http2.ErrCodeNo, []byte("bye"))
	f.Add(fuzzFrame(8, c.cli.Bytes()), fuzzFrame(9, c.srv.Bytes()))
	up := []byte("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
	f.Add(fuzzFrame(8, append(up, c.cli.Bytes()...)), fuzzFrame(9, append([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"), c.srv.Bytes()...)))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		w := validatingSink(t)
		defer w.Close()
		c := testConn(t, Options{MaxBody: 16, MaxConnBuffered: 1 << 16, MaxPending: 4}, w)
		e := c.eng
		ts := t0.UnixNano()
		feedFrames(c, a, &ts)
		feedFrames(c, b, &ts)
		c.ReassemblyComplete(nil)
		if e.err != nil {
			t.Fatalf("exchange rejected by the tape: %v", e.err)
		}
		if e.mem != 0 {
			t.Fatalf("%d bytes still accounted after the connection ended", e.mem)
		}
	})
}

// BenchmarkH2Stream decodes a connection of 1000 streams (GETs with
// browser-like headers, 2 KiB responses) fed in 1448-byte segments.
func BenchmarkH2Stream(b *testing.B) {
	c := newH2Conv(true)
	for i := uint32(0); i < 1000; i++ {
		id := 2*i + 1
		c.req(id, "GET", fmt.Sprintf("/api/items/%d?page=2", i), true, "user-agent", "Mozilla/5.0 (X11; Linux x86_64)", "accept", "application/json", "accept-encoding", "gzip, br")
		c.resp(id, "200", false, "content-type", "application/json", "cache-control", "no-store")
		c.sf.WriteData(id, true, bytes.Repeat([]byte{'j'}, 2048))
	}
	cli, srv := c.cli.Bytes(), c.srv.Bytes()
	b.SetBytes(int64(len(cli) + len(srv)))
	b.ReportAllocs()
	for b.Loop() {
		conn := testConn(b, Options{}, discardSink{})
		ts := t0.UnixNano()
		for i, data := range [][]byte{cli, srv} {
			for len(data) > 0 {
				n := min(1448, len(data))
				conn.h[i].feed(&segment{data: data[:n], ts: ts, packet: true})
				data = data[n:]
			}
		}
		conn.ReassemblyComplete(nil)
		if conn.eng.stats.Exchanges != 1000 {
			b.Fatalf("%d exchanges", conn.eng.stats.Exchanges)
		}
	}
}

type discardSink struct{}

func (discardSink) Write(*tape.Exchange) error { return nil }
