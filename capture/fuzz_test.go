package capture

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/tape"
)

// validatingSink encodes every exchange as the tape writer would, so an
// exchange the tape cannot hold fails the fuzz test.
func validatingSink(t *testing.T) *tape.Writer {
	w, err := tape.NewWriter(io.Discard, tape.Meta{}, tape.WriterOptions{FlushInterval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// FuzzReadCapture feeds arbitrary bytes as a capture file: whatever they
// are, reading and capturing them must not panic, and every exchange
// written must be one a tape can hold.
func FuzzReadCapture(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "edge", "*.pcap"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 8<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewReader("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		defer src.Close()
		w := validatingSink(t)
		defer w.Close()
		// A corrupt file is an error to report, not a failure here; an
		// exchange the tape rejects is.
		_, err = Run(context.Background(), src, Options{MaxBody: 64}, w, nil)
		if err != nil && strings.Contains(err.Error(), "write exchange") {
			t.Fatal(err)
		}
	})
}

// FuzzHTTPStream feeds arbitrary bytes to the HTTP parser of one
// connection, split into segments of both directions and gaps as the
// input's control bytes say: no panic, and every exchange valid.
func FuzzHTTPStream(f *testing.F) {
	req := []byte("POST /a?b=c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.0\r\n\r\n")
	resp := []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.0 200 OK\r\n\r\nclose")
	f.Add(fuzzFrame(0, req), fuzzFrame(1, resp))
	f.Add(fuzzFrame(8, []byte("GET /a HTTP/1.1\r\n\r\nG")), fuzzFrame(8, []byte("ET /b HTTP/1.1\r\n\r\n")))
	f.Add(fuzzFrame(0, []byte("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x00")), fuzzFrame(1, []byte("HTTP/1.1 101 Switching\r\n\r\n\x81\x00")))
	f.Add(fuzzFrame(0, []byte("CONNECT h:443 HTTP/1.1\r\n\r\n\x16\x03")), fuzzFrame(5, []byte("HTTP/1.1 407 No\r\nContent-Length: 0\r\n\r\n")))
	f.Add(fuzzFrame(2, []byte("HEAD / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n")), fuzzFrame(1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		w := validatingSink(t)
		defer w.Close()
		c := testConn(t, Options{MaxBody: 16, MaxConnBuffered: 1 << 16, MaxPending: 4}, w)
		e := c.eng
		ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
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

// fuzzFrame encodes one segment for FuzzHTTPStream: a control byte (bit 0:
// direction, bit 1: a gap before it, bit 2: the end of that direction,
// bit 3: a packet boundary; bits 3-7 also size the gap), a length byte,
// then the data.
func fuzzFrame(ctl byte, data []byte) []byte {
	var out []byte
	for len(data) > 0 {
		n := min(len(data), 255)
		out = append(out, ctl, byte(n))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}

func feedFrames(c *conn, in []byte, ts *int64) {
	for len(in) >= 2 {
		ctl, n := in[0], int(in[1])
		in = in[2:]
		n = min(n, len(in))
		h := &c.h[ctl&1]
		*ts += int64(time.Millisecond)
		if ctl&2 != 0 {
			h.gap(int64(ctl>>3)+1, *ts)
		}
		h.feed(&segment{data: in[:n], ts: *ts, packet: ctl&8 != 0})
		in = in[n:]
		if ctl&4 != 0 {
			h.end()
		}
		c.afterData()
	}
}
