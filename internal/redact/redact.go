// Package redact decides which values of a recorded HTTP exchange are
// secrets and replaces them, in place, with markers that keep the value's
// length class and a keyed hash of it. Every way into a tape (capture from
// packets, the recording proxy, importers) redacts through a Redactor, so
// a tape holds no secret however it was made.
//
// What is a secret is decided by name, never by value: header names,
// query parameter names, and form, JSON and multipart field names are
// matched, case-insensitively, against name patterns (DefaultRules, plus
// the caller's). It owns the policy and the markers; parsing the fields of
// a request is package fields' job, and the tape format is package tape's.
package redact

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/herd-replay/herd/internal/fields"
	"github.com/herd-replay/herd/tape"
)

// DefaultRules are the name patterns whose values are redacted unless
// redaction is disabled: in header names, query parameter names and body
// field names alike. A pattern is matched against the normalized name
// (lower case, every character but letters and digits dropped, so that
// X-Api-Key, api_key and apiKey are all "apikey"); '*' stands for any run
// of characters. docs/recording.md explains each one.
var DefaultRules = []string{
	"*authorization", "auth", // Authorization, Proxy-Authorization
	"*cookie",  // Cookie, Set-Cookie
	"*token",   // token, access_token, refresh_token, id_token, X-Auth-Token, X-CSRF-Token
	"*secret*", // secret, client_secret, X-Client-Secret
	"*password*", "*passwd*", "*passphrase*", "pwd", "pass",
	"*apikey*", "*accesskey*", "*privatekey*", // api_key, apikey, X-Api-Key, aws_access_key_id
	"*session*", "*sessid", "sid", // session, sessionid, X-Session-Id, PHPSESSID, JSESSIONID
	"*credential*",       // credentials, X-Amz-Credential
	"*signature*", "sig", // signature, X-Amz-Signature, X-Hub-Signature-256
	"*csrf*", "*xsrf*",
	"*jwt*", "*assertion", // client_assertion
	"otp", "totp",
}

// notSecretHeaders are header patterns (as DefaultRules) never redacted
// by default, though a rule matches them: the CORS headers name
// credentials and headers (Access-Control-Allow-Credentials: true), they
// carry none.
var notSecretHeaders = []string{"accesscontrol*"}

// DefaultHeaderRules are the header rules as the tape's metadata lists
// them: DefaultRules, then each notSecretHeaders pattern after a '-'.
func DefaultHeaderRules() []string {
	out := append([]string(nil), DefaultRules...)
	for _, p := range notSecretHeaders {
		out = append(out, "-"+p)
	}
	return out
}

// urlHeaders carry URLs whose query parameters and fragment are redacted
// like a request target's (a Referer or a redirect may carry ?token=).
var urlHeaders = []string{"Referer", "Location", "Content-Location"}

// Options say which secrets a Redactor replaces.
type Options struct {
	Disabled bool // record every value as sent
	// Headers are regular expressions of more header names to redact,
	// each matched against a whole name, case-insensitively (see
	// HeaderPattern). The tape's metadata records them as given.
	Headers []string
	// Query and BodyFields are more name patterns (as DefaultRules:
	// normalized, '*' for any run) for query parameters and for form,
	// JSON and multipart body fields.
	Query      []string
	BodyFields []string
	// Key keys the hash kept in redacted values. Empty: a random key per
	// Redactor, never stored, so values cannot be recovered by guessing.
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

// NamePattern checks a --redact-query or --redact-body-field pattern and
// returns it normalized.
func NamePattern(p string) (string, error) {
	n := normalize(p, true)
	if strings.Trim(n, "*") == "" {
		return "", fmt.Errorf("name pattern %q: give letters or digits (and '*' for any run)", p)
	}
	return n, nil
}

// Kinds of redacted values, as counted.
const (
	KindHeader = "header"
	KindQuery  = "query" // query parameters, of the target and of URL headers
	KindBody   = "body"  // form, JSON and multipart body fields
)

// Counter names, as the tape's STAT block stores them (docs/recording.md):
// CounterPrefix+kind+":"+name counts the values replaced, SkippedPrefix+
// reason the bodies that could not be inspected.
const (
	CounterPrefix = "redacted_"
	SkippedPrefix = "redaction_skipped:"
)

// Reasons a body was left as it was.
const (
	SkipEncoded          = "body_encoded"      // gzip or another content encoding
	SkipInvalidJSON      = "json_invalid"      // declared or looking like JSON, and not JSON
	SkipInvalidMultipart = "multipart_invalid" // a broken multipart structure
	SkipTooLarge         = "body_too_large"
)

// maxNames bounds the distinct names counted per kind: names come from the
// traffic, and a client inventing names must not grow the tape's counters.
const maxNames = 100

// OtherName collects the names beyond maxNames.
const OtherName = "(other)"

// Redactor replaces secrets in exchanges. It is safe for concurrent use.
// The zero value and a nil *Redactor redact nothing.
type Redactor struct {
	opts    Options
	rules   []rule // DefaultRules
	query   []rule // DefaultRules + Options.Query
	body    []rule // DefaultRules + Options.BodyFields
	headers []*regexp.Regexp
	// notHeaders are notSecretHeaders: the default rules leave them, a
	// --redact-header expression does not.
	notHeaders []rule

	qrule, brule fields.Rule

	mu      sync.Mutex
	mac     hash.Hash
	sum     []byte
	markers map[string]string  // recent value → marker: a session's cookie is hashed once
	known   [3]map[string]bool // recent names → secret or not, by kind ('h', 'q', 'b')
	counts  map[string]int64
	keys    map[string]map[string]string // by kind: name → its counter's key
	names   map[string]int               // distinct names counted, per kind
}

// New returns a Redactor for o; an error names a bad pattern.
func New(o Options) (*Redactor, error) {
	r := &Redactor{opts: o}
	if o.Disabled {
		return r, nil
	}
	key := o.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("redaction key: %w", err)
		}
	}
	r.mac = hmac.New(sha256.New, key)
	r.markers = make(map[string]string)
	for i := range r.known {
		r.known[i] = make(map[string]bool)
	}
	r.counts = make(map[string]int64)
	r.names = make(map[string]int)
	r.keys = map[string]map[string]string{KindHeader: {}, KindQuery: {}, KindBody: {}}
	for _, p := range DefaultRules {
		r.rules = append(r.rules, compileRule(p))
	}
	for _, p := range notSecretHeaders {
		r.notHeaders = append(r.notHeaders, compileRule(p))
	}
	r.query, r.body = r.rules, r.rules
	for _, p := range o.Query {
		n, err := NamePattern(p)
		if err != nil {
			return nil, err
		}
		r.query = append(r.query[:len(r.query):len(r.query)], compileRule(n))
	}
	for _, p := range o.BodyFields {
		n, err := NamePattern(p)
		if err != nil {
			return nil, err
		}
		r.body = append(r.body[:len(r.body):len(r.body)], compileRule(n))
	}
	for _, expr := range o.Headers {
		re, err := HeaderPattern(expr)
		if err != nil {
			return nil, err
		}
		r.headers = append(r.headers, re)
	}
	r.qrule = fields.Rule{
		Match:   func(name string) bool { return r.secret('q', name) },
		Replace: func(name, v string) (string, bool) { return r.replace(KindQuery, name, v) },
	}
	r.brule = fields.Rule{
		Match:   func(name string) bool { return r.secret('b', name) },
		Replace: func(name, v string) (string, bool) { return r.replace(KindBody, name, v) },
		Subtree: true, // everything under "credentials" is a secret
	}
	return r, nil
}

// Enabled reports whether r replaces anything.
func (r *Redactor) Enabled() bool { return r != nil && r.mac != nil }

// Meta describes r for the tape's metadata: the rules in force.
func (r *Redactor) Meta() tape.Redaction {
	if !r.Enabled() {
		return tape.Redaction{Enabled: false}
	}
	m := tape.Redaction{Enabled: true, Marker: MarkerForm}
	m.Headers = DefaultHeaderRules()
	for _, expr := range r.opts.Headers {
		m.Headers = append(m.Headers, "re:"+expr)
	}
	for _, q := range r.query {
		m.Query = append(m.Query, q.text)
	}
	for _, b := range r.body {
		m.BodyFields = append(m.BodyFields, b.text)
	}
	return m
}

// Counters returns what was redacted so far, keyed as the tape's STAT block
// stores it: redacted_header:NAME, redacted_query:NAME, redacted_body:NAME
// (values replaced, names in lower case) and redaction_skipped:REASON
// (bodies left as they were).
func (r *Redactor) Counters() map[string]int64 {
	if !r.Enabled() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// ParseCounter splits a counter name of Counters into its kind ("header",
// "query", "body" or "skipped") and name; ok is false for other counters.
func ParseCounter(key string) (kind, name string, ok bool) {
	if rest, found := strings.CutPrefix(key, SkippedPrefix); found {
		return "skipped", rest, true
	}
	rest, found := strings.CutPrefix(key, CounterPrefix)
	if !found {
		return "", "", false
	}
	kind, name, ok = strings.Cut(rest, ":")
	if !ok || (kind != KindHeader && kind != KindQuery && kind != KindBody) {
		return "", "", false
	}
	return kind, name, true
}

// Exchange redacts e in place: the request's headers, query parameters
// and form, JSON or multipart body fields, and the response's headers
// (Set-Cookie...). It reports whether anything was replaced, and then
// sets the tape.Redacted flag. A body that changes length changes
// ReqBodyLen by as much, so that it still tells a truncated body. Values
// that already are markers are left as they are: redacting twice changes
// nothing.
func (r *Redactor) Exchange(e *tape.Exchange) bool {
	if !r.Enabled() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := r.fields(e.ReqHeader)
	changed = r.fields(e.RespHeader) || changed
	if t, n := fields.Target(e.Target, r.qrule); n > 0 {
		e.Target = t
		changed = true
	}
	if len(e.ReqBody) > 0 {
		ct, _ := e.Header("Content-Type")
		ce, _ := e.Header("Content-Encoding")
		truncated := e.Flags&tape.ReqBodyTruncated != 0 || int64(len(e.ReqBody)) < e.ReqBodyLen
		out, n, err := fields.Body(e.ReqBody, ct, ce, truncated, r.brule)
		var se *fields.SyntaxError
		switch {
		case errors.Is(err, fields.ErrEncoded):
			r.counts[SkippedPrefix+SkipEncoded]++
		case errors.Is(err, fields.ErrTooLarge):
			r.counts[SkippedPrefix+SkipTooLarge]++
		case errors.As(err, &se) && se.Format == "multipart":
			r.counts[SkippedPrefix+SkipInvalidMultipart]++
		case err != nil:
			r.counts[SkippedPrefix+SkipInvalidJSON]++
		}
		if n > 0 {
			e.ReqBodyLen += int64(len(out) - len(e.ReqBody))
			e.ReqBody = out
			changed = true
		}
	}
	if changed {
		e.Flags |= tape.Redacted
	}
	return changed
}

// fields redacts header values in place and reports whether any changed.
func (r *Redactor) fields(fs []tape.Field) bool {
	changed := false
	for i := range fs {
		f := &fs[i]
		if r.secret('h', f.Name) {
			if v, ok := r.replace(KindHeader, f.Name, f.Value); ok {
				f.Value = v
				changed = true
			}
			continue
		}
		for _, h := range urlHeaders {
			if len(h) == len(f.Name) && strings.EqualFold(h, f.Name) {
				if v, n := fields.URL(f.Value, r.qrule); n > 0 {
					f.Value = v
					changed = true
				}
			}
		}
	}
	return changed
}

// secret reports whether a name of kind k ('h', 'q', 'b') is redacted.
// Names repeat across exchanges, so the answer is remembered. name may
// alias a body (fields.Rule.Match): it is cloned to be kept.
func (r *Redactor) secret(k byte, name string) bool {
	known := r.known[strings.IndexByte("hqb", k)]
	if s, ok := known[name]; ok {
		return s
	}
	var s bool
	n := normalize(name, false)
	switch k {
	case 'h':
		s = matchAny(r.rules, n) && !matchAny(r.notHeaders, n)
		for _, re := range r.headers {
			s = s || re.MatchString(name)
		}
	case 'q':
		s = matchAny(r.query, n)
	default:
		s = matchAny(r.body, n)
	}
	if len(known) >= 4096 {
		clear(known)
	}
	known[strings.Clone(name)] = s
	return s
}

// replace returns the marker for a secret value and counts it; an empty
// value, or one already a marker, is kept.
func (r *Redactor) replace(kind, name, value string) (string, bool) {
	if value == "" || IsMarker(value) {
		return value, false
	}
	r.count(kind, name)
	return r.marker(value), true
}

func (r *Redactor) count(kind, name string) {
	keys := r.keys[kind]
	key, ok := keys[name]
	if !ok {
		key = CounterPrefix + kind + ":" + counterName(name)
		if _, ok := r.counts[key]; !ok {
			if r.names[kind] >= maxNames {
				key = CounterPrefix + kind + ":" + OtherName
			} else {
				r.names[kind]++
			}
		}
		if len(keys) < 4096 {
			keys[name] = key
		}
	}
	r.counts[key]++
}

// counterName is a name as counted: lower case, printable ASCII, at most
// 64 bytes.
func counterName(name string) string {
	if len(name) > 64 {
		name = name[:64]
	}
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if c < 0x21 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// MarkerForm describes the markers a Redactor writes, for the tape's
// metadata.
const MarkerForm = tape.RedactedPrefix + "L<length class>:<16 hex digits of HMAC-SHA256>"

// marker returns the replacement of a secret value:
// herd-redacted:L<class>:<16 hex digits>, where class is the smallest
// power of two, at least 8, not below the value's length in bytes, and the
// digits begin HMAC-SHA256(key, value). Equal values get equal markers,
// different values (all but surely) different ones.
func (r *Redactor) marker(v string) string {
	if m, ok := r.markers[v]; ok {
		return m
	}
	r.mac.Reset()
	r.mac.Write([]byte(v))
	r.sum = r.mac.Sum(r.sum[:0])
	m := tape.RedactedPrefix + "L" + strconv.Itoa(LengthClass(len(v))) + ":" + hex.EncodeToString(r.sum[:8])
	if len(r.markers) >= 4096 {
		clear(r.markers)
	}
	r.markers[v] = m
	return m
}

// LengthClass is the length class of a value of n bytes: the smallest
// power of two, at least 8, that is not below n.
func LengthClass(n int) int {
	c := 8
	for c < n {
		c <<= 1
	}
	return c
}

// IsMarker reports whether s is a redaction marker: herd-redacted:L16:
// and 16 hex digits, or herd-redacted: and 16 hex digits as tapes written
// before length classes have them.
func IsMarker(s string) bool {
	rest, ok := strings.CutPrefix(s, tape.RedactedPrefix)
	if !ok {
		return false
	}
	if c, digits, ok := strings.Cut(rest, ":"); ok {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "L"))
		if !strings.HasPrefix(c, "L") || err != nil || n < 8 || n&(n-1) != 0 {
			return false
		}
		rest = digits
	}
	if len(rest) != 16 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !('0' <= rest[i] && rest[i] <= '9' || 'a' <= rest[i] && rest[i] <= 'f') {
			return false
		}
	}
	return true
}

// HasMarker reports whether s holds a marker, whole or after a name as in
// a Cookie header (a=herd-redacted:...).
func HasMarker(s string) bool { return strings.Contains(s, tape.RedactedPrefix) }

// rule is a compiled name pattern.
type rule struct {
	text  string   // as given, normalized
	parts []string // text split at '*'
}

func compileRule(p string) rule { return rule{text: p, parts: strings.Split(p, "*")} }

// match reports whether the normalized name n matches: the parts appear
// in order, the first at the start and the last at the end.
func (r rule) match(n string) bool {
	if len(r.parts) == 1 {
		return n == r.parts[0]
	}
	first, last := r.parts[0], r.parts[len(r.parts)-1]
	if !strings.HasPrefix(n, first) {
		return false
	}
	n = n[len(first):]
	for _, p := range r.parts[1 : len(r.parts)-1] {
		i := strings.Index(n, p)
		if i < 0 {
			return false
		}
		n = n[i+len(p):]
	}
	return strings.HasSuffix(n, last)
}

func matchAny(rules []rule, n string) bool {
	for _, r := range rules {
		if r.match(n) {
			return true
		}
	}
	return false
}

// normalize lowers a name and drops everything but letters and digits
// (and '*' in a pattern).
func normalize(s string, pattern bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteRune(c)
		case 'A' <= c && c <= 'Z':
			b.WriteRune(c + 'a' - 'A')
		case c == '*' && pattern:
			b.WriteRune(c)
		case c >= utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c)):
			b.WriteRune(unicode.ToLower(c))
		}
	}
	return b.String()
}
