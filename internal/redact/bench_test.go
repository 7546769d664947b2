package redact

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herd-replay/herd/tape"
)

// BenchmarkExchange: a typical API request (14 headers, a query, a 1 KiB
// JSON body with two secrets) and its response, as the capture redacts
// each exchange.
func BenchmarkExchange(b *testing.B) {
	r := mustNew(b, Options{})
	var sb strings.Builder
	sb.WriteString(`{"user":"u1","password":"p4ssw0rd","items":[`)
	for i := range 20 {
		fmt.Fprintf(&sb, `{"id":%d,"name":"item %d","qty":3},`, i, i)
	}
	sb.WriteString(`{"id":0}],"meta":{"client_secret":"abcdef0123456789"}}`)
	body := []byte(sb.String())
	hdr := []tape.Field{
		{Name: "Host", Value: "api.example.com"}, {Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64)"},
		{Name: "Accept", Value: "application/json"}, {Name: "Accept-Encoding", Value: "gzip, deflate, br"},
		{Name: "Accept-Language", Value: "en-US,en;q=0.9"}, {Name: "Authorization", Value: "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"},
		{Name: "Cookie", Value: "sid=0123456789abcdef; theme=dark"}, {Name: "Content-Type", Value: "application/json"},
		{Name: "Content-Length", Value: fmt.Sprint(len(body))}, {Name: "X-Request-Id", Value: "5f2b8c"},
		{Name: "X-Forwarded-For", Value: "10.0.0.1"}, {Name: "Referer", Value: "https://app.example.com/cart?step=2"},
		{Name: "Origin", Value: "https://app.example.com"}, {Name: "Connection", Value: "keep-alive"},
	}
	resp := []tape.Field{{Name: "Content-Type", Value: "application/json"}, {Name: "Set-Cookie", Value: "sid=0123456789abcdef; Path=/"}, {Name: "Cache-Control", Value: "no-store"}}
	e := &tape.Exchange{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		*e = tape.Exchange{Method: "POST", Target: "/api/orders?page=2&access_token=tok123&sort=asc", ReqHeader: append([]tape.Field(nil), hdr...),
			ReqBody: body, ReqBodyLen: int64(len(body)), RespHeader: append([]tape.Field(nil), resp...)}
		r.Exchange(e)
	}
}

// BenchmarkJSONBody: a 1 MiB JSON body (the default --max-body) of nested
// objects with secrets here and there.
func BenchmarkJSONBody(b *testing.B) {
	r := mustNew(b, Options{})
	var sb strings.Builder
	sb.WriteString(`{"records":[`)
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, `{"id":%d,"name":"record number %d","tags":["a","b","c"],"auth":{"token":"t%d"},"score":%d.5},`, i, i, i%7, i)
	}
	sb.WriteString(`{}]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	e := &tape.Exchange{}
	for b.Loop() {
		*e = tape.Exchange{Method: "POST", Target: "/", ReqHeader: []tape.Field{{Name: "Content-Type", Value: "application/json"}},
			ReqBody: body, ReqBodyLen: int64(len(body))}
		r.Exchange(e)
	}
}
