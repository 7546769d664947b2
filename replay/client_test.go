package replay

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readResponse parses one response from s the way roundTrip does after the
// request is written.
func readResponse(s string, head bool) (head_ head, body int64, err error) {
	br := bufio.NewReaderSize(strings.NewReader(s), readBuffer)
	for interim := 0; interim <= maxInterim; interim++ {
		h, err := readHead(br)
		if err != nil {
			return h, 0, err
		}
		if h.status >= 100 && h.status < 200 && h.status != 101 {
			continue
		}
		if h.status == 101 {
			return h, 0, nil
		}
		n, err := readBody(br, h, head)
		return h, n, err
	}
	return head_, 0, malformed("too many interim responses")
}

func TestReadResponse(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		head   bool
		status int
		body   int64
		keep   bool
		err    error
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, 5, true, nil},
		{"chunked with extensions and trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", false, 200, 0, true, nil},
		{"100 continue first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", false, 201, 0, true, nil},
		{"head has no body", "HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n", true, 200, 0, true, nil},
		{"304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 999\r\n\r\n", false, 304, 0, true, nil},
		{"close delimited", "HTTP/1.0 200 OK\r\n\r\nabc", false, 200, 3, false, nil},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false, 200, 1, false, nil},
		{"1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", false, 200, 1, true, nil},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, 200, 3, true, io.ErrUnexpectedEOF},
		{"garbage", "SSH-2.0-OpenSSH\r\n", false, 0, 0, false, errMalformed},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", false, 200, 0, true, errMalformed},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 200, 0, true, errMalformed},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 200, 0, true, errMalformed},
		{"no crlf after chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX0\r\n\r\n", false, 200, 0, true, errMalformed},
	}
	for _, c := range cases {
		h, _, err := readResponse(c.in, c.head)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.err)
			}
			continue
		}
		if err != nil || h.status != c.status {
			t.Errorf("%s: status %d err %v", c.name, h.status, err)
			continue
		}
		keep := h.keepAlive && (h.chunked || h.length >= 0 || c.head || h.status == 304 || h.status == 204)
		if keep != c.keep {
			t.Errorf("%s: keep-alive %v, want %v", c.name, keep, c.keep)
		}
	}
}

// FuzzResponse feeds arbitrary target output to the response parser: it
// must never panic, and never read more than it was given. Through a
// connection, it must also read exactly one response: the bytes after a
// complete response are left where the idle check finds them (never taken
// into the response), and however the connection ends (the target's close
// or a reset), judge classifies what was read.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, head bool) {
		_, n, _ := readResponse(s, head)
		if n < 0 || n > int64(len(s)) {
			t.Fatalf("body of %d bytes from %d bytes of input", n, len(s))
		}
		for _, end := range []error{io.EOF, syscall.ECONNRESET} {
			sc := &scripted{in: strings.NewReader(s), end: end}
			cn := &conn{nc: sc, raw: sc, br: bufio.NewReaderSize(sc, readBuffer), done: 1}
			wire := []byte("GET / HTTP/1.1\r\n\r\n")
			if head {
				wire = []byte("HEAD / HTTP/1.1\r\n\r\n")
			}
			a, resp := cn.roundTrip(wire, head, time.Now().Add(time.Minute))
			if a.bytes < 0 || a.bytes > int64(len(s)) {
				t.Fatalf("%d response bytes from %d bytes of input", a.bytes, len(s))
			}
			left := int64(cn.br.Buffered()) + int64(sc.in.Len())
			if a.err == nil && a.bytes+left != int64(len(s)) {
				t.Fatalf("response of %d bytes and %d left over from %d bytes of input", a.bytes, left, len(s))
			}
			if a.err == nil && resp.keepAlive && (left > 0) != (cn.idle() == idleBytes) {
				t.Fatalf("%d bytes after the response; the idle check says %v", left, cn.idle())
			}
			v := judge(wire, a)
			if v.resend {
				t.Fatalf("resend after the request was written: %+v", a)
			}
			if (v.class == "" || v.class == ClassHTTP5xx) != v.response {
				t.Fatalf("verdict %+v", v)
			}
			if v.response && (a.err != nil || a.status < 100) {
				t.Fatalf("a response from a failed attempt: %+v", a)
			}
		}
	})
}

// scripted is a connection to a target that sends in, then ends with end.
type scripted struct {
	in  *strings.Reader
	end error
}

func (c *scripted) Read(p []byte) (int, error) {
	n, err := c.in.Read(p)
	if err == io.EOF {
		err = c.end
	}
	return n, err
}

func (c *scripted) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scripted) Close() error                     { return nil }
func (c *scripted) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scripted) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scripted) SetDeadline(time.Time) error      { return nil }
func (c *scripted) SetReadDeadline(time.Time) error  { return nil }
func (c *scripted) SetWriteDeadline(time.Time) error { return nil }
