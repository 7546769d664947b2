package replay

import (
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/herd-replay/herd/tape"
)

// TestRewrite: staging values replace recorded ones where a request has
// them, and the markers left are counted once per request, by kind.
func TestRewrite(t *testing.T) {
	const m = "herd-redacted:L16:0011223344556677"
	const old = "herd-redacted:0011223344556677" // a marker of a tape before length classes
	e := &tape.Exchange{
		Method: "POST", Target: "/login?token=" + m + "&access_token=" + old + "&page=2", Proto: "HTTP/1.1",
		ReqHeader: []tape.Field{
			{Name: "Cookie", Value: "sid=" + old},
			{Name: "X-Session-Id", Value: m},
			{Name: "Content-Type", Value: "application/json"},
		},
		ReqBody: []byte(`{"user":"u","password":"` + m + `","nested":{"password":"` + m + `","pin":"` + m + `"}}`),
	}
	e.ReqBodyLen = int64(len(e.ReqBody))
	target, _ := url.Parse("http://127.0.0.1:1")

	got := map[string]int64{}
	newRewriter(PlanOptions{Target: target}).countRedacted(e, got)
	want := map[string]int64{"cookie": 1, "x-session-id": 1, "query:token": 1, "query:access_token": 1, "body:password": 1, "body:pin": 1}
	if !maps.Equal(got, want) {
		t.Errorf("no staging values: counted %v, want %v", got, want)
	}

	o := PlanOptions{Target: target,
		SetHeaders:    []tape.Field{{Name: "cookie", Value: "sid=staging"}},
		SetQuery:      []tape.Field{{Name: "TOKEN", Value: "staging&q"}, {Name: "absent", Value: "x"}},
		SetBodyFields: []tape.Field{{Name: "password", Value: `st"aging`}},
	}
	rw := newRewriter(o)
	got = map[string]int64{}
	rw.countRedacted(e, got)
	want = map[string]int64{"x-session-id": 1, "query:access_token": 1, "body:pin": 1}
	if !maps.Equal(got, want) {
		t.Errorf("with staging values: counted %v, want %v", got, want)
	}
	before := *e
	r := rw.request(e)
	if r.Target != "/login?token=staging%26q&access_token="+old+"&page=2" {
		t.Errorf("target %q", r.Target)
	}
	if string(r.ReqBody) != `{"user":"u","password":"st\"aging","nested":{"password":"st\"aging","pin":"`+m+`"}}` {
		t.Errorf("body %s", r.ReqBody)
	}
	if e.Target != before.Target || string(e.ReqBody) != string(before.ReqBody) {
		t.Error("the recorded exchange was changed")
	}
	wire := string(requestBytes(r, "h", o))
	if want := "Content-Length: " + strconv.Itoa(len(r.ReqBody)) + "\r\n"; !strings.Contains(wire, want) {
		t.Errorf("the body's new length is not framed:\n%s", wire)
	}
	// Without staging values the exchange is sent as recorded.
	if newRewriter(PlanOptions{Target: target}).request(e) != e {
		t.Error("a request was copied with nothing to rewrite")
	}
}
