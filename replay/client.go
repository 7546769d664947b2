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
	"os"
	"strconv"
	"syscall"
	"time"
)

// Error classes of a request that got no usable response.
const (
	ClassConnectRefused = "connect_refused"
	ClassConnectTimeout = "connect_timeout"
	ClassConnectError   = "connect_error"
	ClassTLS            = "tls_error"
	ClassReset          = "reset"
	ClassClosed         = "closed" // the target closed the connection mid-response
	ClassTimeout        = "timeout"
	ClassMalformed      = "malformed_response"
	ClassHTTP5xx        = "http_5xx"
	ClassFDs            = "fd_exhausted"    // herd ran out of file descriptors
	ClassPorts          = "ports_exhausted" // herd ran out of ephemeral ports
	ClassIO             = "io_error"
)

// generatorClass reports whether a class is herd's own limit, not the
// target's failure.
func generatorClass(c string) bool { return c == ClassFDs || c == ClassPorts }

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
	br   *bufio.Reader
	uses int
}

func (c *client) dial(ctx context.Context, deadline time.Time) (*conn, string, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := c.dialer.DialContext(dctx, "tcp", c.addr)
	if err != nil {
		return nil, dialClass(err), err
	}
	if c.tls != nil {
		tc := tls.Client(nc, c.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			if isTimeout(err) {
				return nil, ClassConnectTimeout, err
			}
			return nil, ClassTLS, err
		}
		nc = tc
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, readBuffer)}, "", nil
}

func dialClass(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassConnectRefused
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return ClassFDs
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return ClassPorts
	case isTimeout(err):
		return ClassConnectTimeout
	}
	return ClassConnectError
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func ioClass(err error) string {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the target. TLS 1.3 refuses a client
		// certificate after the handshake: the alert comes on the first
		// read.
		return ClassTLS
	case errors.Is(err, errMalformed):
		return ClassMalformed
	case isTimeout(err):
		return ClassTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return ClassReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassClosed
	}
	return ClassIO
}

// response is what herd keeps of a response.
type response struct {
	status    int
	firstByte int64 // replay clock
	bytes     int64 // header and body bytes read
	keepAlive bool
}

// roundTrip writes a request and reads its response, discarding the body
// as it arrives. The deadline covers both. gotBytes reports whether any
// byte of a response arrived, which decides whether a failure on a reused
// connection may be retried on a fresh one.
func (cn *conn) roundTrip(wire []byte, head bool, deadline time.Time) (resp response, gotBytes bool, err error) {
	cn.uses++
	if err := cn.nc.SetDeadline(deadline); err != nil {
		return resp, false, err
	}
	if _, err := cn.nc.Write(wire); err != nil {
		return resp, false, err
	}
	if _, err := cn.br.Peek(1); err != nil {
		return resp, false, err
	}
	resp.firstByte = nanotime()
	for interim := 0; ; interim++ {
		if interim > maxInterim {
			return resp, true, malformed("more than %d interim responses", maxInterim)
		}
		h, err := readHead(cn.br)
		resp.bytes += h.size
		if err != nil {
			return resp, true, err
		}
		resp.status, resp.keepAlive = h.status, h.keepAlive
		switch {
		case h.status == 101:
			// Switching Protocols: the connection is no longer HTTP.
			resp.keepAlive = false
			return resp, true, nil
		case h.status >= 100 && h.status < 200:
			continue // 100 Continue and friends are not the response
		}
		n, err := readBody(cn.br, h, head)
		resp.bytes += n
		if !head && !h.chunked && h.length < 0 && h.status != 204 && h.status != 304 {
			resp.keepAlive = false // the body ended with the connection
		}
		return resp, true, err
	}
}

func (cn *conn) close() { cn.nc.Close() }

type head struct {
	status    int
	size      int64
	keepAlive bool
	chunked   bool
	length    int64 // -1 when absent
}

// readHead reads a status line and headers.
func readHead(br *bufio.Reader) (head, error) {
	h := head{length: -1}
	line, err := readLine(br, maxStatusLine)
	h.size += int64(len(line))
	if err != nil {
		return h, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return h, malformed("status line %.40q", line)
	}
	minor := line[7]
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 999 || (len(line) > 12 && line[12] != ' ' && line[12] != '\r' && line[12] != '\n') {
		return h, malformed("status line %.40q", line)
	}
	h.status = code
	h.keepAlive = minor != '0'
	for n := 0; ; n++ {
		line, err := readLine(br, maxHeaderSize)
		h.size += int64(len(line))
		if err != nil {
			return h, err
		}
		if h.size > maxHeaderSize || n > maxHeaders {
			return h, malformed("response header larger than %d bytes", maxHeaderSize)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, malformed("header line %.40q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || v < 0 || (h.length >= 0 && h.length != v) {
				return h, malformed("Content-Length %.40q", value)
			}
			h.length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			h.chunked = hasToken(value, "chunked")
		case bytes.EqualFold(name, []byte("Connection")):
			if hasToken(value, "close") {
				h.keepAlive = false
			} else if hasToken(value, "keep-alive") {
				h.keepAlive = true
			}
		}
	}
	return h, nil
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
		size := bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i] // chunk extensions
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return total, malformed("chunk size %.40q", line)
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
