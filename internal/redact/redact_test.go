package redact

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/herd-replay/herd/tape"
)

func mustNew(t testing.TB, o Options) *Redactor {
	t.Helper()
	if o.Key == nil {
		o.Key = []byte("test key")
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDefaultRules: which names the defaults take for secrets, in every
// spelling, and which ordinary names they leave alone.
func TestDefaultRules(t *testing.T) {
	r := mustNew(t, Options{})
	secret := []string{
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-API-KEY", "X-Auth-Token",
		"X-CSRF-Token", "X-XSRF-TOKEN", "X-Session-Id", "X-Amz-Security-Token", "X-Client-Secret", "X-Amz-Signature",
		"X-Hub-Signature-256", "X-Amz-Credential",
		"token", "access_token", "refresh_token", "id_token", "api_key", "apikey", "apiKey", "API-KEY", "password",
		"Password", "new_password", "passwd", "pwd", "pass", "passphrase", "secret", "client_secret", "clientSecret",
		"session", "sessionid", "session_id", "PHPSESSID", "JSESSIONID", "sid", "signature", "sig", "auth",
		"credentials", "client_assertion", "jwt", "otp", "csrfmiddlewaretoken", "aws_access_key_id", "private_key",
	}
	plain := []string{
		"Host", "Content-Type", "Content-Length", "User-Agent", "Accept", "Accept-Encoding", "X-Request-Id",
		"Sec-WebSocket-Key", "Content-Security-Policy", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Referer", "Origin", "Cache-Control", "X-Forwarded-For",
		"max_tokens", "page", "q", "id", "user", "username", "email", "author", "signal", "passenger", "key",
		"tokens", "tokenizer", "description", "amount",
	}
	for _, n := range secret {
		for _, k := range []byte{'h', 'q', 'b'} {
			if !r.secret(k, n) {
				t.Errorf("%q (%c) is not redacted", n, k)
			}
		}
	}
	for _, n := range plain {
		for _, k := range []byte{'h', 'q', 'b'} {
			if r.secret(k, n) && !(k != 'h' && strings.HasPrefix(n, "Access-Control")) {
				t.Errorf("%q (%c) is redacted", n, k)
			}
		}
	}
}

// TestOptions: extra header expressions match whole names; extra query
// and body patterns apply to their own kind only.
func TestOptions(t *testing.T) {
	r := mustNew(t, Options{Headers: []string{`x-(a|b)-id`}, Query: []string{"code"}, BodyFields: []string{"card*"}})
	for _, c := range []struct {
		kind byte
		name string
		want bool
	}{
		{'h', "X-A-Id", true}, {'h', "x-b-id", true}, {'h', "X-C-Id", false}, {'h', "X-A-Id-2", false},
		{'q', "code", true}, {'q', "Code", true}, {'b', "code", false},
		{'b', "card_number", true}, {'b', "cardNumber", true}, {'q', "card_number", false}, {'b', "discard", false},
	} {
		if got := r.secret(c.kind, c.name); got != c.want {
			t.Errorf("%q (%c): %v, want %v", c.name, c.kind, got, c.want)
		}
	}
	if _, err := New(Options{Headers: []string{"("}}); err == nil || !strings.Contains(err.Error(), `header pattern "("`) {
		t.Errorf("bad expression: got %v", err)
	}
	if _, err := New(Options{Query: []string{"-*-"}}); err == nil || !strings.Contains(err.Error(), "letters or digits") {
		t.Errorf("empty pattern: got %v", err)
	}
}

func TestMeta(t *testing.T) {
	m := mustNew(t, Options{Headers: []string{`x-(a|b)-token`}, Query: []string{"Code"}, BodyFields: []string{"card_*"}}).Meta()
	if !m.Enabled || m.Marker != MarkerForm {
		t.Errorf("meta %+v", m)
	}
	if !slices.Equal(m.Headers, append(slices.Clone(DefaultRules), "-accesscontrol*", "re:x-(a|b)-token")) {
		t.Errorf("headers %q", m.Headers)
	}
	if !slices.Equal(m.Query, append(slices.Clone(DefaultRules), "code")) || !slices.Equal(m.BodyFields, append(slices.Clone(DefaultRules), "card*")) {
		t.Errorf("query %q, body %q", m.Query, m.BodyFields)
	}
	if m := mustNew(t, Options{Disabled: true}).Meta(); m.Enabled || len(m.Headers) > 0 {
		t.Errorf("disabled: %+v", m)
	}
}

func TestMarker(t *testing.T) {
	r := mustNew(t, Options{})
	re := regexp.MustCompile(`^herd-redacted:L(\d+):[0-9a-f]{16}$`)
	for _, c := range []struct {
		v     string
		class int
	}{{"a", 8}, {"12345678", 8}, {"123456789", 16}, {strings.Repeat("x", 16), 16}, {strings.Repeat("x", 17), 32}, {strings.Repeat("x", 5000), 8192}} {
		m := r.marker(c.v)
		if sm := re.FindStringSubmatch(m); sm == nil || sm[1] != fmt.Sprint(c.class) || !IsMarker(m) {
			t.Errorf("%d bytes: marker %q, want class L%d", len(c.v), m, c.class)
		}
	}
	if r.marker("s1") != r.marker("s1") || r.marker("s1") == r.marker("s2") {
		t.Error("equal secrets must give equal markers, different ones different markers")
	}
	if mustNew(t, Options{Key: []byte("other")}).marker("s1") == r.marker("s1") {
		t.Error("the marker does not depend on the key")
	}
	for s, want := range map[string]bool{
		"herd-redacted:L16:0123456789abcdef": true,
		"herd-redacted:0123456789abcdef":     true, // tapes before length classes
		"herd-redacted:L12:0123456789abcdef": false,
		"herd-redacted:L4:0123456789abcdef":  false,
		"herd-redacted:L16:0123456789abcdeF": false,
		"herd-redacted:0123456789abcde":      false,
		"herd-redacted:":                     false,
		"x herd-redacted:0123456789abcdef":   false,
	} {
		if IsMarker(s) != want {
			t.Errorf("IsMarker(%q) = %v", s, !want)
		}
	}
}

// secretExchange carries one secret of every shape redaction covers.
func secretExchange() *tape.Exchange {
	body := `{"user":"u1","password":"JSONPASS-1","nested":{"client_secret":"JSONSECRET-2","list":[{"api_key":"JSONKEY-3"}]},` +
		`"credentials":{"user":"u","pin":4242}, "max_tokens":100,"remember":true}`
	return &tape.Exchange{
		Method: "POST", Target: "/login?user=u1&access_token=QUERYTOKEN-4&API_KEY=QUERYKEY-5&page=2", Proto: "HTTP/1.1",
		ReqHeader: []tape.Field{
			{Name: "Host", Value: "example.com"},
			{Name: "Authorization", Value: "Bearer HEADERBEARER-6"},
			{Name: "Cookie", Value: "sid=HEADERCOOKIE-7; theme=dark"},
			{Name: "X-Session-Id", Value: "HEADERSESSION-8"},
			{Name: "Referer", Value: "https://app.example.com/cb?token=REFERERTOKEN-9&x=1#access_token=FRAGTOKEN-10&state=s"},
			{Name: "Content-Type", Value: "application/json"},
		},
		ReqBody: []byte(body), ReqBodyLen: int64(len(body)),
		Status: 200, RespProto: "HTTP/1.1",
		RespHeader: []tape.Field{
			{Name: "Set-Cookie", Value: "sid=SETCOOKIE-11; Path=/; HttpOnly"},
			{Name: "Location", Value: "/home?session=LOCATIONSESSION-12"},
			{Name: "Content-Type", Value: "text/html"},
		},
	}
}

var secretValues = []string{
	"JSONPASS-1", "JSONSECRET-2", "JSONKEY-3", "4242", "QUERYTOKEN-4", "QUERYKEY-5", "HEADERBEARER-6", "HEADERCOOKIE-7",
	"HEADERSESSION-8", "REFERERTOKEN-9", "FRAGTOKEN-10", "SETCOOKIE-11", "LOCATIONSESSION-12",
}

// TestExchange: every secret of every shape goes, everything else stays.
func TestExchange(t *testing.T) {
	r := mustNew(t, Options{})
	e := secretExchange()
	if !r.Exchange(e) || e.Flags&tape.Redacted == 0 {
		t.Fatal("nothing redacted")
	}
	all := fmt.Sprintf("%+v %s", *e, e.ReqBody)
	for _, s := range secretValues {
		if strings.Contains(all, s) {
			t.Errorf("secret %s is still in the exchange", s)
		}
	}
	for _, kept := range []string{`"user":"u1"`, `"max_tokens":100`, `"remember":true`, "user=u1", "page=2", "example.com", "state=s", "x=1"} {
		if !strings.Contains(all, kept) && !strings.Contains(string(e.ReqBody), kept) {
			t.Errorf("%q was lost", kept)
		}
	}
	if v, _ := e.Header("X-Session-Id"); !IsMarker(v) {
		t.Errorf("X-Session-Id %q", v)
	}
	if int64(len(e.ReqBody)) != e.ReqBodyLen {
		t.Errorf("body of %d bytes, ReqBodyLen %d", len(e.ReqBody), e.ReqBodyLen)
	}
	want := map[string]int64{
		"redacted_header:authorization": 1, "redacted_header:cookie": 1, "redacted_header:x-session-id": 1,
		"redacted_header:set-cookie": 1, "redacted_query:token": 1, "redacted_query:access_token": 2,
		"redacted_query:api_key": 1, "redacted_query:session": 1, "redacted_body:password": 1,
		"redacted_body:client_secret": 1, "redacted_body:api_key": 1, "redacted_body:credentials": 2,
	}
	if got := r.Counters(); !maps.Equal(got, want) {
		t.Errorf("counters\n got %v\nwant %v", got, want)
	}
	for k := range want {
		if kind, name, ok := ParseCounter(k); !ok || kind+":"+name != strings.TrimPrefix(k, CounterPrefix) {
			t.Errorf("ParseCounter(%q) = %s, %s, %v", k, kind, name, ok)
		}
	}

	// Redacting again changes nothing.
	before := fmt.Sprintf("%+v %s", *e, e.ReqBody)
	if r.Exchange(e) || fmt.Sprintf("%+v %s", *e, e.ReqBody) != before {
		t.Error("a second pass changed the exchange")
	}

	// The same secrets in another exchange get the same markers.
	e2 := secretExchange()
	r.Exchange(e2)
	if fmt.Sprintf("%+v", *e2) != fmt.Sprintf("%+v", *e) {
		t.Error("the same exchange redacted twice differs")
	}
}

// TestBodies: forms and multipart bodies, and what cannot be inspected
// is left alone and counted.
func TestBodies(t *testing.T) {
	cases := []struct {
		ct, ce, body string
		gone         string // a secret that must be replaced ("" none)
		skipped      string
		truncated    bool
	}{
		{"application/x-www-form-urlencoded", "", "user=u&password=FORMPASS&client_secret=FORMSECRET", "FORMPASS", "", false},
		{"multipart/form-data; boundary=zz", "", "--zz\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nMPTOKEN\r\n--zz--\r\n", "MPTOKEN", "", false},
		{"application/json", "", `{"password":"CUTPASSWO`, "CUTPASSWO", "", true},
		{"application/json", "", `{"password":"NOTJSON",}`, "", SkipInvalidJSON, false},
		{"application/json", "gzip", `{"password":"ZIPPED"}`, "", SkipEncoded, false},
		{"multipart/form-data; boundary=zz", "", "garbage", "", SkipInvalidMultipart, false},
		{"image/png", "", "\x89PNG password=x", "", "", false},
	}
	for _, c := range cases {
		r := mustNew(t, Options{})
		e := &tape.Exchange{Method: "POST", Target: "/", ReqHeader: []tape.Field{{Name: "Content-Type", Value: c.ct}},
			ReqBody: []byte(c.body), ReqBodyLen: int64(len(c.body))}
		if c.ce != "" {
			e.ReqHeader = append(e.ReqHeader, tape.Field{Name: "Content-Encoding", Value: c.ce})
		}
		if c.truncated {
			e.ReqBodyLen += 1000
			e.Flags |= tape.ReqBodyTruncated
		}
		before := e.ReqBodyLen - int64(len(e.ReqBody))
		changed := r.Exchange(e)
		if c.gone != "" && (!changed || strings.Contains(string(e.ReqBody), c.gone) || !strings.Contains(string(e.ReqBody), tape.RedactedPrefix)) {
			t.Errorf("%s: %q still holds %s", c.ct, e.ReqBody, c.gone)
		}
		if c.gone == "" && (changed || string(e.ReqBody) != c.body) {
			t.Errorf("%s %s: body changed to %q", c.ct, c.ce, e.ReqBody)
		}
		if e.ReqBodyLen-int64(len(e.ReqBody)) != before {
			t.Errorf("%s: the cut moved: %d bytes missing, was %d", c.ct, e.ReqBodyLen-int64(len(e.ReqBody)), before)
		}
		if got := r.Counters()[SkippedPrefix+c.skipped]; c.skipped != "" && got != 1 {
			t.Errorf("%s: %s counted %d", c.ct, c.skipped, got)
		}
	}
}

// TestDisabled: a disabled or nil Redactor changes nothing.
func TestDisabled(t *testing.T) {
	for _, r := range []*Redactor{mustNew(t, Options{Disabled: true}), nil} {
		e := secretExchange()
		if r.Exchange(e) || fmt.Sprintf("%+v", *e) != fmt.Sprintf("%+v", *secretExchange()) || r.Counters() != nil {
			t.Error("a disabled redactor changed the exchange")
		}
	}
}

// TestNameBound: names come from the traffic; their count is bounded.
func TestNameBound(t *testing.T) {
	r := mustNew(t, Options{})
	for i := range 3 * maxNames {
		e := &tape.Exchange{Target: fmt.Sprintf("/?token_%d_token=v", i)}
		r.Exchange(e)
	}
	c := r.Counters()
	if len(c) != maxNames+1 || c[CounterPrefix+KindQuery+":"+OtherName] != 2*maxNames {
		t.Errorf("%d counters, (other) %d", len(c), c[CounterPrefix+KindQuery+":"+OtherName])
	}
	r.count(KindBody, strings.Repeat("é", 100)+"\x00")
	for k := range r.Counters() {
		if len(k) > 100 || strings.ContainsAny(k, "\x00é") {
			t.Errorf("counter name %q", k)
		}
	}
}

// TestConcurrent: one Redactor serves several goroutines (the recording
// proxy redacts from each connection's goroutine).
func TestConcurrent(t *testing.T) {
	r := mustNew(t, Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				e := secretExchange()
				e.Target += fmt.Sprintf("&n=%d-%d", g, i)
				r.Exchange(e)
			}
		}()
	}
	wg.Wait()
	if got := r.Counters()["redacted_header:authorization"]; got != 8*200 {
		t.Errorf("authorization counted %d, want %d", got, 8*200)
	}
}
