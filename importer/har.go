package importer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/tape"
)

// A HAR file is one JSON object; its log.entries array is read one entry
// at a time with encoding/json's token stream, so memory is bounded by the
// largest entry, not the file.

type harEntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            num         `json:"time"`
	Request         harRequest  `json:"request"`
	Response        harResponse `json:"response"`
	Timings         harTimings  `json:"timings"`
	Connection      str         `json:"connection"`
	ServerIPAddress str         `json:"serverIPAddress"`
}

type harRequest struct {
	Method      str          `json:"method"`
	URL         str          `json:"url"`
	HTTPVersion str          `json:"httpVersion"`
	Headers     []harNV      `json:"headers"`
	PostData    *harPostData `json:"postData"`
	BodySize    *num         `json:"bodySize"`
}

type harNV struct {
	Name  str `json:"name"`
	Value str `json:"value"`
}

type harPostData struct {
	MimeType str     `json:"mimeType"`
	Text     str     `json:"text"`
	Encoding str     `json:"encoding"` // not in HAR 1.2, written by some tools
	Params   []harNV `json:"params"`
}

type harResponse struct {
	Status      num        `json:"status"`
	HTTPVersion str        `json:"httpVersion"`
	Headers     []harNV    `json:"headers"`
	Content     harContent `json:"content"`
	BodySize    *num       `json:"bodySize"`
}

type harContent struct {
	Size     *num `json:"size"`
	Text     str  `json:"text"`
	Encoding str  `json:"encoding"`
}

type harTimings struct {
	Blocked num `json:"blocked"`
	DNS     num `json:"dns"`
	Connect num `json:"connect"` // includes ssl
	Send    num `json:"send"`
	Wait    num `json:"wait"`
	Receive num `json:"receive"`
}

// num is a JSON number that may also be written as a string or null:
// exporters differ, and a field of the wrong type must not cost the entry.
type num float64

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		*n = 0
		return nil
	}
	*n = num(v)
	return nil
}

// ms converts a HAR duration in milliseconds to nanoseconds; -1 (not
// applicable) and other negative values count as 0.
func (n num) ms() int64 {
	if n <= 0 {
		return 0
	}
	return int64(float64(n) * 1e6)
}

// str is a JSON string that may also be written as a number or null.
type str string

func (s *str) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = str(v)
		return nil
	}
	if string(b) == "null" {
		*s = ""
		return nil
	}
	*s = str(b) // a number, as written
	return nil
}

type harImporter struct {
	r      *run
	conns  *connTable[string]
	h3     int64
	single int64 // entries without a connection id
}

func newHAR(r *run) *harImporter {
	return &harImporter{r: r, conns: newConnTable[string](r)}
}

func (h *harImporter) notes() []string {
	var notes []string
	if n := h.r.stats.Grouped; n > 0 {
		notes = append(notes, fmt.Sprintf("connections: %d entries grouped into connections by their HAR connection ids", n))
	}
	if h.single > 0 {
		notes = append(notes, fmt.Sprintf("connections: %d entries without a connection id have a connection each", h.single))
	}
	if h.h3 > 0 {
		notes = append(notes, fmt.Sprintf("%d HTTP/3 entries are recorded as HTTP/2.0 (the same request semantics; tapes have no HTTP/3)", h.h3))
	}
	return notes
}

func (h *harImporter) finish() error { return nil }

// read walks the top-level object to log.entries and imports each entry.
func (h *harImporter) read(name string, r io.Reader) error {
	dec := json.NewDecoder(r)
	err := h.walk(dec)
	if err == nil {
		return nil
	}
	if errors.Is(err, errStop) {
		return h.r.err
	}
	// Broken JSON (a file cut short): what came before is kept, the rest
	// of the file is counted as one malformed entry.
	h.r.stats.Entries++
	h.r.stats.discard("har_syntax_error")
	h.r.warn(fmt.Sprintf("%s: not valid JSON after byte %d (%v); the entries before it were imported", name, dec.InputOffset(), err))
	return nil
}

var errStop = errors.New("stop")

// walk reads the object {"log": {"entries": [...]}}, skipping every
// other member on the way.
func (h *harImporter) walk(dec *json.Decoder) error {
	return members(dec, "log", func() error {
		return members(dec, "entries", func() error { return h.entries(dec) })
	})
}

// members reads an object, calls fn to read the value of member key and
// skips every other value.
func members(dec *json.Decoder, key string, fn func() error) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		if k == key {
			err = fn()
		} else {
			err = skipValue(dec)
		}
		if err != nil {
			return err
		}
	}
	_, err := dec.Token() // }
	return err
}

func (h *harImporter) entries(dec *json.Decoder) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	for dec.More() {
		var e harEntry
		err := dec.Decode(&e)
		var te *json.UnmarshalTypeError
		if err != nil && !errors.As(err, &te) {
			return err
		}
		h.r.stats.Entries++
		if h.r.check() != nil {
			return errStop
		}
		h.entry(&e)
	}
	_, err := dec.Token() // ]
	return err
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != d {
		return fmt.Errorf("expected %q, found %v", d, t)
	}
	return nil
}

// skipValue skips one value token by token, holding no more than one
// token.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// entry turns one HAR entry into an exchange.
func (h *harImporter) entry(he *harEntry) {
	rq, rs := &he.Request, &he.Response
	if rq.Method == "" || rq.URL == "" {
		h.r.stats.discard("entry_malformed")
		return
	}
	started, err := time.Parse(time.RFC3339Nano, string(he.StartedDateTime))
	if err != nil {
		h.r.stats.discard("time_malformed")
		return
	}
	scheme, authority, target := splitURL(string(rq.URL))
	proto, h3 := harProto(string(rq.HTTPVersion))
	if h3 {
		h.h3++
	}
	e := &tape.Exchange{Method: string(rq.Method), Target: target, Proto: proto}
	e.ReqHeader = harRequestHeader(rq.Headers, proto, scheme, authority)

	t := &he.Timings
	start := started.UnixNano()
	e.ReqStart = start + t.Blocked.ms() + t.DNS.ms() + t.Connect.ms()
	e.ReqEnd = e.ReqStart + t.Send.ms()

	// The request body: text, base64 when said so, or the form params.
	var b body
	b.max = h.r.opts.MaxBody
	declared := int64(0)
	if rq.BodySize != nil && *rq.BodySize > 0 {
		declared = int64(*rq.BodySize)
	}
	if pd := rq.PostData; pd != nil {
		data := []byte(pd.Text)
		if strings.EqualFold(string(pd.Encoding), "base64") {
			if d, err := base64.StdEncoding.DecodeString(string(pd.Text)); err == nil {
				data = d
			}
		}
		if len(data) == 0 && len(pd.Params) > 0 {
			data = formBody(pd.Params)
		}
		b.write(data)
	}
	b.set(e, declared)

	status := int(rs.Status)
	if status <= 0 || status > 999 {
		e.Flags |= tape.NoResponse
	} else {
		e.Status = status
		e.RespProto, _ = harProto(string(rs.HTTPVersion))
		for _, f := range rs.Headers {
			if !strings.HasPrefix(string(f.Name), ":") {
				e.RespHeader = append(e.RespHeader, tape.Field{Name: string(f.Name), Value: string(f.Value)})
			}
		}
		e.RespBodyLen, e.RespBodyHash = harResponseBody(rs, h.r.crc)
		e.RespStart = e.ReqEnd + t.Wait.ms()
		e.RespEnd = start + he.Time.ms()
		if e.RespEnd < e.RespStart {
			e.RespEnd = e.RespStart + t.Receive.ms()
		}
		if status == 101 {
			e.Flags |= tape.Upgraded
		}
	}

	// Connection ids group entries. Firefox writes the server's port
	// there instead of an id: that groups nothing.
	var c *tableConn
	if id := string(he.Connection); id != "" && id != urlPort(scheme, authority) {
		c = h.conns.assign(string(he.ServerIPAddress)+"|"+id, e.ReqStart)
		e.ConnID = c.id
	} else {
		e.ConnID = h.r.newConn()
		h.single++
	}
	h.r.emit(e, c)
}

// harRequestHeader builds the request header in the tape's convention:
// HTTP/2 starts with :authority and :scheme and has no other pseudo
// header (method and path are in the exchange) and no Host; HTTP/1.x has
// no pseudo header and a Host (which every HTTP/1.1 request carries, even
// when the exporter left it out).
func harRequestHeader(hs []harNV, proto, scheme, authority string) []tape.Field {
	var out []tape.Field
	host := ""
	for _, f := range hs {
		switch n := strings.ToLower(string(f.Name)); n {
		case ":authority":
			authority = string(f.Value)
		case ":scheme":
			scheme = string(f.Value)
		case "host":
			host = string(f.Value)
		}
	}
	if proto == tape.HTTP2 {
		if authority == "" {
			authority = host
		}
		out = append(out, tape.Field{Name: ":authority", Value: authority}, tape.Field{Name: ":scheme", Value: scheme})
	}
	hasHost := false
	for _, f := range hs {
		name := string(f.Name)
		if strings.HasPrefix(name, ":") || (proto == tape.HTTP2 && strings.EqualFold(name, "host")) {
			continue
		}
		hasHost = hasHost || strings.EqualFold(name, "host")
		out = append(out, tape.Field{Name: name, Value: string(f.Value)})
	}
	if proto != tape.HTTP2 && !hasHost && authority != "" {
		out = append([]tape.Field{{Name: "Host", Value: authority}}, out...)
	}
	return out
}

// harResponseBody returns the body length on the wire and, when the HAR
// holds that very body (no content coding, the same length), its CRC-64;
// otherwise the hash is 0: the source did not keep the body as sent.
func harResponseBody(rs *harResponse, table *crc64.Table) (int64, uint64) {
	var data []byte
	if rs.Content.Text != "" {
		data = []byte(rs.Content.Text)
		if strings.EqualFold(string(rs.Content.Encoding), "base64") {
			if d, err := base64.StdEncoding.DecodeString(string(rs.Content.Text)); err == nil {
				data = d
			}
		}
	}
	n := int64(len(data))
	switch {
	case rs.BodySize != nil && *rs.BodySize >= 0:
		n = int64(*rs.BodySize)
	case rs.Content.Size != nil && *rs.Content.Size >= 0:
		n = int64(*rs.Content.Size)
	}
	coded := false
	for _, f := range rs.Headers {
		if strings.EqualFold(string(f.Name), "content-encoding") && !strings.EqualFold(strings.TrimSpace(string(f.Value)), "identity") {
			coded = true
		}
	}
	if data == nil || coded || int64(len(data)) != n {
		return n, 0
	}
	return n, crc64.Checksum(data, table)
}

// harProto maps a HAR httpVersion to the tape's protocol names. Browsers
// write "http/2.0", "h2", "h3", "HTTP/3"; HTTP/3 becomes HTTP/2.0 (the
// same semantics, and the tape has no HTTP/3). An empty version (a failed
// or cached entry) is taken as HTTP/1.1.
func harProto(v string) (proto string, h3 bool) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "HTTP/1.0":
		return tape.HTTP10, false
	case "HTTP/2", "HTTP/2.0", "H2", "H2C":
		return tape.HTTP2, false
	case "HTTP/3", "HTTP/3.0", "H3":
		return tape.HTTP2, true
	}
	if u := strings.ToUpper(v); strings.HasPrefix(u, "H3-") {
		return tape.HTTP2, true
	}
	return tape.HTTP11, false
}

// splitURL splits an absolute URL into its scheme, authority and the
// request target (path and query, as written, without the fragment). A
// URL that is not absolute is its own target.
func splitURL(u string) (scheme, authority, target string) {
	i := strings.Index(u, "://")
	if i <= 0 {
		return "", "", stripFragment(u)
	}
	scheme, rest := strings.ToLower(u[:i]), u[i+3:]
	j := strings.IndexAny(rest, "/?#")
	if j < 0 {
		return scheme, rest, "/"
	}
	authority, target = rest[:j], stripFragment(rest[j:])
	if target == "" || target[0] != '/' {
		target = "/" + target
	}
	return scheme, authority, target
}

func stripFragment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// urlPort is the port of an authority, or the scheme's default.
func urlPort(scheme, authority string) string {
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		return authority[i+1:]
	}
	switch scheme {
	case "https", "wss":
		return "443"
	case "http", "ws":
		return "80"
	}
	return ""
}

// formBody encodes HAR params as an application/x-www-form-urlencoded body.
func formBody(ps []harNV) []byte {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(string(p.Name)))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(string(p.Value)))
	}
	return b.Bytes()
}
