package replay

// HTTP/2 replay: one HTTP/2 connection per replayed client connection,
// its requests sent as streams at their due times, concurrently as the
// recording had them. Built on x/net's Framer and HPACK rather than
// net/http's HTTP/2 client: that client pools connections per host (no
// mapping of recorded connections), waits for stream slots where nobody
// can see it (no lag to report), and resends requests refused by GOAWAY
// on its own (no count of what reached the target). Here every stream's
// due time, slot wait, send, flow-control stall, reset code and GOAWAY is
// herd's to measure and count.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Error classes of HTTP/2 and gRPC. A stream reset by the target is
// "h2_rst_" and the reset code in lower case: h2_rst_refused_stream,
// h2_rst_internal_error...
const (
	// ClassH2GoAway: the target sent GOAWAY and closed the connection
	// before the stream, which it had accepted, completed.
	ClassH2GoAway = "h2_goaway"
	// ClassH2FlowStall: the request body waited on the target's
	// flow-control window until the timeout.
	ClassH2FlowStall = "h2_flow_stall"
	// ClassH2Protocol: the target broke the HTTP/2 protocol, a connection
	// error.
	ClassH2Protocol = "h2_protocol_error"
	// ClassH2NoALPN: a TLS target did not select h2 in ALPN.
	ClassH2NoALPN = "h2_not_negotiated"
	// ClassGRPC: a non-zero grpc-status where the recording had 0.
	ClassGRPC = "grpc_error"
)

// rstClass is the error class of a stream reset with code.
func rstClass(code http2.ErrCode) string {
	if code > http2.ErrCodeHTTP11Required {
		return fmt.Sprintf("h2_rst_0x%x", uint32(code))
	}
	return "h2_rst_" + strings.ToLower(code.String())
}

// HTTP/2 settings herd asks for, and its receive windows. Response bodies
// are discarded as they arrive, so large windows cost no memory: they
// keep a fast target from waiting on herd.
const (
	h2StreamWindow  = 4 << 20
	h2ConnWindow    = 1 << 30
	h2ReturnAt      = 1 << 20 // received bytes returned by WINDOW_UPDATE in batches of this
	h2MaxHeaderList = 256 << 10
	h2ReadBuffer    = 32 << 10
)

// h2Client opens HTTP/2 connections to the target: over TLS with ALPN h2,
// or cleartext with prior knowledge (tls nil).
type h2Client struct {
	addr   string
	tls    *tls.Config
	dialer net.Dialer
}

// h2Conn is one HTTP/2 connection to the target. One goroutine reads it;
// writers (stream openers, body senders, timers, the reader's own
// acknowledgements) serialise on wmu.
type h2Conn struct {
	nc      net.Conn
	connect int64 // ns from dial to the target's first SETTINGS
	timeout time.Duration

	wmu    sync.Mutex
	bw     *bufio.Writer
	fr     *http2.Framer
	enc    *hpack.Encoder
	hbuf   bytes.Buffer
	nextID uint32

	mu         sync.Mutex
	cond       *sync.Cond // windows opened, streams ended, the connection ended
	streams    map[uint32]*h2Stream
	active     int // streams open, or reserved by a sender that has a slot
	maxStreams uint32
	peerWindow int64 // the target's SETTINGS_INITIAL_WINDOW_SIZE
	window     int64 // connection send window
	maxFrame   int
	goaway     bool
	lastID     uint32
	goawayCode http2.ErrCode
	err        error
	closing    bool
	changed    chan struct{} // a slot freed, GOAWAY, the connection ended
	settings   chan struct{} // closed at the target's first SETTINGS
	settled    bool
	done       chan struct{} // closed when the read loop ends
	release    func()        // frees the connection's slot, once
	recvUnack  int64
	onRetry    func(*h2Stream) // a stream the target never processed (above GOAWAY's last id)
	onFinish   func(*h2Stream)
}

// h2Stream is one request on a connection.
type h2Stream struct {
	id     uint32
	job    *h2Job
	window int64
	timer  *time.Timer

	status    int
	first     int64
	done      int64
	bytes     int64
	grpc      string
	hasGRPC   bool
	retryAft  time.Duration // Retry-After of a 429 or 503, for client emulation
	headers   bool
	recvUnack int64
	stalled   bool
	finished  bool
	class     string
	err       error
}

// h2Hooks are what a connection calls back: release frees its slot (once,
// when it closes), finished reports a stream's end, retry hands back a
// stream the target never processed.
type h2Hooks struct {
	release  func()
	finished func(*h2Stream)
	retry    func(*h2Stream)
}

func (c *h2Client) dial(ctx context.Context, deadline time.Time, timeout time.Duration, hooks h2Hooks) (*h2Conn, string, error) {
	start := nanotime()
	nc, _, class, err := dialTarget(ctx, &c.dialer, c.addr, c.tls, deadline)
	if err != nil {
		return nil, class, err
	}
	if tc, ok := nc.(*tls.Conn); ok {
		if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
			tc.Close()
			return nil, ClassH2NoALPN, fmt.Errorf("the target chose %q in ALPN, not h2", p)
		}
	}
	cn := newH2Conn(nc, timeout)
	cn.onFinish, cn.onRetry = hooks.finished, hooks.retry
	if err := cn.start(deadline); err != nil {
		cn.shutdown()
		<-cn.done
		class := ioClass(err)
		if errors.Is(err, errNoSettings) {
			class = ClassH2Protocol
		}
		return nil, class, err
	}
	cn.connect = nanotime() - start
	cn.mu.Lock()
	cn.release = sync.OnceFunc(hooks.release)
	closed := cn.closing
	cn.mu.Unlock()
	if closed {
		cn.shutdown() // it ended while being set up: free the slot now
	}
	return cn, "", nil
}

var errNoSettings = errors.New("the target sent no HTTP/2 SETTINGS")

func newH2Conn(nc net.Conn, timeout time.Duration) *h2Conn {
	cn := &h2Conn{
		nc:         nc,
		timeout:    timeout,
		bw:         bufio.NewWriterSize(nc, 16<<10),
		nextID:     1,
		streams:    make(map[uint32]*h2Stream),
		maxStreams: 100, // until the target's SETTINGS say otherwise
		peerWindow: 65535,
		window:     65535,
		maxFrame:   16384,
		changed:    make(chan struct{}, 1),
		settings:   make(chan struct{}),
		done:       make(chan struct{}),
		release:    func() {},
	}
	cn.cond = sync.NewCond(&cn.mu)
	cn.fr = http2.NewFramer(cn.bw, bufio.NewReaderSize(nc, h2ReadBuffer))
	cn.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cn.fr.MaxHeaderListSize = h2MaxHeaderList
	cn.fr.SetReuseFrames()
	cn.enc = hpack.NewEncoder(&cn.hbuf)
	return cn
}

// start sends the preface and herd's settings, and waits for the target's
// settings, so that its stream limit holds from the first stream on.
func (cn *h2Conn) start(deadline time.Time) error {
	err := cn.write(func() error {
		if _, err := cn.bw.WriteString(http2.ClientPreface); err != nil {
			return err
		}
		if err := cn.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
		); err != nil {
			return err
		}
		return cn.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	})
	if err != nil {
		close(cn.done)
		return err
	}
	// Only now: the reader acknowledges the target's settings, which
	// must not go out before the preface.
	go cn.readLoop()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-cn.settings:
		return nil
	case <-cn.done:
		cn.mu.Lock()
		defer cn.mu.Unlock()
		if cn.err != nil {
			return cn.err
		}
		return errNoSettings
	case <-t.C:
		return fmt.Errorf("%w before the timeout", errNoSettings)
	}
}

// write runs f, which writes frames, under the write lock, and flushes,
// with a write deadline: a target that stops reading fails the
// connection instead of blocking herd.
func (cn *h2Conn) write(f func() error) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	cn.nc.SetWriteDeadline(time.Now().Add(cn.timeout))
	if err := f(); err != nil {
		return err
	}
	return cn.bw.Flush()
}

// signal wakes the one sender that may wait for a slot.
func (cn *h2Conn) signal() {
	select {
	case cn.changed <- struct{}{}:
	default:
	}
}

// slot waits for a free stream slot until giveUp (replay clock) and
// reserves it. gone: the connection can take no new stream (it ended, or
// the target sent GOAWAY); otherwise false means the wait timed out or
// stop was cancelled.
func (cn *h2Conn) slot(giveUp int64, stop <-chan struct{}) (ok, gone bool) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		cn.mu.Lock()
		switch {
		case cn.err != nil || cn.goaway || cn.closing:
			cn.mu.Unlock()
			return false, true
		case uint32(cn.active) < cn.maxStreams:
			cn.active++
			cn.mu.Unlock()
			return true, false
		}
		cn.mu.Unlock()
		if t == nil {
			wait := time.Duration(giveUp - nanotime())
			if wait <= 0 {
				return false, false
			}
			t = time.NewTimer(wait)
		}
		select {
		case <-cn.changed:
		case <-t.C:
			return false, false
		case <-stop:
			return false, false
		}
	}
}

// unreserve gives back a slot taken by slot and not used.
func (cn *h2Conn) unreserve() {
	cn.mu.Lock()
	cn.active--
	cn.mu.Unlock()
	cn.signal()
	cn.maybeClose()
}

// open sends the request of j as a new stream on a slot reserved by
// slot. Its body, if any, is sent by a goroutine of its own, as the
// target's windows allow.
func (cn *h2Conn) open(j *h2Job) (*h2Stream, error) {
	r := j.r.H2
	st := &h2Stream{job: j}
	endStream := len(r.Body) == 0 && len(r.Trailer) == 0
	err := cn.write(func() error {
		cn.mu.Lock()
		st.id = cn.nextID
		cn.nextID += 2
		st.window = cn.peerWindow
		cn.streams[st.id] = st
		st.timer = time.AfterFunc(j.limit(cn.timeout), func() { cn.expire(st) })
		maxFrame := cn.maxFrame
		cn.mu.Unlock()
		cn.hbuf.Reset()
		for _, f := range [...]hpack.HeaderField{{Name: ":method", Value: r.Method}, {Name: ":scheme", Value: r.Scheme}, {Name: ":authority", Value: r.Authority}, {Name: ":path", Value: r.Path}} {
			cn.enc.WriteField(f)
		}
		for _, f := range r.Header {
			cn.enc.WriteField(f)
		}
		return cn.writeBlock(st.id, cn.hbuf.Bytes(), endStream, maxFrame)
	})
	if err != nil {
		cn.fail(err)
		return st, err
	}
	if !endStream {
		go cn.sendBody(st)
	}
	return st, nil
}

// writeBlock writes a header block as HEADERS and CONTINUATION frames of
// at most maxFrame bytes. Called under wmu.
func (cn *h2Conn) writeBlock(id uint32, block []byte, endStream bool, maxFrame int) error {
	first := block[:min(len(block), maxFrame)]
	rest := block[len(first):]
	if err := cn.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(rest) == 0}); err != nil {
		return err
	}
	for len(rest) > 0 {
		n := min(len(rest), maxFrame)
		if err := cn.fr.WriteContinuation(id, n == len(rest), rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// sendBody sends the request body within the target's flow-control
// windows, then the trailers.
func (cn *h2Conn) sendBody(st *h2Stream) {
	r := st.job.r.H2
	body := r.Body
	for len(body) > 0 {
		cn.mu.Lock()
		for !st.finished && cn.err == nil && (st.window <= 0 || cn.window <= 0) {
			st.stalled = true
			cn.cond.Wait()
		}
		if st.finished || cn.err != nil {
			cn.mu.Unlock()
			return
		}
		st.stalled = false
		n := int(min(int64(len(body)), st.window, cn.window, int64(cn.maxFrame)))
		st.window -= int64(n)
		cn.window -= int64(n)
		cn.mu.Unlock()
		chunk := body[:n]
		body = body[n:]
		end := len(body) == 0 && len(r.Trailer) == 0
		if err := cn.write(func() error { return cn.fr.WriteData(st.id, end, chunk) }); err != nil {
			cn.fail(err)
			return
		}
	}
	if len(r.Trailer) == 0 {
		return
	}
	err := cn.write(func() error {
		cn.hbuf.Reset()
		for _, f := range r.Trailer {
			cn.enc.WriteField(f)
		}
		cn.mu.Lock()
		maxFrame := cn.maxFrame
		cn.mu.Unlock()
		return cn.writeBlock(st.id, cn.hbuf.Bytes(), true, maxFrame)
	})
	if err != nil {
		cn.fail(err)
	}
}

// expire ends a stream at its timeout: it is reset (CANCEL) so the target
// stops working on it.
func (cn *h2Conn) expire(st *h2Stream) {
	cn.mu.Lock()
	if st.finished {
		cn.mu.Unlock()
		return
	}
	class, err := ClassTimeout, fmt.Errorf("no complete response within %v", cn.timeout)
	if ct := st.job.clientTimeout; ct > 0 && ct < cn.timeout {
		// The emulated client stopped waiting, and cancels the stream
		// as gRPC and HTTP/2 clients do at their deadline.
		class, err = ClassClientTimeout, fmt.Errorf("the client gave up after %v without a complete response", ct)
	} else if st.stalled {
		class, err = ClassH2FlowStall, fmt.Errorf("the request body waited %v on the target's flow-control window", cn.timeout)
	}
	cn.mu.Unlock()
	if cn.finish(st, class, err) {
		cn.write(func() error { return cn.fr.WriteRSTStream(st.id, http2.ErrCodeCancel) })
	}
}

// finish ends st with class ("" for a response), once: it reports true
// the first time.
func (cn *h2Conn) finish(st *h2Stream, class string, err error) bool {
	return cn.end(st, func() { st.class, st.err, st.done = class, err, nanotime() }, cn.onFinish)
}

// end takes st off the connection, once: set records how it ended (under
// the connection's lock), then hands it to. It reports whether st was
// still open.
func (cn *h2Conn) end(st *h2Stream, set func(), then func(*h2Stream)) bool {
	cn.mu.Lock()
	if st.finished {
		cn.mu.Unlock()
		return false
	}
	st.finished = true
	if set != nil {
		set()
	}
	delete(cn.streams, st.id)
	cn.active--
	if st.timer != nil {
		st.timer.Stop()
	}
	cn.cond.Broadcast()
	cn.mu.Unlock()
	cn.signal()
	then(st)
	cn.maybeClose()
	return true
}

// maybeClose closes a connection that will carry no more streams once its
// last stream ends.
func (cn *h2Conn) maybeClose() {
	cn.mu.Lock()
	idle := cn.active == 0 && (cn.err != nil || cn.goaway || cn.closing)
	cn.mu.Unlock()
	if idle {
		cn.shutdown()
	}
}

// shutdown closes the connection and frees its slot; the read loop ends.
func (cn *h2Conn) shutdown() {
	cn.mu.Lock()
	cn.closing = true
	rel := cn.release
	cn.release = func() {}
	cn.cond.Broadcast()
	cn.mu.Unlock()
	cn.nc.Close()
	rel()
	cn.signal()
}

// fail ends the connection after err: every open stream fails with the
// class err deserves, except those the target never processed (above
// GOAWAY's last stream id), which are handed back to be sent again.
func (cn *h2Conn) fail(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	class := ioClass(err)
	var ce http2.ConnectionError
	switch {
	case cn.closing:
		class = ClassClosed
	case cn.goaway:
		class = ClassH2GoAway
		err = fmt.Errorf("the target sent GOAWAY (last stream %d, %v) and closed the connection before answering: %w", cn.lastID, cn.goawayCode, err)
	case errors.As(err, &ce):
		class = ClassH2Protocol
	}
	goaway, last := cn.goaway, cn.lastID
	open := make([]*h2Stream, 0, len(cn.streams))
	for _, st := range cn.streams {
		open = append(open, st)
	}
	cn.cond.Broadcast()
	cn.mu.Unlock()
	for _, st := range open {
		if goaway && st.id > last {
			cn.retry(st)
			continue
		}
		cn.finish(st, class, err)
	}
	cn.shutdown()
}

// retry takes st off the connection without a result: the target never
// processed it, and its job is sent again on another connection.
func (cn *h2Conn) retry(st *h2Stream) { cn.end(st, nil, cn.onRetry) }

// readLoop reads the target's frames until the connection ends.
func (cn *h2Conn) readLoop() {
	defer close(cn.done)
	for {
		f, err := cn.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				cn.streamError(se)
				continue
			}
			cn.fail(err)
			return
		}
		if err := cn.frame(f); err != nil {
			cn.fail(err)
			return
		}
	}
}

// streamError ends a stream whose frames broke the protocol.
func (cn *h2Conn) streamError(se http2.StreamError) {
	cn.mu.Lock()
	st := cn.streams[se.StreamID]
	cn.mu.Unlock()
	if st != nil && cn.finish(st, ClassH2Protocol, se) {
		cn.write(func() error { return cn.fr.WriteRSTStream(se.StreamID, se.Code) })
	}
}

func (cn *h2Conn) frame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return cn.data(f)
	case *http2.MetaHeadersFrame:
		cn.headers(f)
	case *http2.RSTStreamFrame:
		cn.mu.Lock()
		st := cn.streams[f.StreamID]
		cn.mu.Unlock()
		if st != nil {
			cn.finish(st, rstClass(f.ErrCode), fmt.Errorf("stream reset by the target: %v", f.ErrCode))
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return cn.settingsFrame(f)
	case *http2.WindowUpdateFrame:
		cn.mu.Lock()
		if f.StreamID == 0 {
			cn.window += int64(f.Increment)
		} else if st := cn.streams[f.StreamID]; st != nil {
			st.window += int64(f.Increment)
		}
		cn.cond.Broadcast()
		cn.mu.Unlock()
	case *http2.PingFrame:
		if !f.IsAck() {
			return cn.write(func() error { return cn.fr.WritePing(true, f.Data) })
		}
	case *http2.GoAwayFrame:
		cn.goAway(f)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // push was disabled
	}
	return nil
}

func (cn *h2Conn) settingsFrame(f *http2.SettingsFrame) error {
	var table uint32
	var tableSet bool
	cn.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			cn.maxStreams = s.Val
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - cn.peerWindow
			cn.peerWindow = int64(s.Val)
			for _, st := range cn.streams {
				st.window += delta
			}
		case http2.SettingMaxFrameSize:
			cn.maxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			table, tableSet = s.Val, true
		}
		return nil
	})
	first := !cn.settled
	cn.settled = true
	cn.cond.Broadcast()
	cn.mu.Unlock()
	if err != nil {
		return err
	}
	cn.signal()
	err = cn.write(func() error {
		if tableSet {
			cn.enc.SetMaxDynamicTableSizeLimit(table)
		}
		return cn.fr.WriteSettingsAck()
	})
	if first {
		close(cn.settings)
	}
	return err
}

func (cn *h2Conn) goAway(f *http2.GoAwayFrame) {
	cn.mu.Lock()
	cn.goaway, cn.lastID, cn.goawayCode = true, f.LastStreamID, f.ErrCode
	var refused []*h2Stream
	for _, st := range cn.streams {
		if st.id > f.LastStreamID {
			refused = append(refused, st)
		}
	}
	cn.mu.Unlock()
	cn.signal()
	for _, st := range refused {
		cn.retry(st)
	}
	cn.maybeClose()
}

func (cn *h2Conn) headers(f *http2.MetaHeadersFrame) {
	cn.mu.Lock()
	st := cn.streams[f.StreamID]
	if st == nil {
		cn.mu.Unlock()
		return
	}
	if st.first == 0 {
		st.first = nanotime()
	}
	st.bytes += int64(f.Header().Length)
	if !st.headers {
		status, _ := strconv.Atoi(f.PseudoValue("status"))
		if status >= 100 && status < 200 && !f.StreamEnded() {
			cn.mu.Unlock()
			return // 100 Continue and friends are not the response
		}
		st.headers, st.status = true, status
	}
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "grpc-status":
			st.grpc, st.hasGRPC = hf.Value, true
		case "retry-after":
			st.retryAft = parseRetryAfter(hf.Value)
		}
	}
	cn.mu.Unlock()
	if f.StreamEnded() {
		cn.finish(st, "", nil)
	}
}

// data takes a DATA frame: the body is counted and dropped, and the
// windows it used are given back as it is consumed.
func (cn *h2Conn) data(f *http2.DataFrame) error {
	n := int64(f.Length) // padding included: it counts against the windows
	cn.mu.Lock()
	st := cn.streams[f.StreamID]
	var streamInc int64
	if st != nil {
		if st.first == 0 {
			st.first = nanotime()
		}
		st.bytes += int64(len(f.Data()))
		st.recvUnack += n
		if st.recvUnack >= h2ReturnAt && !f.StreamEnded() {
			streamInc, st.recvUnack = st.recvUnack, 0
		}
	}
	cn.recvUnack += n
	var connInc int64
	if cn.recvUnack >= h2ReturnAt {
		connInc, cn.recvUnack = cn.recvUnack, 0
	}
	cn.mu.Unlock()
	if connInc > 0 || streamInc > 0 {
		err := cn.write(func() error {
			if connInc > 0 {
				if err := cn.fr.WriteWindowUpdate(0, uint32(connInc)); err != nil {
					return err
				}
			}
			if streamInc > 0 {
				return cn.fr.WriteWindowUpdate(f.StreamID, uint32(streamInc))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if st != nil && f.StreamEnded() {
		cn.finish(st, "", nil)
	}
	return nil
}
