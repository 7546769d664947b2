package capture

import "testing"

func TestRequestLine(t *testing.T) {
	for _, c := range []struct {
		line                  string
		method, target, proto string
		ok                    bool
	}{
		{"GET / HTTP/1.1", "GET", "/", "HTTP/1.1", true},
		{"SUBSCRIBE /upnp/event HTTP/1.1", "SUBSCRIBE", "/upnp/event", "HTTP/1.1", true},
		{"CONNECT db:443 HTTP/1.0", "CONNECT", "db:443", "HTTP/1.0", true},
		// A scanner's target with a raw space: malformed, kept as sent.
		{"GET /cgi-bin/x?a=b c HTTP/1.1", "GET", "/cgi-bin/x?a=b c", "HTTP/1.1", true},
		{"GET / HTTP/2.0", "", "", "", false},
		{"GET /", "", "", "", false},
		{"GET  HTTP/1.1", "", "", "", false},
		{" GET / HTTP/1.1", "", "", "", false},
		{"G(T / HTTP/1.1", "", "", "", false},
		{"GET /\x01 HTTP/1.1", "", "", "", false},
		{"HTTP/1.1 200 OK", "", "", "", false},
	} {
		m, tg, p, ok := requestLine([]byte(c.line))
		if ok != c.ok || string(m) != c.method || string(tg) != c.target || string(p) != c.proto {
			t.Errorf("requestLine(%q) = %q %q %q %v", c.line, m, tg, p, ok)
		}
	}
}

func TestStatusLine(t *testing.T) {
	for _, c := range []struct {
		line   string
		status int
		ok     bool
	}{
		{"HTTP/1.1 200 OK", 200, true},
		{"HTTP/1.0 404", 404, true},
		{"HTTP/1.1 101 Switching Protocols", 101, true},
		{"HTTP/1.1 20 OK", 0, false},
		{"HTTP/1.1 2000 OK", 0, false},
		{"HTTP/2 200 OK", 0, false},
		{"GET / HTTP/1.1", 0, false},
	} {
		_, st, ok := statusLine([]byte(c.line))
		if ok != c.ok || st != c.status {
			t.Errorf("statusLine(%q) = %d %v", c.line, st, ok)
		}
	}
}

func TestParseChunkSize(t *testing.T) {
	for _, c := range []struct {
		line string
		n    int64
		ok   bool
	}{
		{"1a\r", 26, true}, {"0", 0, true}, {"A;ext=1", 10, true}, {"6 \r", 6, true},
		{"0 ; qwe3=asd3; asd", 0, true}, {"", 0, false}, {";x", 0, false}, {"g", 0, false},
		{"ffffffffffffffff", 0, false},
	} {
		n, ok := parseChunkSize([]byte(c.line))
		if n != c.n || ok != c.ok {
			t.Errorf("parseChunkSize(%q) = %d %v, want %d %v", c.line, n, ok, c.n, c.ok)
		}
	}
}

func TestParseHead(t *testing.T) {
	raw := "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nX-Folded: one\r\n two\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\nbogus line\r\n\r\n"
	h := parseHead([]byte(raw), head{request: true})
	if h.method != "POST" || h.target != "/x" || h.proto != "HTTP/1.1" || h.contentLength != 5 || h.badLength || !h.upgrade || len(h.fields) != 5 {
		t.Fatalf("got %+v", h)
	}
	if h.fields[2].Value != "one two" {
		t.Errorf("folded value %q", h.fields[2].Value)
	}
	for _, c := range []struct {
		head             string
		chunked, bad, te bool
	}{
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true, false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, false, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, true, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, true, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, true, false},
	} {
		h := parseHead([]byte(c.head), head{status: 200})
		if h.proto != "HTTP/1.1" || h.status != 200 || h.chunked != c.chunked || h.badLength != c.bad || h.otherCoding != c.te {
			t.Errorf("parseHead(%q) = chunked %v bad %v other %v", c.head, h.chunked, h.badLength, h.otherCoding)
		}
	}
}
