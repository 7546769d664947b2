package fields

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
	"unsafe"
)

// JSONBody rewrites the strings and numbers of a JSON body, or of a
// sequence of JSON values (NDJSON), by the name of their member (see
// Rule). A replacement is written as a JSON string; true, false and null
// are never replaced. A body that is not JSON is returned unchanged with a
// *SyntaxError, unless truncated and merely cut short: then what precedes
// the cut is rewritten, a matched value cut in the middle included, and
// no error is returned.
//
// The walk is iterative: any nesting costs one byte per open array and
// twelve per open object, never the goroutine's stack.
func JSONBody(in []byte, truncated bool, r Rule) ([]byte, int, error) {
	if r.Match == nil {
		return in, 0, nil
	}
	if len(in) >= 1<<31 {
		return in, 0, ErrTooLarge
	}
	w := &jsonWalker{in: in, r: r, matchAt: -1}
	if err := w.walk(truncated); err != nil && !(truncated && w.eof) {
		return in, 0, err
	}
	return w.result(), w.n, nil
}

// jsonName is the current member of an open object.
type jsonName struct {
	s, e    int32 // its key token, quotes included
	matched bool  // Rule.Match of the key
}

type jsonWalker struct {
	in  []byte
	r   Rule
	pos int

	kinds []byte     // open containers, '{' or '['
	names []jsonName // one per open object
	// matchAt is the depth (index in kinds) of the container that began a
	// matched subtree (Rule.Subtree), or -1.
	matchAt   int
	matchName string

	out  []byte // the rewritten body so far, up to last
	last int
	n    int
	eof  bool // the walk failed for want of input
}

func (w *jsonWalker) fail(msg string) error {
	if w.pos >= len(w.in) {
		w.eof = true
		msg = "unexpected end of the body"
	}
	return &SyntaxError{Format: "json", Offset: w.pos, Msg: msg}
}

func (w *jsonWalker) skipSpace() {
	for w.pos < len(w.in) {
		switch w.in[w.pos] {
		case ' ', '\t', '\r', '\n':
			w.pos++
		default:
			return
		}
	}
}

func firstNonSpace(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// Walk states: what the next token may be.
const (
	stTop      = iota // a top-level value, or the end of the body
	stValue           // a value
	stArrFirst        // a value or ']'
	stObjFirst        // a member name or '}'
	stKey             // a member name
	stAfter           // ',' or the end of the open container
)

func (w *jsonWalker) walk(truncated bool) error {
	st := stTop
	for {
		w.skipSpace()
		if w.pos >= len(w.in) {
			if st == stTop {
				return nil
			}
			return w.fail("")
		}
		c := w.in[w.pos]
		switch st {
		case stObjFirst, stKey:
			if st == stObjFirst && c == '}' {
				w.pos++
				st = w.pop()
				continue
			}
			if c != '"' {
				return w.fail("want a member name")
			}
			s := w.pos
			if err := w.str(); err != nil {
				return err
			}
			e := w.pos
			w.skipSpace()
			if w.pos >= len(w.in) {
				return w.fail("")
			}
			if w.in[w.pos] != ':' {
				return w.fail("want ':' after a member name")
			}
			w.pos++
			nm := &w.names[len(w.names)-1]
			nm.s, nm.e = int32(s), int32(e)
			nm.matched = w.matchAt < 0 && w.r.Match(w.peek(s, e))
			st = stValue
		case stAfter:
			open := w.kinds[len(w.kinds)-1]
			switch {
			case c == ',':
				w.pos++
				st = stValue
				if open == '{' {
					st = stKey
				}
			case c == '}' && open == '{', c == ']' && open == '[':
				w.pos++
				st = w.pop()
			default:
				if open == '{' {
					return w.fail("want ',' or '}'")
				}
				return w.fail("want ',' or ']'")
			}
		default: // stTop, stValue, stArrFirst
			if st == stArrFirst && c == ']' {
				w.pos++
				st = w.pop()
				continue
			}
			if c == '{' || c == '[' {
				w.push(c)
				w.pos++
				st = stArrFirst
				if c == '{' {
					st = stObjFirst
				}
				continue
			}
			start := w.pos
			var err error
			switch {
			case c == '"':
				err = w.str()
			case c == '-' || '0' <= c && c <= '9':
				err = w.number()
			case c == 't':
				err = w.literal("true")
			case c == 'f':
				err = w.literal("false")
			case c == 'n':
				err = w.literal("null")
			default:
				return w.fail("want a value")
			}
			scalar := c == '"' || c == '-' || '0' <= c && c <= '9'
			name, matched := w.leaf()
			if err != nil {
				if w.eof && truncated && matched && scalar {
					// A matched value cut by the end of the body: what
					// was captured of it is still a secret.
					w.replace(start, len(w.in), name, string(bytes.TrimPrefix(w.in[start:], []byte{'"'})))
				}
				return err
			}
			if matched && scalar {
				v := string(w.in[start:w.pos])
				if c == '"' {
					v = w.unquote(start, w.pos)
				}
				w.replace(start, w.pos, name, v)
			}
			st = w.after()
		}
	}
}

// after is the state once a value is complete.
func (w *jsonWalker) after() int {
	if len(w.kinds) == 0 {
		return stTop
	}
	return stAfter
}

func (w *jsonWalker) push(c byte) {
	if w.matchAt < 0 && w.r.Subtree && len(w.names) > 0 {
		if nm := w.names[len(w.names)-1]; nm.matched {
			w.matchAt, w.matchName = len(w.kinds), w.unquote(int(nm.s), int(nm.e))
		}
	}
	w.kinds = append(w.kinds, c)
	if c == '{' {
		w.names = append(w.names, jsonName{})
	}
}

func (w *jsonWalker) pop() int {
	if w.kinds[len(w.kinds)-1] == '{' {
		w.names = w.names[:len(w.names)-1]
	}
	w.kinds = w.kinds[:len(w.kinds)-1]
	if w.matchAt == len(w.kinds) {
		w.matchAt = -1
	}
	return w.after()
}

// leaf names the scalar about to be read and says whether it is matched.
func (w *jsonWalker) leaf() (string, bool) {
	if w.matchAt >= 0 {
		return w.matchName, true
	}
	if len(w.names) == 0 {
		return "", false
	}
	nm := w.names[len(w.names)-1]
	if !nm.matched {
		return "", false
	}
	return w.unquote(int(nm.s), int(nm.e)), true
}

// str scans a string token.
func (w *jsonWalker) str() error {
	w.pos++ // the opening quote
	for w.pos < len(w.in) {
		c := w.in[w.pos]
		switch {
		case c == '"':
			w.pos++
			return nil
		case c == '\\':
			w.pos++
			if w.pos >= len(w.in) {
				return w.fail("")
			}
			switch w.in[w.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				w.pos++
			case 'u':
				w.pos++
				for k := 0; k < 4; k++ {
					if w.pos >= len(w.in) {
						return w.fail("")
					}
					if !isHex(w.in[w.pos]) {
						return w.fail(`bad \u escape`)
					}
					w.pos++
				}
			default:
				return w.fail("bad escape")
			}
		case c < 0x20:
			return w.fail("control character in a string")
		default:
			w.pos++
		}
	}
	return w.fail("")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number scans a number token: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (w *jsonWalker) number() error {
	in := w.in
	if in[w.pos] == '-' {
		w.pos++
	}
	digits := func() int {
		s := w.pos
		for w.pos < len(in) && '0' <= in[w.pos] && in[w.pos] <= '9' {
			w.pos++
		}
		return w.pos - s
	}
	switch {
	case w.pos >= len(in):
		return w.fail("")
	case in[w.pos] == '0':
		w.pos++
	case '1' <= in[w.pos] && in[w.pos] <= '9':
		digits()
	default:
		return w.fail("bad number")
	}
	if w.pos < len(in) && in[w.pos] == '.' {
		w.pos++
		if digits() == 0 {
			return w.fail("bad number")
		}
	}
	if w.pos < len(in) && (in[w.pos] == 'e' || in[w.pos] == 'E') {
		w.pos++
		if w.pos < len(in) && (in[w.pos] == '+' || in[w.pos] == '-') {
			w.pos++
		}
		if digits() == 0 {
			return w.fail("bad number")
		}
	}
	return nil
}

func (w *jsonWalker) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if w.pos >= len(w.in) {
			return w.fail("")
		}
		if w.in[w.pos] != word[i] {
			return w.fail("want a value")
		}
		w.pos++
	}
	return nil
}

// peek is the string token in[s:e] decoded, for Rule.Match: without an
// escape, a view of the body's bytes (no copy: Match runs for every key of
// every body, and the body does not change during the walk).
func (w *jsonWalker) peek(s, e int) string {
	raw := w.in[s+1 : e-1]
	if len(raw) == 0 {
		return ""
	}
	if bytes.IndexByte(raw, '\\') >= 0 {
		return w.unquote(s, e)
	}
	return unsafe.String(&raw[0], len(raw))
}

// unquote decodes the string token in[s:e].
func (w *jsonWalker) unquote(s, e int) string {
	raw := w.in[s:e]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return string(raw[1 : len(raw)-1])
	}
	return v
}

func (w *jsonWalker) replace(s, e int, name, value string) {
	repl, ok := w.r.Replace(name, value)
	if !ok {
		return
	}
	if w.out == nil {
		w.out = make([]byte, 0, len(w.in)+64)
	}
	w.out = append(w.out, w.in[w.last:s]...)
	w.out = AppendJSONString(w.out, repl)
	w.last = e
	w.n++
}

func (w *jsonWalker) result() []byte {
	if w.n == 0 {
		return w.in
	}
	return append(w.out, w.in[w.last:]...)
}

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 as U+FFFD, the rest as is.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
