package replay

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2Server is an HTTP/2 server written with x/net's framer, for what
// net/http's server does not do on demand: GOAWAY in the middle of a run,
// and a flow-control window that never opens.
type rawH2Server struct {
	ln        net.Listener
	processed atomic.Int64 // streams answered
	refused   atomic.Int64 // streams above the last id of a GOAWAY, never processed
	conns     atomic.Int64
	// goawayAt: on each connection, its n-th stream is the last one: GOAWAY
	// names it and later streams are refused. dropLast: that stream gets
	// no answer, the connection closes instead.
	goawayAt int
	dropLast bool
	window   uint32 // SETTINGS_INITIAL_WINDOW_SIZE
}

func newRawH2Server(t *testing.T, s *rawH2Server) *rawH2Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *rawH2Server) serve(c net.Conn) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: s.window})
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	respond := func(id uint32) {
		// Counted before the answer is written: the client may finish
		// its run as soon as it reads the answer.
		s.processed.Add(1)
		hbuf.Reset()
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true})
		fr.WriteData(id, true, []byte("ok"))
	}
	streams, last := 0, uint32(0)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if last != 0 && f.StreamID > last {
				s.refused.Add(1)
				continue
			}
			streams++
			if streams == s.goawayAt {
				last = f.StreamID
				if s.dropLast {
					fr.WriteGoAway(last, http2.ErrCodeNo, nil)
					drain(c)
					return
				}
				respond(f.StreamID)
				fr.WriteGoAway(last, http2.ErrCodeNo, nil)
				// Refuse what is already on its way, then close.
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				continue
			}
			if f.StreamEnded() {
				respond(f.StreamID)
			}
		case *http2.DataFrame:
			if f.StreamEnded() && (last == 0 || f.StreamID <= last) {
				respond(f.StreamID)
			}
		}
	}
}

// drain reads what the client still sends for a moment, so that closing
// sends a FIN rather than a reset.
func drain(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	io.Copy(io.Discard, c)
}

// TestH2GoAway: a target that sends GOAWAY mid-run gets every request
// exactly once: streams above its last stream id were never processed and
// are sent again on a new connection (counted as retries), the rest are
// answered. When it closes without answering the last stream it accepted,
// that stream is an h2_goaway error, never resent.
func TestH2GoAway(t *testing.T) {
	const n = 24
	dues := make([]time.Duration, n)
	for i := range dues {
		dues[i] = time.Duration(i/4) * 10 * time.Millisecond // bursts of 4
	}
	t.Run("graceful", func(t *testing.T) {
		srv := newRawH2Server(t, &rawH2Server{goawayAt: 5, window: 65535})
		run := runH2(t, &h2Client{addr: srv.ln.Addr().String()}, h2Reqs(n, "/g"), dues, Strict, 5*time.Second)
		retries := 0
		for _, o := range run.outcomes {
			retries += o.retries
		}
		if c := run.classes(); c["ok"] != n {
			t.Errorf("herd: %v, want %d ok", c, n)
		}
		t.Logf("%d streams refused by GOAWAY and resent, %d connections", retries, srv.conns.Load())
		if srv.processed.Load() != n || int64(retries) != srv.refused.Load() || srv.conns.Load() < n/5 {
			t.Errorf("server processed %d (want %d), refused %d (herd resent %d), %d connections",
				srv.processed.Load(), n, srv.refused.Load(), retries, srv.conns.Load())
		}
	})
	t.Run("closed before answering", func(t *testing.T) {
		srv := newRawH2Server(t, &rawH2Server{goawayAt: 3, dropLast: true, window: 65535})
		run := runH2(t, &h2Client{addr: srv.ln.Addr().String()}, h2Reqs(n, "/g"), dues, Strict, 5*time.Second)
		c := run.classes()
		if int64(c["ok"]) != srv.processed.Load() || c["ok"]+c[ClassH2GoAway] != n || c[ClassH2GoAway] != int(srv.conns.Load()) {
			t.Errorf("herd: %v; server processed %d on %d connections", c, srv.processed.Load(), srv.conns.Load())
		}
	})
}

// TestH2FlowStall: a request body the target's window never lets through
// times out as a flow-control stall.
func TestH2FlowStall(t *testing.T) {
	srv := newRawH2Server(t, &rawH2Server{window: 0})
	reqs := h2Reqs(2, "/upload")
	reqs[1].H2.Method, reqs[1].H2.Body = "POST", []byte("body")
	run := runH2(t, &h2Client{addr: srv.ln.Addr().String()}, reqs, []time.Duration{0, 0}, Strict, 300*time.Millisecond)
	if c := run.classes(); c["ok"] != 1 || c[ClassH2FlowStall] != 1 {
		t.Errorf("herd: %v", c)
	}
}
