package h1

import (
	"bytes"
	"errors"
	"testing"

	"github.com/herd-replay/herd/tape"
)

func TestRequestLine(t *testing.T) {
	tests := []struct {
		line                  string
		method, target, proto string
		ok                    bool
	}{
		{"GET / HTTP/1.1", "GET", "/", "HTTP/1.1", true},
		{"PROPFIND /dav/ HTTP/1.0", "PROPFIND", "/dav/", "HTTP/1.0", true},
		{"GET http://a.test/x?y=1 HTTP/1.1", "GET", "http://a.test/x?y=1", "HTTP/1.1", true},
		{"GET /caf\xc3\xa9 HTTP/1.1", "GET", "/caf\xc3\xa9", "HTTP/1.1", true},
		{"PRI * HTTP/2.0", "PRI", "*", "HTTP/2.0", true},
		{"GET /a b HTTP/1.1", "", "", "", false},
		{"G\x00T / HTTP/1.1", "", "", "", false},
		{"GARBAGE", "", "", "", false},
		{"GET / HTT", "", "", "", false},
		{"GET  / HTTP/1.1", "", "", "", false},
		{"GET / HTTP/1.1 ", "", "", "", false},
		{"GET /\t HTTP/1.1", "", "", "", false},
		{" GET / HTTP/1.1", "", "", "", false},
	}
	for _, tt := range tests {
		m, tg, p, ok := RequestLine([]byte(tt.line))
		if ok != tt.ok || string(m) != tt.method || string(tg) != tt.target || string(p) != tt.proto {
			t.Errorf("RequestLine(%q) = %q %q %q %v, want %q %q %q %v", tt.line, m, tg, p, ok, tt.method, tt.target, tt.proto, tt.ok)
		}
	}
}

func TestStatusLine(t *testing.T) {
	tests := []struct {
		line   string
		status int
		ok     bool
	}{
		{"HTTP/1.1 200 OK", 200, true},
		{"HTTP/1.0 404", 404, true},
		{"HTTP/1.1 101 Switching Protocols", 101, true},
		{"HTTP/1.1 20 OK", 0, false},
		{"HTTP/1.1 2000 OK", 0, false},
		{"HTTP/1.1200 OK", 0, false},
		{"ICY 200 OK", 0, false},
	}
	for _, tt := range tests {
		_, st, ok := StatusLine([]byte(tt.line))
		if ok != tt.ok || (ok && st != tt.status) {
			t.Errorf("StatusLine(%q) = %d %v, want %d %v", tt.line, st, ok, tt.status, tt.ok)
		}
	}
}

func fields(kv ...string) []tape.Field {
	var fs []tape.Field
	for i := 0; i < len(kv); i += 2 {
		fs = append(fs, tape.Field{Name: kv[i], Value: kv[i+1]})
	}
	return fs
}

func TestFraming(t *testing.T) {
	tests := []struct {
		name    string
		h       []tape.Field
		req     Framing
		reqErr  bool
		resp    Framing
		method  string
		status  int
		respErr bool
	}{
		{"none", nil, Framing{}, false, Framing{Kind: Close}, "GET", 200, false},
		{"length", fields("Content-Length", "12"), Framing{Kind: Length, Length: 12}, false, Framing{Kind: Length, Length: 12}, "GET", 200, false},
		{"zero length", fields("content-length", "0"), Framing{}, false, Framing{}, "GET", 200, false},
		{"same lengths", fields("Content-Length", "5, 5"), Framing{Kind: Length, Length: 5}, false, Framing{Kind: Length, Length: 5}, "GET", 200, false},
		{"conflicting lengths", fields("Content-Length", "5", "Content-Length", "6"), Framing{}, true, Framing{}, "GET", 200, true},
		{"signed length", fields("Content-Length", "+5"), Framing{}, true, Framing{}, "GET", 200, true},
		{"chunked wins", fields("Content-Length", "5", "Transfer-Encoding", "gzip, chunked"), Framing{Kind: Chunked}, false, Framing{Kind: Chunked}, "GET", 200, false},
		{"other coding", fields("Transfer-Encoding", "gzip"), Framing{Kind: Close}, true, Framing{Kind: Close}, "GET", 200, false},
		{"head", fields("Content-Length", "9"), Framing{Kind: Length, Length: 9}, false, Framing{}, "HEAD", 200, false},
		{"304", fields("Content-Length", "9"), Framing{Kind: Length, Length: 9}, false, Framing{}, "GET", 304, false},
		{"connect", nil, Framing{}, false, Framing{}, "CONNECT", 200, false},
	}
	for _, tt := range tests {
		got, err := RequestFraming(tt.h)
		if (err != nil) != tt.reqErr || (err == nil && got != tt.req) {
			t.Errorf("%s: RequestFraming = %+v, %v; want %+v, error %v", tt.name, got, err, tt.req, tt.reqErr)
		}
		got, err = ResponseFraming(tt.method, tt.status, tt.h)
		if (err != nil) != tt.respErr || (err == nil && got != tt.resp) {
			t.Errorf("%s: ResponseFraming = %+v, %v; want %+v, error %v", tt.name, got, err, tt.resp, tt.respErr)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		proto string
		h     []tape.Field
		want  bool
	}{
		{tape.HTTP11, nil, true},
		{tape.HTTP11, fields("Connection", "Close"), false},
		{tape.HTTP10, nil, false},
		{tape.HTTP10, fields("Connection", "keep-alive"), true},
		{tape.HTTP11, fields("Connection", "upgrade, close"), false},
	}
	for _, tt := range tests {
		if got := KeepAlive(tt.proto, tt.h); got != tt.want {
			t.Errorf("KeepAlive(%s, %v) = %v, want %v", tt.proto, tt.h, got, tt.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	raw := []byte("POST /x?y=1 HTTP/1.1\r\nHost: a.test\r\nX-Empty:\r\n bad fold\r\nContent-Length:  3 \r\n\r\nabc")
	h, err := ParseRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := fields("Host", "a.test", "X-Empty", "", "Content-Length", "3")
	if h.Method != "POST" || h.Target != "/x?y=1" || h.Proto != "HTTP/1.1" || h.BadLines != 1 || !equalFields(h.Fields, want) {
		t.Errorf("got %+v, want POST /x?y=1 HTTP/1.1 with %v and 1 bad line", h, want)
	}
	if _, err := ParseRequest([]byte("GARBAGE\r\n\r\n")); !errors.Is(err, ErrStartLine) {
		t.Errorf("garbage: got %v, want ErrStartLine", err)
	}
	if _, err := ParseRequest(append([]byte("GET / HTTP/1.1\r\n"), bytes.Repeat([]byte("X: y\r\n"), 1025)...)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1025 headers: got %v, want ErrTooLarge", err)
	}
	r, err := ParseResponse([]byte("HTTP/1.1 204 No Content\nA: b\n\n"))
	if err != nil || r.Status != 204 || !equalFields(r.Fields, fields("A", "b")) {
		t.Errorf("response: got %+v, %v", r, err)
	}
}

func equalFields(a, b []tape.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestChunkedDecoder(t *testing.T) {
	body := "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\nNEXT"
	for split := 1; split <= len(body); split++ {
		var d ChunkedDecoder
		var got []byte
		consumed := 0
		done := false
		for off := 0; off < len(body) && !done; off += split {
			p := []byte(body[off:min(off+split, len(body))])
			n, fin, err := d.Feed(p, func(b []byte) { got = append(got, b...) })
			if err != nil {
				t.Fatalf("split %d: %v", split, err)
			}
			consumed += n
			done = fin
		}
		if !done || string(got) != "hello world" || consumed != len(body)-len("NEXT") {
			t.Fatalf("split %d: data %q, consumed %d, done %v", split, got, consumed, done)
		}
		if !equalFields(d.Trailer, fields("X-Sum", "42")) {
			t.Fatalf("split %d: trailer %v", split, d.Trailer)
		}
	}
	for _, bad := range []string{"zz\r\n", "3\r\nabcX\r\n", "1234567890123456\r\n"} {
		var d ChunkedDecoder
		if _, _, err := d.Feed([]byte(bad), nil); !errors.Is(err, ErrChunked) {
			t.Errorf("%q: got %v, want ErrChunked", bad, err)
		}
	}
	var d ChunkedDecoder
	if _, _, err := d.Feed(bytes.Repeat([]byte("1"), MaxLine+10), nil); !errors.Is(err, ErrChunked) {
		t.Errorf("endless size line: got %v, want ErrChunked", err)
	}
}
