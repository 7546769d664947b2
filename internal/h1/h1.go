// Package h1 parses the pieces of HTTP/1.x messages that herd reads as
// bytes outside packet capture's reassembly: the recording proxy (record)
// and the GoReplay importer (importer); capture shares its token table.
// It splits start lines and header
// fields, decides how a body is framed, and decodes chunked bodies
// incrementally, with a bound on every line it holds. It never allocates
// in proportion to a body and knows nothing of connections or tapes.
package h1

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/herd-replay/herd/tape"
)

// Bounds of what a parser holds for one message.
const (
	MaxHead    = 256 << 10 // start line plus header fields
	MaxLine    = 8 << 10   // a chunk-size line or one trailer line
	MaxTrailer = 64 << 10  // trailer section of a chunked body
)

// tchar reports whether c may appear in a token (RFC 9110 5.6.2).
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsTChar reports whether c may appear in a token.
func IsTChar(c byte) bool { return tchar[c] }

// IsToken reports whether b is a non-empty token.
func IsToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}

// TrimEOL drops a trailing LF and the CR before it, if any.
func TrimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// isVersion reports whether b is HTTP/d.d.
func isVersion(b []byte) bool {
	return len(b) == 8 && string(b[:5]) == "HTTP/" && isDigit(b[5]) && b[6] == '.' && isDigit(b[7])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isSpace is Python's and RE2's \s: what a target may not contain.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// RequestLine splits "METHOD SP target SP HTTP/d.d" (line ending already
// removed). The method is a token of at most tape.MaxMethod bytes, the
// target holds no white space; anything else is not a request line.
func RequestLine(line []byte) (method, target, proto []byte, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 1 || sp > tape.MaxMethod || !IsToken(line[:sp]) {
		return nil, nil, nil, false
	}
	rest := line[sp+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 1 || !isVersion(rest[sp2+1:]) {
		return nil, nil, nil, false
	}
	for _, c := range rest[:sp2] {
		if isSpace(c) {
			return nil, nil, nil, false
		}
	}
	return line[:sp], rest[:sp2], rest[sp2+1:], true
}

// StatusLine parses "HTTP/d.d SP 3DIGIT [SP reason]".
func StatusLine(line []byte) (proto []byte, status int, ok bool) {
	if len(line) < 12 || !isVersion(line[:8]) || line[8] != ' ' {
		return nil, 0, false
	}
	for _, c := range line[9:12] {
		if !isDigit(c) {
			return nil, 0, false
		}
		status = status*10 + int(c-'0')
	}
	if len(line) > 12 && line[12] != ' ' {
		return nil, 0, false
	}
	return line[:8], status, true
}

// Field splits "Name: value", trimming the value's surrounding white
// space. A line that does not start with a token and a colon is not a
// field (obsolete line folding included).
func Field(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 || !IsToken(line[:colon]) {
		return nil, nil, false
	}
	return line[:colon], bytes.Trim(line[colon+1:], " \t"), true
}

// Kind is how a body is delimited.
type Kind uint8

const (
	None    Kind = iota // no body
	Length              // Content-Length bytes
	Chunked             // chunked transfer coding
	Close               // until the connection closes (responses only)
)

// Framing says how a message's body is delimited.
type Framing struct {
	Kind   Kind
	Length int64 // for Length
}

// ErrFraming is a message whose body cannot be delimited: conflicting
// Content-Length values, a transfer coding other than chunked on a
// request, a length that is not a number.
var ErrFraming = errors.New("body framing cannot be determined")

// RequestFraming is RFC 9112 6.3 for a request: chunked when the last
// transfer coding is chunked, else Content-Length, else no body.
func RequestFraming(h []tape.Field) (Framing, error) {
	f, err := framing(h)
	if err != nil {
		return f, err
	}
	if f.Kind == Close {
		// A request cannot be delimited by closing: a transfer coding
		// other than chunked makes it unreadable.
		return f, ErrFraming
	}
	return f.empty(), nil
}

// empty turns a zero Content-Length into no body.
func (f Framing) empty() Framing {
	if f.Kind == Length && f.Length == 0 {
		return Framing{}
	}
	return f
}

// ResponseFraming is RFC 9112 6.3 for the response to method: no body
// after HEAD, for 1xx, 204 and 304, and for a 2xx answer to CONNECT.
func ResponseFraming(method string, status int, h []tape.Field) (Framing, error) {
	if method == "HEAD" || status < 200 || status == 204 || status == 304 || (method == "CONNECT" && status < 300) {
		return Framing{}, nil
	}
	f, err := framing(h)
	if err != nil {
		return f, err
	}
	if f.Kind == None {
		f.Kind = Close
	}
	return f.empty(), nil
}

// framing reads Transfer-Encoding and Content-Length. Kind None means
// neither was given, Length 0 a Content-Length of 0; Close means a
// transfer coding that is not chunked.
func framing(h []tape.Field) (Framing, error) {
	var te, cl string
	var hasTE, hasCL bool
	for _, f := range h {
		switch {
		case strings.EqualFold(f.Name, "Transfer-Encoding"):
			if hasTE {
				te += "," + f.Value
			} else {
				te = f.Value
			}
			hasTE = true
		case strings.EqualFold(f.Name, "Content-Length"):
			for _, v := range strings.Split(f.Value, ",") {
				v = strings.TrimSpace(v)
				if hasCL && v != cl {
					return Framing{}, ErrFraming
				}
				cl, hasCL = v, true
			}
		}
	}
	if hasTE {
		codings := strings.Split(te, ",")
		if strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked") {
			return Framing{Kind: Chunked}, nil
		}
		return Framing{Kind: Close}, nil
	}
	if hasCL {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 || (cl != "" && (cl[0] == '+' || cl[0] == '-')) {
			return Framing{}, ErrFraming
		}
		return Framing{Kind: Length, Length: n}, nil
	}
	return Framing{}, nil
}

// HasToken reports whether a comma-separated header (Connection, Upgrade,
// Expect) holds token, case-insensitively, in any of its fields named name.
func HasToken(h []tape.Field, name, token string) bool {
	for _, f := range h {
		if !strings.EqualFold(f.Name, name) {
			continue
		}
		for _, v := range strings.Split(f.Value, ",") {
			if strings.EqualFold(strings.TrimSpace(v), token) {
				return true
			}
		}
	}
	return false
}

// KeepAlive reports whether a connection stays open after a message of
// protocol proto with header h (RFC 9112 9.3).
func KeepAlive(proto string, h []tape.Field) bool {
	if HasToken(h, "Connection", "close") {
		return false
	}
	if proto == tape.HTTP10 {
		return HasToken(h, "Connection", "keep-alive")
	}
	return true
}
