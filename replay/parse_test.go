package replay

import (
	"bufio"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

// pieces is a connection that delivers in in the pieces cuts says (each
// byte of cuts is the length of the next piece, 1 to 256), then ends with
// end.
type pieces struct {
	in   []byte
	cuts []byte
	end  error
}

func (c *pieces) next() []byte {
	n := len(c.in)
	if len(c.cuts) > 0 {
		n = min(n, int(c.cuts[0])+1)
		c.cuts = c.cuts[1:]
	}
	b := c.in[:n]
	c.in = c.in[n:]
	return b
}

func (c *pieces) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, c.end
	}
	b := c.next()
	n := copy(p, b)
	if n < len(b) { // the reader asked for less: keep the rest for later
		c.in = append(b[n:len(b):len(b)], c.in...)
	}
	return n, nil
}

// incremental reads the response from c through respParser, as an event
// loop does: piece by piece, then the end.
func incremental(c *pieces, head, reused bool) (a attempt, keepAlive, upgraded bool, used int64) {
	var p respParser
	p.reset(head, reused)
	for len(c.in) > 0 && !p.done() {
		b := c.next()
		used += int64(p.feed(b))
	}
	if !p.done() {
		if c.end == io.EOF {
			p.eof()
		} else {
			p.abort(c.end)
		}
	}
	return attempt{reused: reused, got: p.got, status: p.status, bytes: p.bytes, err: p.err}, p.keepAlive, p.upgraded, used
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error() && ioClass(a) == ioClass(b)
}

// FuzzParserAgrees holds the event loops' incremental parser to the
// goroutine engine's bufio one: the same bytes, cut anywhere, give the
// same attempt (status, bytes, error and its words), the same keep-alive
// verdict, and the same end of the response, so that what follows it is
// found unsolicited by both.
func FuzzParserAgrees(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n", // bytes no request asked for
		"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
		"SSH-2.0-OpenSSH_9.6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 40000) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcxy\r\n",
		"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add(s, []byte{3, 0, 17, 255}, false, true, uint8(0))
		f.Add(s, []byte{}, false, false, uint8(1))
	}
	f.Fuzz(func(t *testing.T, s string, cuts []byte, head, reused bool, final uint8) {
		ends := []error{io.EOF, os.NewSyscallError("read", syscall.ECONNRESET), os.ErrDeadlineExceeded}
		end := ends[int(final)%len(ends)]
		ref := &pieces{in: []byte(s), cuts: append([]byte(nil), cuts...), end: end}
		var want attempt
		var wantResp response
		want.reused = reused
		receive(bufio.NewReaderSize(ref, readBuffer), head, &want, &wantResp)
		got, keepAlive, upgraded, used := incremental(&pieces{in: []byte(s), cuts: cuts, end: end}, head, reused)
		if got.got != want.got || got.status != want.status || got.bytes != want.bytes || !sameErr(got.err, want.err) {
			t.Fatalf("incremental: got %v status %d bytes %d err %v\n       bufio: got %v status %d bytes %d err %v",
				got.got, got.status, got.bytes, got.err, want.got, want.status, want.bytes, want.err)
		}
		if want.err == nil && (keepAlive != wantResp.keepAlive || upgraded != wantResp.upgraded) {
			t.Fatalf("keep-alive %v upgraded %v; bufio says %v %v", keepAlive, upgraded, wantResp.keepAlive, wantResp.upgraded)
		}
		if want.err == nil && used != got.bytes {
			t.Fatalf("the response is %d bytes but the parser took %d", got.bytes, used)
		}
		if judge(nil, got) != judge(nil, want) {
			t.Fatalf("verdicts differ: %+v and %+v", judge(nil, got), judge(nil, want))
		}
	})
}
