package capture

import (
	"bytes"
	"strings"

	"github.com/herd-replay/herd/internal/h1"
	"github.com/herd-replay/herd/tape"
)

// Bounds of what the parser buffers for one message head. A head above
// maxHead bytes is not HTTP anyone sends; it is discarded and counted.
const (
	maxHead      = 256 << 10 // request or status line plus headers
	maxLine      = 8 << 10   // a chunk-size line, or a partial line kept while resynchronising
	maxTrailer   = 64 << 10  // trailer section of a chunked body
	maxHeldBytes = 64 << 10  // client bytes held while an Upgrade or CONNECT is answered
)

// trimCR drops one trailing carriage return.
func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// isHTTPVersion reports whether b is HTTP/1.0 or HTTP/1.1 (any HTTP/1.x).
func isHTTPVersion(b []byte) bool {
	return len(b) == 8 && string(b[:7]) == "HTTP/1." && b[7] >= '0' && b[7] <= '9'
}

// requestLine splits a request line (without its line ending) into method,
// target and protocol. The target is everything between the first and the
// last space: a target holding a raw space is malformed, but it is what
// the client sent, and a recorder keeps it as sent.
func requestLine(line []byte) (method, target, proto []byte, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 1 || sp > tape.MaxMethod {
		return nil, nil, nil, false
	}
	for _, c := range line[:sp] {
		if !h1.IsTChar(c) {
			return nil, nil, nil, false
		}
	}
	last := bytes.LastIndexByte(line, ' ')
	if last <= sp+1 || !isHTTPVersion(line[last+1:]) {
		return nil, nil, nil, false
	}
	target = line[sp+1 : last]
	for _, c := range target {
		if c < 0x20 || c == 0x7f {
			return nil, nil, nil, false
		}
	}
	return line[:sp], target, line[last+1:], true
}

// looksLikeRequestStart reports whether b, the first bytes of a line, could
// begin a request line: a method token followed by a space, or a prefix of
// one. It is how a request cut short is told from junk.
func looksLikeRequestStart(b []byte) bool {
	for i, c := range b {
		if c == ' ' {
			return i > 0
		}
		if !h1.IsTChar(c) || i >= tape.MaxMethod {
			return false
		}
	}
	return len(b) > 0
}

// statusLine parses "HTTP/1.x NNN reason".
func statusLine(line []byte) (proto []byte, status int, ok bool) {
	if len(line) < 12 || !isHTTPVersion(line[:8]) || line[8] != ' ' {
		return nil, 0, false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return nil, 0, false
		}
		status = status*10 + int(c-'0')
	}
	if len(line) > 12 && line[12] != ' ' {
		return nil, 0, false
	}
	return line[:8], status, true
}

// looksLikeStatusStart reports whether b could begin a status line.
func looksLikeStatusStart(b []byte) bool {
	const p = "HTTP/1."
	if len(b) < len(p) {
		return string(b) == p[:len(b)]
	}
	return string(b[:len(p)]) == p
}

// headEnd returns the length of the head in buf (through the empty line
// that ends it), or -1. from is where to resume: the start of the first
// line not yet known to be non-empty; *next receives the next resume point.
func headEnd(buf []byte, from int, next *int) int {
	i := from
	for {
		nl := bytes.IndexByte(buf[i:], '\n')
		if nl < 0 {
			*next = i
			return -1
		}
		line := buf[i : i+nl]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			if i > 0 {
				return i + nl + 1
			}
		}
		i += nl + 1
	}
}

// head is a parsed message head. Strings alias one copy of the head bytes.
type head struct {
	request bool
	method  string
	target  string
	proto   string
	status  int
	fields  []tape.Field

	contentLength int64 // -1 when absent
	chunked       bool
	otherCoding   bool // Transfer-Encoding present, chunked not last
	badLength     bool // Content-Length unparseable or conflicting
	upgrade       bool // Upgrade header present (request) with Connection: upgrade
	tooLarge      bool // a field exceeds what a tape record can hold
}

// parseHead parses a complete head (start line through the empty line)
// into h. The start line was checked when the message began (tryStart),
// which set h.request and a response's h.status: here it is only split.
func parseHead(raw []byte, h head) head {
	s := string(raw) // the one copy; every field below aliases it
	h.contentLength = -1
	nl := strings.IndexByte(s, '\n')
	first := strings.TrimSuffix(s[:nl], "\r")
	if h.request {
		// As requestLine splits it: the method ends at the first space,
		// the version is the last 8 bytes, after the last space.
		sp := strings.IndexByte(first, ' ')
		h.method, h.target, h.proto = first[:sp], first[sp+1:len(first)-9], first[len(first)-8:]
		if len(h.target) > tape.MaxTarget {
			h.tooLarge = true
		}
	} else {
		h.proto = first[:8] // "HTTP/1.x", as statusLine checked
	}
	rest := s[nl+1:]
	n := strings.Count(rest, "\n")
	h.fields = make([]tape.Field, 0, n)
	var connUpgrade, hasUpgrade bool
	for len(rest) > 0 {
		i := strings.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		rest = rest[i+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Obsolete line folding: the line continues the previous value.
			if k := len(h.fields) - 1; k >= 0 {
				h.fields[k].Value = strings.TrimSpace(h.fields[k].Value + " " + strings.TrimSpace(line))
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			// Not a header line. Clients do not send these; a recorder
			// skips it rather than losing the request.
			continue
		}
		name := line[:colon]
		value := strings.Trim(line[colon+1:], " \t")
		if len(name) > tape.MaxHeaderName || len(value) > tape.MaxHeaderValue {
			h.tooLarge = true
		}
		h.fields = append(h.fields, tape.Field{Name: name, Value: value})
		switch {
		case strings.EqualFold(name, "Content-Length"):
			n, ok := parseContentLength(value)
			if !ok || (h.contentLength >= 0 && h.contentLength != n) {
				h.badLength = true
			}
			h.contentLength = n
		case strings.EqualFold(name, "Transfer-Encoding"):
			last := value
			if j := strings.LastIndexByte(value, ','); j >= 0 {
				last = value[j+1:]
			}
			last = strings.Trim(last, " \t")
			if k := strings.IndexByte(last, ';'); k >= 0 {
				last = strings.TrimSpace(last[:k])
			}
			if strings.EqualFold(last, "chunked") {
				h.chunked, h.otherCoding = true, false
			} else {
				h.chunked, h.otherCoding = false, true
			}
		case strings.EqualFold(name, "Connection"):
			if hasToken(value, "upgrade") {
				connUpgrade = true
			}
		case strings.EqualFold(name, "Upgrade"):
			hasUpgrade = true
		}
	}
	if len(h.fields) > tape.MaxHeaders {
		h.tooLarge = true
	}
	h.upgrade = hasUpgrade && connUpgrade
	return h
}

// parseContentLength accepts one non-negative decimal, or a list of equal
// ones ("42, 42"), as some proxies send.
func parseContentLength(v string) (int64, bool) {
	var n int64 = -1
	for part := range strings.SplitSeq(v, ",") {
		part = strings.Trim(part, " \t")
		if part == "" || len(part) > 18 {
			return 0, false
		}
		var x int64
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			x = x*10 + int64(c-'0')
		}
		if n >= 0 && x != n {
			return 0, false
		}
		n = x
	}
	return n, n >= 0
}

// hasToken reports whether the comma-separated list v holds tok,
// compared case-insensitively.
func hasToken(v, tok string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.Trim(part, " \t"), tok) {
			return true
		}
	}
	return false
}

// parseChunkSize reads the hexadecimal size at the start of a chunk-size
// line, ignoring extensions (";name=value") and stray spaces.
func parseChunkSize(line []byte) (int64, bool) {
	line = trimCR(line)
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t':
			if digits == 0 {
				if c == ';' {
					return 0, false
				}
				continue
			}
			return n, true
		default:
			return 0, false
		}
		if digits >= 15 {
			return 0, false // would overflow; no one sends a chunk that large
		}
		n = n<<4 | int64(d)
		digits++
	}
	return n, digits > 0
}
