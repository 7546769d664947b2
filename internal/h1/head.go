package h1

import (
	"bytes"
	"errors"

	"github.com/herd-replay/herd/tape"
)

// Head is a parsed message head. Its strings share one copy of the head's
// bytes.
type Head struct {
	Method, Target string // requests
	Status         int    // responses
	Proto          string
	Fields         []tape.Field
	// BadLines counts header lines that are not fields (obsolete line
	// folding, junk); they are left out of Fields.
	BadLines int
}

// Errors of ParseRequest and ParseResponse.
var (
	ErrStartLine = errors.New("not an HTTP/1.x start line")
	ErrTooLarge  = errors.New("head beyond the tape's limits")
)

// ParseRequest parses a request head: the request line and the header
// lines, each ending in LF or CRLF, up to an empty line or the end of raw.
func ParseRequest(raw []byte) (Head, error) {
	return parse(raw, true)
}

// ParseResponse parses a response head like ParseRequest.
func ParseResponse(raw []byte) (Head, error) {
	return parse(raw, false)
}

func parse(raw []byte, request bool) (Head, error) {
	var h Head
	if len(raw) > MaxHead {
		return h, ErrTooLarge
	}
	nl := bytes.IndexByte(raw, '\n')
	if nl < 0 {
		nl = len(raw)
	}
	first := TrimEOL(raw[:min(nl+1, len(raw))])
	s := string(raw) // the one copy the strings share
	// at returns b, a sub-slice of raw, as the matching part of s.
	at := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		off := cap(raw) - cap(b)
		return s[off : off+len(b)]
	}
	if request {
		m, t, p, ok := RequestLine(first)
		if !ok {
			return h, ErrStartLine
		}
		if len(t) > tape.MaxTarget {
			return h, ErrTooLarge
		}
		h.Method, h.Target, h.Proto = at(m), at(t), at(p)
	} else {
		p, status, ok := StatusLine(first)
		if !ok {
			return h, ErrStartLine
		}
		h.Proto, h.Status = at(p), status
	}
	rest := raw[min(nl+1, len(raw)):]
	for len(rest) > 0 {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			nl = len(rest) - 1
		}
		line := TrimEOL(rest[:nl+1])
		rest = rest[nl+1:]
		if len(line) == 0 {
			break
		}
		name, value, ok := Field(line)
		if !ok {
			h.BadLines++
			continue
		}
		if len(h.Fields) >= tape.MaxHeaders || len(name) > tape.MaxHeaderName || len(value) > tape.MaxHeaderValue {
			return h, ErrTooLarge
		}
		h.Fields = append(h.Fields, tape.Field{Name: at(name), Value: at(value)})
	}
	return h, nil
}
