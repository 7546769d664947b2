// Package fields finds and rewrites the named values of an HTTP request:
// the query parameters of a target or URL, the fields of an
// application/x-www-form-urlencoded body, the members of a JSON body at any
// depth, and the simple fields of a multipart/form-data body. Redaction
// (capture) and staging values (replay) both rewrite requests through it,
// so they agree on what a field is.
//
// A rewrite changes only the bytes of the values it replaces: everything
// else (order, spacing, escapes, other fields) is kept byte for byte. Work
// is linear in the input, and memory bounded by it, whatever its nesting.
// It never decides what to rewrite: a Rule does.
package fields

import (
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
)

// Rule decides which fields are rewritten and how.
type Rule struct {
	// Match reports whether a field with this name (decoded) is
	// rewritten. Nil matches nothing. It runs for every field, so the name
	// may share memory with the body being walked: it is valid only
	// during the call (strings.Clone it to keep it).
	Match func(name string) bool
	// Replace returns the new value (decoded) of a matched field, given
	// its name and value (decoded), and false to keep the value.
	Replace func(name, value string) (string, bool)
	// Subtree: a matched JSON member whose value is an object or an array
	// has every string and number inside replaced, under the member's
	// name. Without it a string or number is matched by its own name: the
	// key of the nearest enclosing member (array elements take the name
	// of the member that holds the array).
	Subtree bool
}

// SyntaxError is a body that does not parse as its format; it is left as
// it was.
type SyntaxError struct {
	Format string // "json" or "multipart"
	Offset int    // byte of the body where parsing failed
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s body: %s at byte %d", e.Format, e.Msg, e.Offset)
}

// ErrEncoded is a body under a Content-Encoding (gzip, br ...): its fields
// cannot be seen without decoding it, and it is left as it was.
var ErrEncoded = errors.New("body has a content encoding")

// ErrTooLarge is a body beyond the 2 GiB the walkers index.
var ErrTooLarge = errors.New("body too large to inspect")

// Format is how a body's fields are laid out.
type Format int

const (
	None      Format = iota // no fields that herd reads
	Form                    // application/x-www-form-urlencoded
	JSON                    // application/json and +json types, or a body that looks like JSON
	Multipart               // multipart/form-data
)

func (f Format) String() string {
	return [...]string{"none", "form", "json", "multipart"}[f]
}

// Detect tells a body's format from its Content-Type, or, when the type
// names none of them, from its first byte ('{' or '[': JSON). boundary is
// the multipart boundary.
func Detect(contentType string, body []byte) (f Format, boundary string) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(strings.ToLower(contentType), ";")
		mt = strings.TrimSpace(mt)
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		return Form, ""
	case mt == "multipart/form-data":
		return Multipart, params["boundary"]
	case strings.Contains(mt, "json"):
		return JSON, ""
	case strings.HasPrefix(mt, "multipart/"):
		return None, ""
	}
	if i := firstNonSpace(body); i < len(body) && (body[i] == '{' || body[i] == '[') {
		return JSON, ""
	}
	return None, ""
}

// Body rewrites the fields of a request body. truncated says the body was
// cut (the capture's body limit): a JSON or multipart body that ends early
// is then rewritten up to its end, a value cut short included, instead of
// being refused. It returns the body (the same slice when nothing
// changed), the number of values replaced, and ErrEncoded, ErrTooLarge or
// a *SyntaxError when the body could not be read (it is then unchanged).
func Body(body []byte, contentType, contentEncoding string, truncated bool, r Rule) ([]byte, int, error) {
	f, boundary := Detect(contentType, body)
	if f == None || len(body) == 0 || r.Match == nil {
		return body, 0, nil
	}
	if ce := strings.TrimSpace(contentEncoding); ce != "" && !strings.EqualFold(ce, "identity") {
		return body, 0, ErrEncoded
	}
	if len(body) >= 1<<31 {
		return body, 0, ErrTooLarge
	}
	switch f {
	case Form:
		s, n := Pairs(string(body), r)
		if n == 0 {
			return body, 0, nil
		}
		return []byte(s), n, nil
	case Multipart:
		return MultipartBody(body, boundary, truncated, r)
	}
	return JSONBody(body, truncated, r)
}

// Target rewrites the query parameters of a request target (origin or
// absolute form) and returns it with the number of values replaced.
func Target(target string, r Rule) (string, int) {
	q := strings.IndexByte(target, '?')
	if q < 0 || r.Match == nil {
		return target, 0
	}
	rest, frag := target[q+1:], ""
	if h := strings.IndexByte(rest, '#'); h >= 0 {
		rest, frag = rest[:h], rest[h:]
	}
	s, n := Pairs(rest, r)
	if n == 0 {
		return target, 0
	}
	return target[:q+1] + s + frag, n
}

// URL rewrites the query parameters of a URL held in a header (Referer,
// Location) and the name=value pairs of its fragment, where OAuth puts
// tokens (#access_token=...).
func URL(u string, r Rule) (string, int) {
	if r.Match == nil {
		return u, 0
	}
	h := strings.IndexByte(u, '#')
	if h < 0 {
		return Target(u, r)
	}
	base, n := Target(u[:h], r)
	frag, m := Pairs(u[h+1:], r)
	if n+m == 0 {
		return u, 0
	}
	return base + "#" + frag, n + m
}

// Pairs rewrites a query string or form body: name=value pairs separated
// by '&'. Names and values are decoded (percent escapes, '+' as space)
// for the rule; a replacement is percent-encoded where it must be.
func Pairs(s string, r Rule) (string, int) {
	if r.Match == nil || !strings.Contains(s, "=") {
		return s, 0
	}
	var b strings.Builder
	n, done := 0, 0 // done: bytes of s already copied to b
	for i := 0; i <= len(s); {
		j := strings.IndexByte(s[i:], '&')
		if j < 0 {
			j = len(s)
		} else {
			j += i
		}
		part := s[i:j]
		if name, value, ok := strings.Cut(part, "="); ok {
			if r.Match(decode(name)) {
				if repl, ok := r.Replace(decode(name), decode(value)); ok {
					if b.Len() == 0 {
						b.Grow(len(s) + 32)
					}
					b.WriteString(s[done : i+len(name)+1])
					b.WriteString(Escape(repl))
					done = j
					n++
				}
			}
		}
		i = j + 1
	}
	if n == 0 {
		return s, 0
	}
	b.WriteString(s[done:])
	return b.String(), n
}

// decode is a query component decoded, or as it is when it does not
// decode.
func decode(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// Escape percent-encodes a query or form value: everything but letters,
// digits and -._~:@/!$'()*,; so that a redaction marker
// (herd-redacted:L16:...) stays readable.
func Escape(s string) string {
	const hex = "0123456789ABCDEF"
	clean := true
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func plain(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:@/!$'()*,;", c) >= 0
}
