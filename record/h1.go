package record

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-replay/herd/internal/h1"
	"github.com/herd-replay/herd/tape"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// h1conn proxies one HTTP/1.x client connection. It forwards the
// client's requests in order on one upstream connection of its own (the
// upstream sees the client's connection structure), and each request's
// bytes as they came: line, headers in their order and casing, body
// framing. It parses only what it must: where each message ends.
type h1conn struct {
	p      *proxy
	t      *tracked
	c      net.Conn // the client; TLS when the proxy serves TLS
	cr     *bufio.Reader
	cw     *bufio.Writer
	id     uint64
	seq    uint32
	client netip.AddrPort
	server netip.AddrPort
	xff    string // the client's address for X-Forwarded-For
	up     *upConn
	head   []byte // the request head being read
	rhead  []byte // the response head being read
}

// upConn is the connection to the upstream that serves one client
// connection.
type upConn struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	last time.Time // when it last finished a response
}

func newH1(p *proxy, t *tracked, c net.Conn, cr *bufio.Reader) *h1conn {
	h := &h1conn{p: p, t: t, c: c, cr: cr, cw: bufio.NewWriterSize(c, 8<<10), id: p.nextConn.Add(1)}
	h.client, h.server = addrs(t.Conn)
	if h.client.IsValid() {
		h.xff = h.client.Addr().String()
	}
	return h
}

func (h *h1conn) run() {
	defer h.closeUpstream()
	for {
		// Wait for a request; shutdown wakes an idle connection (after
		// this deadline is set, so its own wins).
		h.c.SetReadDeadline(time.Now().Add(h.p.opts.IdleTimeout))
		if !h.p.setIdle(h.t, true) {
			return
		}
		_, err := h.cr.Peek(1)
		closing := !h.p.setIdle(h.t, false)
		if err != nil {
			if h.seq == 0 {
				h.p.c.empty.Add(1)
			}
			return
		}
		if !h.exchange(time.Now()) || closing {
			return
		}
	}
}

// status writes a response of herd's own (400, 431, 502, 504) and asks
// the client to close: what it sent next is not known to be a request.
func (h *h1conn) status(code int, reason, msg string) {
	fmt.Fprintf(h.cw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", code, reason, len(msg), msg)
	h.c.SetWriteDeadline(time.Now().Add(h.p.opts.IOTimeout))
	h.cw.Flush()
}

// exchange proxies one request and its response and reports whether the
// connection goes on.
func (h *h1conn) exchange(start time.Time) bool {
	h.p.c.requests.Add(1)
	h.c.SetReadDeadline(start.Add(h.p.opts.IOTimeout))
	raw, err := readHead(h.cr, h.head[:0])
	h.head = raw
	switch {
	case errors.Is(err, h1.ErrTooLarge):
		h.p.c.tooLarge.Add(1)
		h.status(431, "Request Header Fields Too Large", "herd record: request head too large\n")
		return false
	case err != nil:
		h.p.c.reqIncomplete.Add(1)
		return false
	}
	hd, err := h1.ParseRequest(raw)
	if err != nil {
		if errors.Is(err, h1.ErrTooLarge) {
			h.p.c.tooLarge.Add(1)
			h.status(431, "Request Header Fields Too Large", "herd record: request head beyond what a tape holds\n")
		} else {
			h.p.c.malformed.Add(1)
			h.status(400, "Bad Request", "herd record: not an HTTP/1.x request\n")
		}
		return false
	}
	fr, err := h1.RequestFraming(hd.Fields)
	if err != nil {
		h.p.c.malformed.Add(1)
		h.status(400, "Bad Request", "herd record: the request body cannot be framed\n")
		return false
	}
	e := &tape.Exchange{
		ConnID: h.id, Seq: h.seq, Client: h.client, Server: h.server,
		ReqStart: start.UnixNano(),
		Method:   hd.Method, Target: hd.Target, Proto: hd.Proto, ReqHeader: hd.Fields,
		Flags: tape.NoResponse,
	}
	h.seq++
	rb := &bodyRec{p: h.p, max: h.p.opts.MaxBody}
	if fr.Kind == h1.Length {
		// Room for a typical body up front; a larger one grows as it
		// comes, within MaxHeld.
		rb.data = make([]byte, 0, min(fr.Length, h.p.opts.MaxBody, 16<<10))
	}

	res := h.forward(e, raw, hd, fr, rb)
	switch {
	case res.discard != nil:
		res.discard.Add(1)
		rb.release()
	case rb.over:
		h.p.c.memory.Add(1)
		rb.release()
	default:
		rb.set(e)
		h.p.record(e, rb.held)
	}
	return res.keep
}

// forwarded is how forward ended.
type forwarded struct {
	keep    bool          // the client connection goes on
	discard *atomic.Int64 // the reason the exchange is not recorded; nil: it is
}

// forward sends the request upstream (again, on a fresh connection, when
// a reused one turns out closed and nothing was lost) and relays the
// response.
func (h *h1conn) forward(e *tape.Exchange, raw []byte, hd h1.Head, fr h1.Framing, rb *bodyRec) forwarded {
	var reading atomic.Bool // the request body is still being read from the client
	for attempt := 0; ; attempt++ {
		reused, err := h.upstream()
		if err != nil {
			return h.upstreamFailed(e, err, false, fr.Kind == h1.None)
		}
		h.writeHead(raw, hd.Fields)
		var body chan error
		switch {
		case fr.Kind == h1.None:
			err = h.flushUp()
			e.ReqEnd = time.Now().UnixNano()
		case fr.Kind == h1.Length && int64(h.cr.Buffered()) >= fr.Length:
			// The whole body is here: no goroutine for it.
			err = h.copyLength(h.up.w, h.cr, fr.Length, rb.write, h.c, nil)
			if err == nil {
				err = h.flushUp()
			}
			e.ReqEnd = time.Now().UnixNano()
		default:
			// Stream the body while the response is read: a server may
			// answer early, or first send 100 Continue.
			body = make(chan error, 1)
			reading.Store(true)
			go func(up *upConn) {
				body <- h.copyRequestBody(up, fr, rb, e, &reading)
			}(h.up)
		}
		if err != nil {
			return h.upstreamFailed(e, err, false, false)
		}
		res, retry := h.response(e, hd, body, &reading, reused && fr.Kind == h1.None && attempt == 0)
		if retry {
			h.p.c.upRetries.Add(1)
			h.closeUpstream()
			continue
		}
		return res
	}
}

// copyRequestBody forwards a body from the client as it comes. A client
// that fails mid-body makes the request incomplete; the upstream
// connection is closed so the upstream does not wait for the rest.
func (h *h1conn) copyRequestBody(up *upConn, fr h1.Framing, rb *bodyRec, e *tape.Exchange, reading *atomic.Bool) error {
	defer reading.Store(false)
	var err error
	if fr.Kind == h1.Length {
		err = h.copyLengthStream(up, fr.Length, rb)
	} else {
		var tr []tape.Field
		tr, err = h.copyChunked(up.w, h.cr, rb.write, h.c, h.flusher(up))
		e.ReqTrailer = tr
	}
	if err == nil {
		reading.Store(false) // all of it read: what is left is the flush
		err = h.flusher(up)()
	}
	e.ReqEnd = time.Now().UnixNano()
	if err != nil {
		up.c.Close()
	}
	return err
}

func (h *h1conn) copyLengthStream(up *upConn, n int64, rb *bodyRec) error {
	return h.copyLength(up.w, h.cr, n, rb.write, h.c, h.flusher(up))
}

// flusher flushes what was written to up, within IOTimeout.
func (h *h1conn) flusher(up *upConn) func() error {
	return func() error {
		up.c.SetWriteDeadline(time.Now().Add(h.p.opts.IOTimeout))
		return up.w.Flush()
	}
}

// response reads the response head (relaying 1xx), relays the response
// to the client and finishes the exchange. It asks for a retry when a
// reused upstream connection ended before a byte of response.
func (h *h1conn) response(e *tape.Exchange, hd h1.Head, body chan error, reading *atomic.Bool, canRetry bool) (forwarded, bool) {
	up := h.up
	var rh h1.Head
	var rawResp []byte
	for {
		// The response timeout runs from the end of the request: while
		// a body is still coming (a slow upload; its own stalls time out
		// on their own), the wait goes on.
		up.c.SetReadDeadline(time.Now().Add(h.p.opts.ResponseTimeout))
		_, err := up.r.Peek(1)
		for err != nil && isTimeout(err) && reading.Load() {
			up.c.SetReadDeadline(time.Now().Add(h.p.opts.ResponseTimeout))
			_, err = up.r.Peek(1)
		}
		if err != nil {
			if canRetry && !isTimeout(err) && body == nil {
				return forwarded{}, true
			}
			berr := h.waitBody(body)
			return h.upstreamFailed(e, err, true, berr == nil), false
		}
		e.RespStart = time.Now().UnixNano()
		up.c.SetReadDeadline(time.Now().Add(h.p.opts.IOTimeout))
		rawResp, err = readHead(up.r, h.rhead[:0])
		h.rhead = rawResp
		if err == nil {
			rh, err = h1.ParseResponse(rawResp)
		}
		if err != nil {
			berr := h.waitBody(body)
			return h.upstreamFailed(e, fmt.Errorf("response head: %w", err), true, berr == nil), false
		}
		if rh.Status >= 100 && rh.Status < 200 && rh.Status != 101 {
			h.p.c.interim.Add(1)
			h.cw.Write(rawResp)
			if err := h.flushClient(); err != nil {
				h.waitBody(body)
				return h.clientGone(e), false
			}
			continue
		}
		break
	}
	e.Status, e.RespProto, e.RespHeader = rh.Status, rh.Proto, rh.Fields
	e.Flags &^= tape.NoResponse
	if _, err := h.cw.Write(rawResp); err != nil {
		h.waitBody(body)
		return h.clientGone(e), false
	}
	if rh.Status == 101 || (hd.Method == "CONNECT" && rh.Status < 300) {
		e.RespEnd = time.Now().UnixNano()
		e.Flags |= tape.Upgraded
		if err := h.flushClient(); err != nil {
			h.waitBody(body)
			return h.clientGone(e), false
		}
		if h.waitBody(body) != nil {
			return forwarded{discard: &h.p.c.reqIncomplete}, false
		}
		h.tunnel()
		return forwarded{}, false
	}

	fr, err := h1.ResponseFraming(hd.Method, rh.Status, rh.Fields)
	if err != nil {
		fr = h1.Framing{Kind: h1.Close}
	}
	var crc uint64
	var n int64
	data := func(b []byte) {
		crc = crc64.Update(crc, crcTable, b)
		n += int64(len(b))
	}
	var cerr error
	switch fr.Kind {
	case h1.Length:
		cerr = h.copyLength(h.cw, up.r, fr.Length, data, up.c, h.flushClient)
	case h1.Chunked:
		e.RespTrailer, cerr = h.copyChunked(h.cw, up.r, data, up.c, h.flushClient)
	case h1.Close:
		cerr = h.copyAll(h.cw, up.r, data, up.c, h.flushClient)
	}
	if cerr == nil {
		cerr = h.flushClient()
	}
	e.RespEnd = time.Now().UnixNano()
	e.RespBodyLen, e.RespBodyHash = n, crc
	h.p.c.respBytes.Add(n)
	if body != nil && reading.Load() {
		// The response is complete and the client is still sending its
		// body (an early 413 or error): neither side can go on.
		h.c.Close()
		h.closeUpstream()
	}
	berr := h.waitBody(body)
	up.last = time.Now()
	switch {
	case berr != nil:
		// The client's request never became whole.
		return forwarded{discard: &h.p.c.reqIncomplete}, false
	case cerr != nil:
		// The upstream or the client failed mid-body: the client got a
		// cut response, and the tape says so.
		e.Flags |= tape.RespIncomplete
		h.closeUpstream()
		return forwarded{}, false
	}
	keep := fr.Kind != h1.Close && h1.KeepAlive(e.Proto, e.ReqHeader) && h1.KeepAlive(rh.Proto, rh.Fields)
	if !keep {
		h.closeUpstream()
	}
	return forwarded{keep: keep}, false
}

// waitBody waits for the request body's goroutine, if any, and returns
// its error.
func (h *h1conn) waitBody(body chan error) error {
	if body == nil {
		return nil
	}
	err := <-body
	if err != nil && h.up != nil {
		h.closeUpstream()
	}
	return err
}

// upstreamFailed answers 502 (504 on a timeout) for a request the
// upstream did not answer, and records it without a response when the
// request was whole (its body, if any, forwarded). The connection ends:
// the upstream's state is unknown, and so may be the rest of the
// client's body.
func (h *h1conn) upstreamFailed(e *tape.Exchange, err error, sent, whole bool) forwarded {
	h.closeUpstream()
	if isTimeout(err) && sent {
		h.p.c.upTimeouts.Add(1)
		h.status(504, "Gateway Timeout", "herd record: the upstream did not answer in time\n")
	} else {
		h.p.c.upErrors.Add(1)
		h.status(502, "Bad Gateway", "herd record: the upstream failed: "+err.Error()+"\n")
	}
	if !whole {
		return forwarded{discard: &h.p.c.upFailed}
	}
	e.ReqEnd = max(e.ReqEnd, e.ReqStart)
	e.Flags |= tape.NoResponse
	e.RespStart, e.RespEnd = 0, 0
	return forwarded{}
}

// clientGone ends an exchange whose client stopped reading.
func (h *h1conn) clientGone(e *tape.Exchange) forwarded {
	h.closeUpstream()
	e.RespEnd = time.Now().UnixNano()
	e.Flags |= tape.RespIncomplete
	return forwarded{}
}

// upstream returns the client connection's upstream connection, dialing
// one when there is none or the one there was closed while idle. reused
// says whether it served a request before.
func (h *h1conn) upstream() (reused bool, err error) {
	if h.up != nil {
		if h.up.r.Buffered() == 0 && (time.Since(h.up.last) < time.Second || alive(h.up.c)) {
			return true, nil
		}
		h.closeUpstream()
	}
	c, err := h.p.dialer.DialContext(h.p.ctx, "tcp", h.p.upstream)
	if err != nil {
		return false, err
	}
	if h.p.tlsUp {
		tc := tls.Client(c, h.p.upTLS)
		tc.SetDeadline(time.Now().Add(h.p.opts.DialTimeout))
		if err := tc.HandshakeContext(h.p.ctx); err != nil {
			c.Close()
			return false, fmt.Errorf("TLS to the upstream: %w", err)
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	h.p.c.dials.Add(1)
	h.up = &upConn{c: c, r: bufio.NewReaderSize(c, 16<<10), w: bufio.NewWriterSize(c, 8<<10), last: time.Now()}
	return false, nil
}

func (h *h1conn) closeUpstream() {
	if h.up != nil {
		h.up.c.Close()
		h.up = nil
	}
}

func (h *h1conn) flushUp() error {
	h.up.c.SetWriteDeadline(time.Now().Add(h.p.opts.IOTimeout))
	return h.up.w.Flush()
}

func (h *h1conn) flushClient() error {
	if h.cw.Buffered() == 0 {
		return nil
	}
	h.c.SetWriteDeadline(time.Now().Add(h.p.opts.IOTimeout))
	return h.cw.Flush()
}

// writeHead writes the request head upstream as the client sent it, with
// the client's address appended to X-Forwarded-For.
func (h *h1conn) writeHead(raw []byte, fields []tape.Field) {
	w := h.up.w
	if h.p.opts.NoForwardedFor || h.xff == "" {
		w.Write(raw)
		return
	}
	end := len(raw) - 1 // raw ends with the empty line: "\n" or "\r\n"
	if end > 0 && raw[end-1] == '\r' {
		end--
	}
	existing := false
	for _, f := range fields {
		if strings.EqualFold(f.Name, "X-Forwarded-For") {
			existing = true
		}
	}
	if !existing {
		w.Write(raw[:end])
		w.WriteString("X-Forwarded-For: ")
		w.WriteString(h.xff)
		w.WriteString("\r\n\r\n")
		return
	}
	// Append to the (last) X-Forwarded-For line.
	last := -1
	for i := 0; i < end; {
		nl := bytes.IndexByte(raw[i:end], '\n')
		line := raw[i : i+nl+1]
		if len(line) > 16 && strings.EqualFold(string(line[:16]), "x-forwarded-for:") {
			last = i
		}
		i += nl + 1
	}
	for i := 0; i < end; {
		nl := bytes.IndexByte(raw[i:end], '\n')
		line := raw[i : i+nl+1]
		if i == last {
			w.Write(bytes.TrimRight(line, "\r\n"))
			w.WriteString(", ")
			w.WriteString(h.xff)
			w.WriteString("\r\n")
		} else {
			w.Write(line)
		}
		i += nl + 1
	}
	w.WriteString("\r\n")
}

// readHead reads a message head, through the empty line that ends it,
// appending to buf. Empty lines before a request line are skipped (RFC
// 9112 2.2).
func readHead(r *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := r.ReadSlice('\n')
		if len(buf)+len(line) > h1.MaxHead {
			return buf, h1.ErrTooLarge
		}
		if err == nil && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			if len(buf) == 0 {
				continue
			}
			return append(buf, line...), nil
		}
		buf = append(buf, line...)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
}

// The copies below move bytes straight from a reader's buffer to a
// writer, flushing the writer whenever the reader must wait, so a
// streamed body (server-sent events, a slow upload) flows through as it
// comes and none is held.

// fill makes bytes available in r, flushing w's pending output first
// (flush) and waiting at most IOTimeout on rc.
func (h *h1conn) fill(r *bufio.Reader, rc net.Conn, flush func() error) error {
	if r.Buffered() > 0 {
		return nil
	}
	if flush != nil {
		if err := flush(); err != nil {
			return err
		}
	}
	rc.SetReadDeadline(time.Now().Add(h.p.opts.IOTimeout))
	_, err := r.Peek(1)
	return err
}

// copyLength copies n bytes from r to w, handing each piece to data.
func (h *h1conn) copyLength(w *bufio.Writer, r *bufio.Reader, n int64, data func([]byte), rc net.Conn, flush func() error) error {
	for n > 0 {
		if err := h.fill(r, rc, flush); err != nil {
			return noEOF(err)
		}
		b, _ := r.Peek(int(min(int64(r.Buffered()), n)))
		data(b)
		if _, err := w.Write(b); err != nil {
			return err
		}
		r.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// copyChunked copies a chunked body, framing and all, from r to w, and
// hands the data inside the chunks to data.
func (h *h1conn) copyChunked(w *bufio.Writer, r *bufio.Reader, data func([]byte), rc net.Conn, flush func() error) ([]tape.Field, error) {
	var d h1.ChunkedDecoder
	for {
		if err := h.fill(r, rc, flush); err != nil {
			return nil, noEOF(err)
		}
		b, _ := r.Peek(r.Buffered())
		n, done, err := d.Feed(b, data)
		if _, werr := w.Write(b[:n]); werr != nil {
			return nil, werr
		}
		r.Discard(n)
		if err != nil {
			return nil, err
		}
		if done {
			return d.Trailer, nil
		}
	}
}

// copyAll copies r to w until r ends (a response delimited by the close).
func (h *h1conn) copyAll(w *bufio.Writer, r *bufio.Reader, data func([]byte), rc net.Conn, flush func() error) error {
	for {
		if err := h.fill(r, rc, flush); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		b, _ := r.Peek(r.Buffered())
		data(b)
		if _, err := w.Write(b); err != nil {
			return err
		}
		r.Discard(len(b))
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// tunnel passes bytes both ways after 101 Switching Protocols or CONNECT,
// counting them, until either side closes or idles past IdleTimeout.
func (h *h1conn) tunnel() {
	h.p.c.upgraded.Add(1)
	up := h.up
	var wg sync.WaitGroup
	pipe := func(dst net.Conn, src net.Conn, sr *bufio.Reader) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			src.SetReadDeadline(time.Now().Add(h.p.opts.IdleTimeout))
			n, err := sr.Read(buf)
			if n > 0 {
				h.p.c.tunnelBytes.Add(int64(n))
				dst.SetWriteDeadline(time.Now().Add(h.p.opts.IOTimeout))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		// One side is done: end both, so the other copy ends too.
		dst.Close()
		src.Close()
	}
	wg.Add(2)
	go pipe(up.c, h.c, h.cr)
	go pipe(h.c, up.c, up.r)
	wg.Wait()
	h.up = nil
}

// bodyRec keeps the first max bytes of a request body for the tape,
// within the proxy's MaxHeld, and counts them all.
type bodyRec struct {
	p    *proxy
	max  int64
	data []byte
	n    int64
	held int64 // bytes taken from MaxHeld
	over bool  // MaxHeld refused: the exchange is not recorded
}

func (b *bodyRec) write(x []byte) {
	b.n += int64(len(x))
	b.p.c.reqBytes.Add(int64(len(x)))
	if b.over {
		return
	}
	keep := min(int64(len(x)), b.max-int64(len(b.data)))
	if keep <= 0 {
		return
	}
	if !b.p.take(keep) {
		b.over = true
		return
	}
	b.held += keep
	b.data = append(b.data, x[:keep]...)
}

// set stores the body on e.
func (b *bodyRec) set(e *tape.Exchange) {
	e.ReqBody, e.ReqBodyLen = b.data, b.n
	if b.n > int64(len(b.data)) {
		e.Flags |= tape.ReqBodyTruncated
	}
}

func (b *bodyRec) release() {
	b.p.give(b.held)
	b.held, b.data = 0, nil
}
