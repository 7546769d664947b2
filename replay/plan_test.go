package replay

import (
	"net/url"
	"testing"

	"github.com/herd-replay/herd/tape"
)

func TestRequestBytes(t *testing.T) {
	base := tape.Exchange{
		Method: "POST", Target: "http://elsewhere.example/api/x?y=1", Proto: "HTTP/1.1",
		ReqHeader: []tape.Field{
			{Name: "Host", Value: "elsewhere.example"},
			{Name: "authorization", Value: "herd-redacted:0011223344556677"},
			{Name: "Transfer-Encoding", Value: "chunked"},
			{Name: "Expect", Value: "100-continue"},
			{Name: "X-Order", Value: "kept"},
			{Name: "Cookie", Value: "a=1"},
			{Name: "Cookie", Value: "b=2"},
		},
		ReqBody: []byte("hello"), ReqBodyLen: 5,
	}
	target, _ := url.Parse("http://127.0.0.1:8080")
	cases := []struct {
		name string
		o    PlanOptions
		want string
	}{
		{"defaults", PlanOptions{Target: target},
			"POST /api/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nauthorization: herd-redacted:0011223344556677\r\nX-Order: kept\r\nCookie: a=1\r\nCookie: b=2\r\nContent-Length: 5\r\n\r\nhello"},
		{"keep host", PlanOptions{Target: target, KeepHost: true},
			"POST /api/x?y=1 HTTP/1.1\r\nHost: elsewhere.example\r\nauthorization: herd-redacted:0011223344556677\r\nX-Order: kept\r\nCookie: a=1\r\nCookie: b=2\r\nContent-Length: 5\r\n\r\nhello"},
		{"set headers replace in place and add", PlanOptions{Target: target, SetHeaders: []tape.Field{
			{Name: "Authorization", Value: "Bearer staging"}, {Name: "cookie", Value: "s=9"}, {Name: "X-New", Value: "1"}}},
			"POST /api/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer staging\r\nX-Order: kept\r\ncookie: s=9\r\nX-New: 1\r\nContent-Length: 5\r\n\r\nhello"},
	}
	for _, c := range cases {
		if got := string(requestBytes(&base, c.o.Target.Host, c.o)); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	get := tape.Exchange{Method: "GET", Target: "/", Proto: "HTTP/1.0"}
	if got, want := string(requestBytes(&get, "h:1", PlanOptions{Target: target})), "GET / HTTP/1.0\r\nHost: h:1\r\n\r\n"; got != want {
		t.Errorf("no headers: got %q want %q", got, want)
	}
}

func TestOriginForm(t *testing.T) {
	for in, want := range map[string]string{
		"/a?b":                  "/a?b",
		"*":                     "*",
		"http://other.host/x?y": "/x?y",
		"https://other.host":    "/",
		"/with space/in target": "/with space/in target",
	} {
		if got := originForm(in); got != want {
			t.Errorf("originForm(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSkipReasons(t *testing.T) {
	cases := []struct {
		e        tape.Exchange
		o        PlanOptions
		noBodies bool // the tape holds no request bodies
		want     string
	}{
		{tape.Exchange{Method: "POST"}, PlanOptions{ReadOnly: true}, false, "read_only"},
		{tape.Exchange{Method: "HEAD"}, PlanOptions{ReadOnly: true}, false, ""},
		{tape.Exchange{Method: "GET", Flags: tape.ReqBodyTruncated}, PlanOptions{}, false, "body_truncated"},
		{tape.Exchange{Method: "GET", Flags: tape.ReqBodyTruncated}, PlanOptions{SendTruncated: true}, false, ""},
		{tape.Exchange{Method: "CONNECT"}, PlanOptions{}, false, "connect_tunnel"},
		{tape.Exchange{Method: "POST"}, PlanOptions{}, true, "no_body_recorded"},
		{tape.Exchange{Method: "PROPFIND"}, PlanOptions{}, true, "no_body_recorded"},
		{tape.Exchange{Method: "DELETE"}, PlanOptions{}, true, ""},
		{tape.Exchange{Method: "GET"}, PlanOptions{}, true, ""},
	}
	for i, c := range cases {
		if got := skipReason(&c.e, c.o, c.noBodies); got != c.want {
			t.Errorf("case %d: %q, want %q", i, got, c.want)
		}
	}
}

func TestShards(t *testing.T) {
	if _, err := ParseShard("4/4"); err == nil {
		t.Error("4/4 accepted")
	}
	sh, err := ParseShard("1/3")
	if err != nil || sh.Index != 1 || sh.Count != 3 {
		t.Fatalf("%+v %v", sh, err)
	}
	// Every connection is in exactly one of the shards, and they are about
	// even.
	counts := make([]int, 3)
	for conn := uint64(0); conn < 3000; conn++ {
		in := 0
		for i := 0; i < 3; i++ {
			if (Shard{Index: i, Count: 3}).has(conn) {
				in++
				counts[i]++
			}
		}
		if in != 1 {
			t.Fatalf("connection %d is in %d shards", conn, in)
		}
	}
	for i, n := range counts {
		if n < 900 || n > 1100 {
			t.Errorf("shard %d holds %d of 3000", i, n)
		}
	}
}
