package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/tape"
)

// secretsPcap writes a capture whose requests and responses carry a secret
// of every shape herd redacts, each one a distinct string listed in the
// returned slice.
func secretsPcap(t *testing.T) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secrets.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgen.NewWriter(f, pcapgen.Link{Type: layers.LinkTypeEthernet}, time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	multipart := "--b0undary\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nu4\r\n" +
		"--b0undary\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nSECRET-MULTIPART-PASS\r\n" +
		"--b0undary\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGBYTES\r\n--b0undary--\r\n"
	type exchange struct {
		method, target string
		headers        []string
		body           string
		respHeaders    []string
	}
	exchanges := []exchange{
		{"GET", "/api/items?access_token=SECRET-QUERY-ACCESS&api_key=SECRET-QUERY-APIKEY&page=1",
			[]string{"Authorization: Bearer SECRET-HEADER-BEARER", "X-Session-Id: SECRET-HEADER-SESSION", "Cookie: sid=SECRET-HEADER-COOKIE"}, "",
			[]string{"Set-Cookie: session=SECRET-SETCOOKIE; Path=/"}},
		{"POST", "/login", []string{"Content-Type: application/x-www-form-urlencoded"},
			"user=u2&password=SECRET-FORM-PASS&client_secret=SECRET-FORM-CLIENT", []string{"Location: /home?token=SECRET-LOCATION-TOKEN"}},
		{"POST", "/api/session", []string{"Content-Type: application/json", "X-Session-Id: SECRET-HEADER-SESSION"},
			`{"user":"u3","password":"SECRET-JSON-PASS","auth":{"token":"SECRET-JSON-NESTED"},"items":[{"api_key":"SECRET-JSON-ARRAY"}],"max_tokens":5}`, nil},
		{"POST", "/upload", []string{"Content-Type: multipart/form-data; boundary=b0undary"}, multipart, nil},
		{"GET", "/next?access_token=SECRET-QUERY-ACCESS-2&tok=kept", []string{"Referer: https://app.example/cb?refresh_token=SECRET-REFERER-TOKEN#id_token=SECRET-FRAGMENT-TOKEN"}, "", nil},
	}
	c := w.NewConn("10.0.0.1:40000", "10.0.0.2:8080", 1000, 9000)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	for _, x := range exchanges {
		var body []byte
		if x.body != "" {
			body = []byte(x.body)
		}
		if err := c.Send(true, pcapgen.Request(x.method, x.target, x.headers, body)); err != nil {
			t.Fatal(err)
		}
		w.Advance(time.Millisecond)
		if err := c.Send(false, pcapgen.Response(200, x.respHeaders, []byte("ok"))); err != nil {
			t.Fatal(err)
		}
		w.Advance(20 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return path, []string{
		"SECRET-QUERY-ACCESS", "SECRET-QUERY-APIKEY", "SECRET-HEADER-BEARER", "SECRET-HEADER-SESSION", "SECRET-HEADER-COOKIE",
		"SECRET-SETCOOKIE", "SECRET-FORM-PASS", "SECRET-FORM-CLIENT", "SECRET-LOCATION-TOKEN", "SECRET-JSON-PASS",
		"SECRET-JSON-NESTED", "SECRET-JSON-ARRAY", "SECRET-MULTIPART-PASS", "SECRET-QUERY-ACCESS-2",
		"SECRET-REFERER-TOKEN", "SECRET-FRAGMENT-TOKEN",
	}
}

// TestCaptureRedactsEverySecret: after herd capture, not one secret byte
// is in the tape: not in the file, not in any exchange, its metadata or
// its counters; and the counters say what was redacted.
func TestCaptureRedactsEverySecret(t *testing.T) {
	pcap, secrets := secretsPcap(t)
	out := filepath.Join(t.TempDir(), "s.tape")
	if _, stderr, code := run(t, "capture", "--pcap", pcap, "--port", "8080", "-o", out); code != 0 {
		t.Fatalf("capture: exit %d\n%s", code, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tape.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var all strings.Builder
	n := 0
	err = r.All(context.Background(), func(e *tape.Exchange) error {
		n++
		fmt.Fprintf(&all, "%+v\n%s\n", *e, e.ReqBody)
		if int64(len(e.ReqBody)) != e.ReqBodyLen {
			t.Errorf("%s: body of %d bytes, recorded length %d", e.Target, len(e.ReqBody), e.ReqBodyLen)
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("%d exchanges, %v", n, err)
	}
	st, _ := r.Stats()
	meta, _ := json.Marshal(r.Meta())
	stats, _ := json.Marshal(st)
	for _, s := range secrets {
		for what, b := range map[string]string{"the file": string(raw), "an exchange": all.String(), "the metadata": string(meta), "the counters": string(stats)} {
			if strings.Contains(b, s) {
				t.Errorf("%s is in %s", s, what)
			}
		}
	}
	for _, kept := range []string{"tok=kept", `"user":"u3"`, `"max_tokens":5`, "user=u2", "PNGBYTES", "page=1"} {
		if !strings.Contains(all.String(), kept) {
			t.Errorf("%q was lost", kept)
		}
	}
	want := map[string]int64{
		"redacted_header:authorization": 1, "redacted_header:x-session-id": 2, "redacted_header:cookie": 1,
		"redacted_header:set-cookie": 1, "redacted_query:access_token": 2, "redacted_query:api_key": 1,
		"redacted_query:token": 1, "redacted_query:refresh_token": 1, "redacted_query:id_token": 1,
		"redacted_body:password": 3, "redacted_body:client_secret": 1, "redacted_body:auth": 1, "redacted_body:api_key": 1,
		"redacted": 5,
	}
	for k, v := range want {
		if st.Counters[k] != v {
			t.Errorf("counter %s = %d, want %d", k, st.Counters[k], v)
		}
	}
	if m := r.Meta().Redaction; !m.Enabled || m.Marker != redact.MarkerForm || len(m.BodyFields) == 0 {
		t.Errorf("metadata %+v", m)
	}
	text, _, _ := run(t, "inspect", out)
	if !strings.Contains(text, "redactions  body password 3, ") || !strings.Contains(text, "redaction   on (default rules)") {
		t.Errorf("inspect:\n%s", text)
	}

	// --no-redact keeps them all, as asked.
	plain := filepath.Join(t.TempDir(), "plain.tape")
	if _, stderr, code := run(t, "capture", "--pcap", pcap, "--no-redact", "-o", plain); code != 0 {
		t.Fatalf("capture --no-redact: exit %d\n%s", code, stderr)
	}
	text, _, _ = run(t, "inspect", plain)
	if !strings.Contains(text, "redaction   off") {
		t.Errorf("--no-redact:\n%s", text)
	}
}

// received counts, at the server, the requests that carried each value.
type received struct {
	mu sync.Mutex
	n  map[string]int
}

func (rc *received) add(k string) {
	rc.mu.Lock()
	rc.n[k]++
	rc.mu.Unlock()
}

func (rc *received) get(k string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n[k]
}

func secretsServer(t *testing.T) (*httptest.Server, *received) {
	rc := &received{n: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.add("requests")
		rc.add("query access_token=" + r.URL.Query().Get("access_token"))
		rc.add("header X-Session-Id=" + r.Header.Get("X-Session-Id"))
		rc.add("header Authorization=" + r.Header.Get("Authorization"))
		switch ct := r.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "application/json"):
			var v map[string]any
			if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
				rc.add("bad json")
			}
			rc.add(fmt.Sprint("body password=", v["password"]))
		case strings.HasPrefix(ct, "multipart/"):
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				rc.add("bad multipart")
			}
			rc.add("body password=" + r.FormValue("password"))
		case ct != "":
			if err := r.ParseForm(); err != nil {
				rc.add("bad form")
			}
			rc.add("body password=" + r.PostForm.Get("password"))
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, rc
}

// TestReplayStagingValues: --set-query, --set-header and --set-body-field
// deliver the staging values in place of the redacted ones, as the server
// counts them; without them herd warns for each name, by its kind.
func TestReplayStagingValues(t *testing.T) {
	pcap, _ := secretsPcap(t)
	tp := filepath.Join(t.TempDir(), "s.tape")
	if _, stderr, code := run(t, "capture", "--pcap", pcap, "-o", tp); code != 0 {
		t.Fatalf("capture: exit %d\n%s", code, stderr)
	}

	srv, rc := secretsServer(t)
	_, stderr, code := run(t, "replay", tp, "--target", srv.URL, "--set-query", "access_token=STAGING-Q",
		"--set-header", "X-Session-Id: STAGING-S", "--set-header", "Authorization: Bearer STAGING-A",
		"--set-body-field", "password=STAGING P&=", "--json", filepath.Join(t.TempDir(), "run.json"))
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
	for k, want := range map[string]int{
		"requests": 5, "query access_token=STAGING-Q": 2, "header X-Session-Id=STAGING-S": 5,
		"header Authorization=Bearer STAGING-A": 5, "body password=STAGING P&=": 3,
		"bad json": 0, "bad multipart": 0, "bad form": 0,
	} {
		if got := rc.get(k); got != want {
			t.Errorf("the server got %q %d times, want %d (all: %v)", k, got, want, rc.n)
		}
	}
	for _, name := range []string{"access_token", "password", "x-session-id"} {
		if strings.Contains(stderr, "redacted "+name) || strings.Contains(stderr, " "+name+";") {
			t.Errorf("a warning about %s, which has a staging value:\n%s", name, stderr)
		}
	}
	if !strings.Contains(stderr, "1 requests carry a redacted cookie value") || !strings.Contains(stderr, "--set-header 'cookie: ...'") {
		t.Errorf("no warning for the cookie:\n%s", stderr)
	}

	// Without staging values: the markers go out, and herd says which
	// flag replaces each.
	srv2, rc2 := secretsServer(t)
	_, stderr, code = run(t, "replay", tp, "--target", srv2.URL)
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
	for _, w := range []string{
		"2 requests carry a redacted query parameter access_token; the target will see the placeholder unless you pass --set-query 'access_token=...'",
		"3 requests carry a redacted body field password; the target will see the placeholder unless you pass --set-body-field 'password=...'",
		"1 requests carry a redacted body field client_secret",
		"2 requests carry a redacted x-session-id value",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	rc2.mu.Lock()
	defer rc2.mu.Unlock()
	for k, n := range rc2.n {
		if strings.HasPrefix(k, "body password=") && !redact.IsMarker(strings.TrimPrefix(k, "body password=")) {
			t.Errorf("%d requests sent %q, want the marker", n, k)
		}
	}
}

// TestCaptureRedactFlags: the flags that extend redaction, their usage
// errors, and what herd inspect says of them.
func TestCaptureRedactFlags(t *testing.T) {
	pcap, _ := secretsPcap(t)
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--redact-query", "-"}, "--redact-query: name pattern \"-\": give letters or digits"},
		{[]string{"--redact-body-field", "**"}, "--redact-body-field: name pattern"},
		{[]string{"--no-redact", "--redact-body-field", "x"}, "--no-redact contradicts"},
		{[]string{"--redact-header", "("}, "--redact-header"},
	} {
		args := append([]string{"capture", "--pcap", pcap, "-o", filepath.Join(t.TempDir(), "x.tape")}, c.args...)
		if _, stderr, code := run(t, args...); code != ExitUsage || !strings.Contains(stderr, c.err) {
			t.Errorf("%v: exit %d\n%s", c.args, code, stderr)
		}
	}
	out := filepath.Join(t.TempDir(), "x.tape")
	if _, stderr, code := run(t, "capture", "--pcap", pcap, "-o", out, "--redact-query", "page", "--redact-body-field", "User*",
		"--redact-header", "x-tenant"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	text, _, _ := run(t, "inspect", out)
	for _, want := range []string{
		"redaction   on (default rules; also headers re:x-tenant; query page; body fields user*)",
		"query page 1", "body user 3", // in the form, JSON and multipart bodies
	} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect lacks %q:\n%s", want, text)
		}
	}
}
