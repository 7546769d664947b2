package replay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Limits of what herd accepts from a target before calling the response
// malformed; they bound memory whatever the target sends.
const (
	maxStatusLine = 8 << 10
	maxHeaderSize = 64 << 10
	maxHeaders    = 1000
	maxInterim    = 16 // 1xx responses before the real one
	maxChunkLine  = 4 << 10
	readBuffer    = 32 << 10
)

var errMalformed = errors.New("malformed response")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// client opens connections to the one target there is.
type client struct {
	addr   string
	tls    *tls.Config // nil for plain HTTP
	dialer net.Dialer
}

// conn is one keep-alive connection to the target.
type conn struct {
	nc   net.Conn
	raw  net.Conn // the TCP connection under nc: nc itself for plain HTTP
	br   *bufio.Reader
	done int // complete exchanges it carried
	// target is the plan's target it is connected to (Req.Target).
	target int32
}

func (c *client) dial(ctx context.Context, deadline time.Time) (*conn, string, error) {
	nc, raw, class, err := dialTarget(ctx, &c.dialer, c.addr, c.tls, deadline)
	if err != nil {
		return nil, class, err
	}
	return &conn{nc: nc, raw: raw, br: bufio.NewReaderSize(nc, readBuffer)}, "", nil
}

// dialTarget connects to addr by deadline and, with a TLS config, makes
// the handshake: nc is what to speak on, raw the TCP connection under it.
// A failure comes with its error class. Both clients dial through it.
func dialTarget(ctx context.Context, d *net.Dialer, addr string, conf *tls.Config, deadline time.Time) (nc, raw net.Conn, class string, err error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err = d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, nil, dialClass(err), err
	}
	if conf == nil {
		return raw, raw, "", nil
	}
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(dctx); err != nil {
		raw.Close()
		if isTimeout(err) {
			return nil, nil, ClassConnectTimeout, err
		}
		return nil, nil, ClassTLS, err
	}
	return tc, raw, "", nil
}

// idleState is what a connection with no request outstanding holds.
type idleState int

const (
	idleUsable idleState = iota // nothing arrived
	idleBytes                   // bytes arrived: no request asked for them
	idleEnded                   // the target closed or reset it
)

// tlsIdleWait bounds how long idle waits to see whether records pending
// on a TLS connection hold data or only TLS's own messages.
const tlsIdleWait = 50 * time.Millisecond

// idle looks at a connection with no request outstanding, just before
// herd writes on it or closes it, without consuming anything: the check
// that keeps unsolicited bytes from being read as a response (judge).
func (cn *conn) idle() idleState {
	if cn.br.Buffered() > 0 {
		return idleBytes
	}
	// A past deadline would fail the look before it is taken.
	if err := cn.nc.SetReadDeadline(time.Time{}); err != nil {
		return idleEnded
	}
	st := peekSocket(cn.raw)
	if st != idleBytes || cn.raw == cn.nc {
		return st
	}
	// TLS: the records pending may hold application data, a close_notify
	// or only TLS's own post-handshake messages (session tickets, key
	// updates), which are no response. Reading through TLS, briefly,
	// tells which.
	cn.nc.SetReadDeadline(time.Now().Add(tlsIdleWait))
	_, err := cn.br.Peek(1)
	cn.nc.SetReadDeadline(time.Time{})
	switch {
	case err == nil:
		return idleBytes
	case isTimeout(err):
		return idleUsable
	}
	return idleEnded
}

// response is what herd keeps of a response besides its attempt.
type response struct {
	firstByte  int64 // replay clock
	keepAlive  bool
	upgraded   bool          // 101 Switching Protocols: the connection is no longer HTTP
	retryAfter time.Duration // Retry-After in seconds, for client emulation
}

// roundTrip writes a request and reads its response, discarding the body
// as it arrives. The deadline covers both. The attempt says how far it
// got, for judge.
func (cn *conn) roundTrip(wire []byte, head bool, deadline time.Time) (a attempt, resp response) {
	a.reused = cn.done > 0
	if a.err = cn.nc.SetDeadline(deadline); a.err != nil {
		return a, resp
	}
	if a.written, a.err = cn.nc.Write(wire); a.err != nil {
		return a, resp
	}
	receive(cn.br, head, &a, &resp)
	return a, resp
}

// receive reads the response to a request into a and resp,
// discarding the body as it arrives.
func receive(br *bufio.Reader, head bool, a *attempt, resp *response) {
	if _, a.err = br.Peek(1); a.err != nil {
		return
	}
	a.got = true
	resp.firstByte = nanotime()
	for interim := 0; ; interim++ {
		if interim > maxInterim {
			a.err = malformed("more than %d interim responses", maxInterim)
			return
		}
		h, err := readHead(br)
		a.bytes += h.size
		if err != nil {
			a.err = err
			return
		}
		a.status, resp.keepAlive, resp.retryAfter = h.status, h.keepAlive, h.retryAfter
		switch {
		case h.status == 101:
			resp.keepAlive, resp.upgraded = false, true
			return
		case h.status >= 100 && h.status < 200:
			continue // 100 Continue and friends are not the response
		case idleTimeoutAnswer(a.reused, h.status):
			// Not an answer but the target closing the connection
			// (judge): nothing more is read from it.
			resp.keepAlive = false
			return
		}
		n, err := readBody(br, h, head)
		a.bytes += n
		if !head && !h.chunked && h.length < 0 && h.status != 204 && h.status != 304 {
			resp.keepAlive = false // the body ended with the connection
		}
		a.err = err
		return
	}
}

func (cn *conn) close() { cn.nc.Close() }

type head struct {
	status     int
	size       int64
	keepAlive  bool
	chunked    bool
	length     int64 // -1 when absent
	retryAfter time.Duration
}

// readHead reads a status line and headers.
func readHead(br *bufio.Reader) (head, error) {
	h := head{length: -1}
	line, err := readLine(br, maxStatusLine)
	h.size += int64(len(line))
	if err != nil {
		return h, err
	}
	if err := h.statusLine(line); err != nil {
		return h, err
	}
	for n := 0; ; n++ {
		line, err := readLine(br, maxHeaderSize)
		h.size += int64(len(line))
		if err != nil {
			return h, err
		}
		if h.size > maxHeaderSize || n > maxHeaders {
			return h, malformed("response header larger than %d bytes", maxHeaderSize)
		}
		end, err := h.headerLine(line)
		if err != nil || end {
			return h, err
		}
	}
}

// statusLine parses a status line (HTTP/1.1 200 OK) into h. The response
// parsers of both engines share it, and headerLine, so that they agree.
func (h *head) statusLine(line []byte) error {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return malformed("status line %.40q", line)
	}
	minor := line[7]
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 999 || (len(line) > 12 && line[12] != ' ' && line[12] != '\r' && line[12] != '\n') {
		return malformed("status line %.40q", line)
	}
	h.status = code
	h.keepAlive = minor != '0'
	return nil
}

// headerLine parses one header line into h; end is true for the blank
// line that ends the head.
func (h *head) headerLine(line []byte) (end bool, err error) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return true, nil
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return false, malformed("header line %.40q", line)
	}
	value = bytes.TrimSpace(value)
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		v, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || v < 0 || (h.length >= 0 && h.length != v) {
			return false, malformed("Content-Length %.40q", value)
		}
		h.length = v
	case bytes.EqualFold(name, []byte("Retry-After")):
		h.retryAfter = parseRetryAfter(string(value))
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		h.chunked = hasToken(value, "chunked")
	case bytes.EqualFold(name, []byte("Connection")):
		if hasToken(value, "close") {
			h.keepAlive = false
		} else if hasToken(value, "keep-alive") {
			h.keepAlive = true
		}
	}
	return false, nil
}

func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}

// readLine reads a line of at most limit bytes, ending in LF.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return line, malformed("line longer than %d bytes", min(limit, readBuffer))
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return line, err
	}
	if len(line) > limit {
		return line, malformed("line longer than %d bytes", limit)
	}
	return line, nil
}

// readBody discards the body of a response framed by h, returning its
// size. Nothing is kept, so memory stays bounded whatever the length.
func readBody(br *bufio.Reader, h head, isHead bool) (int64, error) {
	switch {
	case isHead || h.status == 204 || h.status == 304:
		return 0, nil
	case h.chunked:
		return readChunked(br)
	case h.length >= 0:
		n, err := io.CopyN(io.Discard, br, h.length)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	// No framing: the body runs to the end of the connection.
	n, err := io.Copy(io.Discard, br)
	return n, err
}

func readChunked(br *bufio.Reader) (int64, error) {
	var total int64
	for {
		line, err := readLine(br, maxChunkLine)
		total += int64(len(line))
		if err != nil {
			return total, err
		}
		n, err := chunkSize(line)
		if err != nil {
			return total, err
		}
		if n == 0 {
			// Trailers, up to the blank line.
			for {
				line, err := readLine(br, maxHeaderSize)
				total += int64(len(line))
				if err != nil {
					return total, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return total, nil
				}
			}
		}
		m, err := io.CopyN(io.Discard, br, n)
		total += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return total, err
		}
		crlf, err := readLine(br, 2)
		total += int64(len(crlf))
		if err != nil {
			return total, err
		}
		if len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return total, malformed("chunk not followed by CRLF")
		}
	}
}

// chunkSize parses a chunk-size line.
func chunkSize(line []byte) (int64, error) {
	size := bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(size, ';'); i >= 0 {
		size = size[:i] // chunk extensions
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
	if err != nil || n < 0 {
		return 0, malformed("chunk size %.40q", line)
	}
	return n, nil
}
