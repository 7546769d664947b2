package capture

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"regexp"
	"strings"

	"github.com/herd-replay/herd/tape"
)

// DefaultRedactedHeaders are replaced unless redaction is disabled.
var DefaultRedactedHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token",
}

// Redaction says which secrets are replaced at capture.
type Redaction struct {
	Disabled bool // record every value as sent
	// Headers are regular expressions of more header names to redact,
	// each matched against a whole name, case-insensitively (see
	// HeaderPattern). The tape's metadata records them as given.
	Headers []string
	Query   []string // query parameter names whose values are redacted
	// Key keys the hash kept in redacted values. Empty: a random key per
	// capture, never stored, so values cannot be recovered by guessing.
	Key []byte
}

// HeaderPattern compiles a --redact-header expression: it must match the
// whole header name, compared case-insensitively.
func HeaderPattern(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`(?i)^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("header pattern %q: %w", expr, err)
	}
	return re, nil
}

// Meta describes r for the tape's metadata.
func (r Redaction) Meta() tape.Redaction {
	if r.Disabled {
		return tape.Redaction{Enabled: false}
	}
	m := tape.Redaction{Enabled: true, Query: append([]string(nil), r.Query...)}
	for _, h := range DefaultRedactedHeaders {
		m.Headers = append(m.Headers, strings.ToLower(h))
	}
	for _, expr := range r.Headers {
		m.Headers = append(m.Headers, "re:"+expr)
	}
	return m
}

// redactor replaces secret values with a keyed hash of them.
type redactor struct {
	on    bool
	res   []*regexp.Regexp // Redaction.Headers, compiled
	query map[string]bool
	mac   hash.Hash
	sum   []byte
	cache map[string]string // recent value → marker, so a session's cookie is hashed once
}

func newRedactor(r Redaction) (*redactor, error) {
	if r.Disabled {
		return &redactor{}, nil
	}
	key := r.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("redaction key: %w", err)
		}
	}
	rd := &redactor{
		on:    true,
		query: make(map[string]bool),
		mac:   hmac.New(sha256.New, key),
		cache: make(map[string]string),
	}
	for _, expr := range r.Headers {
		re, err := HeaderPattern(expr)
		if err != nil {
			return nil, err
		}
		rd.res = append(rd.res, re)
	}
	for _, q := range r.Query {
		rd.query[q] = true
	}
	return rd, nil
}

// marker returns the replacement for a secret value: the prefix and 16 hex
// digits of HMAC-SHA256(key, value), so equal secrets stay equal.
func (rd *redactor) marker(v string) string {
	if m, ok := rd.cache[v]; ok {
		return m
	}
	rd.mac.Reset()
	rd.mac.Write([]byte(v))
	rd.sum = rd.mac.Sum(rd.sum[:0])
	m := tape.RedactedPrefix + hex.EncodeToString(rd.sum[:8])
	if len(rd.cache) >= 4096 {
		clear(rd.cache)
	}
	rd.cache[v] = m
	return m
}

// secretHeader reports whether the header name is redacted. It runs for
// every header of every exchange, so it does not allocate.
func (rd *redactor) secretHeader(name string) bool {
	for _, h := range DefaultRedactedHeaders {
		if len(h) == len(name) && strings.EqualFold(h, name) {
			return true
		}
	}
	for _, re := range rd.res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// fields redacts header values in place and reports whether any changed.
func (rd *redactor) fields(fs []tape.Field) bool {
	changed := false
	for i := range fs {
		if rd.secretHeader(fs[i].Name) {
			fs[i].Value = rd.marker(fs[i].Value)
			changed = true
		}
	}
	return changed
}

// target redacts the values of secret query parameters, keeping everything
// else of the target byte for byte.
func (rd *redactor) target(t string) (string, bool) {
	if len(rd.query) == 0 {
		return t, false
	}
	q := strings.IndexByte(t, '?')
	if q < 0 {
		return t, false
	}
	frag := ""
	rest := t[q+1:]
	if h := strings.IndexByte(rest, '#'); h >= 0 {
		rest, frag = rest[:h], rest[h:]
	}
	var b strings.Builder
	changed := false
	for i, part := range strings.Split(rest, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, value, hasValue := strings.Cut(part, "=")
		key := name
		if u, err := url.QueryUnescape(name); err == nil {
			key = u
		}
		if hasValue && rd.query[key] {
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(rd.marker(value))
			changed = true
			continue
		}
		b.WriteString(part)
	}
	if !changed {
		return t, false
	}
	return t[:q+1] + b.String() + frag, true
}

// exchange redacts e in place and reports whether anything was replaced.
func (rd *redactor) exchange(e *tape.Exchange) bool {
	if !rd.on {
		return false
	}
	a := rd.fields(e.ReqHeader)
	b := rd.fields(e.RespHeader)
	t, c := rd.target(e.Target)
	e.Target = t
	return a || b || c
}

// Redactor redacts exchanges exactly as a capture does. It is how the
// other ways in (herd record, herd import) apply the same rules. It is not
// safe for concurrent use.
type Redactor struct{ rd *redactor }

// NewRedactor returns the Redactor for r.
func NewRedactor(r Redaction) (*Redactor, error) {
	rd, err := newRedactor(r)
	if err != nil {
		return nil, err
	}
	return &Redactor{rd: rd}, nil
}

// Exchange redacts e in place and reports whether anything was replaced.
func (r *Redactor) Exchange(e *tape.Exchange) bool { return r.rd.exchange(e) }
