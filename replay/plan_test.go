package replay

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

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

// TestStreamedPlanSame loads one window held in memory and streamed from
// the tape: the plans must say the same (requests, routes, skips, idle
// stretches, connections at once) and schedule the same requests; the
// streamed one holds no request.
func TestStreamedPlanSame(t *testing.T) {
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	var exs []tape.Exchange
	for c := 0; c < 200; c++ {
		for i := 0; i < 1+c%5; i++ {
			start := base + int64(c)*int64(37*time.Millisecond) + int64(i)*int64(90*time.Millisecond)
			if c >= 100 {
				start += int64(3 * time.Minute) // an idle stretch the bound shortens
			}
			e := tape.Exchange{ConnID: uint64(1000 - c), Seq: uint32(i), ReqStart: start, ReqEnd: start + 10, RespStart: start + 1e6,
				RespEnd: start + int64(time.Duration(c%7)*time.Second), Method: "GET", Target: fmt.Sprintf("/item/%d?x=%d", c%13, i),
				Proto: "HTTP/1.1", Status: 200, ReqHeader: []tape.Field{{Name: "Cookie", Value: tape.RedactedPrefix + "L8:0011"}}}
			switch (c + i) % 11 {
			case 3:
				e.Method = "CONNECT"
			case 5:
				e.Method, e.ReqBody, e.ReqBodyLen, e.Flags = "POST", []byte("cut"), 99, tape.ReqBodyTruncated
			case 7:
				e.Target = fmt.Sprintf("/other/%c", 'a'+c%26)
			}
			exs = append(exs, e)
		}
	}
	// A connection idle for longer than connSplit: replayed as two.
	for i, at := range []time.Duration{10 * time.Second, 10*time.Second + connSplit + time.Minute} {
		start := base + int64(at)
		exs = append(exs, tape.Exchange{ConnID: 7, Seq: uint32(i), ReqStart: start, ReqEnd: start + 10, RespStart: start + 1e6, RespEnd: start + 2e6,
			Method: "GET", Target: "/long", Proto: "HTTP/1.1", Status: 200})
	}
	kept := map[uint64]bool{}
	for _, e := range exs {
		if e.Method != "CONNECT" && e.Flags&tape.ReqBodyTruncated == 0 {
			kept[e.ConnID] = true
		}
	}
	path := filepath.Join(t.TempDir(), "p.tape")
	if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1, ChunkRecords: 50}, exs); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://127.0.0.1:9")
	for _, shard := range []Shard{{}, {Index: 1, Count: 3}} {
		r, err := tape.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		o := PlanOptions{Window: WindowSpec{Kind: "all", Text: "all"}, Target: target, MaxRoutes: 5, Shard: shard}
		held, err := Load(context.Background(), r, o)
		if err != nil {
			t.Fatal(err)
		}
		o.MaxHeld = -1
		streamed, err := Load(context.Background(), r, o)
		if err != nil {
			t.Fatal(err)
		}
		if held.Streamed() || !streamed.Streamed() || streamed.Conns != nil {
			t.Fatalf("held streamed %v; streamed streamed %v with %d connections in memory", held.Streamed(), streamed.Streamed(), len(streamed.Conns))
		}
		say := func(p *Plan) string {
			return fmt.Sprintf("requests %d length %v recorded %v idle %v %v routes %v %v skipped %v redacted %v peak %d conns %d",
				p.Requests, p.Length, p.Recorded, p.IdleRemoved, p.Idles, p.Routes, p.RouteRequests, p.Skipped, p.Redacted,
				NewSchedule(Clone, 2, 1, p.Length, 0).PeakConns(p), p.index().len())
		}
		if a, b := say(held), say(streamed); a != b {
			t.Fatalf("shard %v: held: %s\nstreamed: %s", shard, a, b)
		}
		if held.IdleRemoved == 0 || len(held.Skipped) != 2 || held.Redacted["cookie"] != held.Requests-2 {
			t.Fatalf("the tape's idle stretch, skips or redactions are missing: %s", say(held))
		}
		if want := len(kept) + 1; shard.Count == 0 && held.Connections() != want {
			t.Fatalf("%d connections, want %d: the one idle for %v is two", held.Connections(), want, connSplit+time.Minute)
		}
		// The peak from the recorded connections' lives, as PeakConns
		// computes it for a plan made by hand.
		byHand := &Plan{Length: held.Length, Conns: held.Conns}
		if a, b := NewSchedule(Clone, 3, 1, held.Length, 0).PeakConns(byHand), NewSchedule(Clone, 3, 1, held.Length, 0).PeakConns(held); a != b {
			t.Fatalf("peak connections %d, from the connections %d", b, a)
		}
		for _, s := range []Schedule{NewSchedule(Clone, 2.5, 3, held.Length, 0), NewSchedule(Compress, 3, 1, held.Length, 30*time.Second)} {
			a1, m1 := s.CountDue(held, s.Duration/4)
			a2, m2 := s.CountDue(streamed, s.Duration/4)
			if a1 != a2 || m1 != m2 || a1 == 0 {
				t.Fatalf("%v: held plans %d (%d measured), streamed %d (%d)", s.Mode, a1, m1, a2, m2)
			}
		}
	}
}
