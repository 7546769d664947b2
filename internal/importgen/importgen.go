// Package importgen generates large inputs for herd import, in each
// format the importer reads, as a stream: the memory and speed checks
// (importer's tests and benchmarks, bench/import.sh) import gigabytes
// without holding them. The traffic is a fixed, seeded mix: 64 client
// connections of keep-alive GETs and POSTs with bodies, responses of 1 to
// 32 KiB. Only tests and benchmarks use it.
package importgen

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

// Formats lists the names Reader accepts.
var Formats = []string{"gor", "har", "clf", "alb"}

// Reader returns at least size bytes of the named format (it ends after
// the entry that reaches size, so every entry is whole).
func Reader(format string, size int64) (io.Reader, error) {
	g := &gen{left: size, rng: rand.New(rand.NewPCG(1, 2))}
	switch format {
	case "gor":
		g.entry = g.gor
	case "har":
		g.entry, g.prefix, g.suffix = g.har, `{"log":{"version":"1.2","creator":{"name":"importgen","version":"1"},"entries":[`, "]}}\n"
	case "clf":
		g.entry = g.clf
	case "alb":
		g.entry = g.alb
	default:
		return nil, fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
	}
	return g, nil
}

type gen struct {
	entry          func(i int, b []byte) []byte
	prefix, suffix string
	left           int64
	i              int
	buf            []byte
	done           bool
	rng            *rand.Rand
	body           []byte
}

func (g *gen) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.done {
			return 0, io.EOF
		}
		b := g.buf[:0]
		if g.i == 0 {
			b = append(b, g.prefix...)
		}
		b = g.entry(g.i, b)
		g.i++
		g.left -= int64(len(b))
		if g.left <= 0 {
			b = append(b, g.suffix...)
			g.done = true
		}
		g.buf = b
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

const start = int64(1796133688000000000) // 2026-12-01T14:01:28Z

// request describes entry i: its time, connection, method and sizes.
func (g *gen) request(i int) (ts int64, conn int, post bool, reqBody, respBody int) {
	ts = start + int64(i)*1_000_000 // 1000 requests a second
	conn = i % 64
	post = i%10 == 9
	if post {
		reqBody = 64 + g.rng.IntN(4096)
	}
	respBody = 1024 + g.rng.IntN(31*1024)
	return
}

func (g *gen) bodyBytes(n int) []byte {
	for len(g.body) < n {
		g.body = append(g.body, `{"id":12345,"name":"item","tags":["a","b"],"note":"lorem ipsum dolor sit amet"}`...)
	}
	return g.body[:n]
}

func (g *gen) gor(i int, b []byte) []byte {
	ts, conn, post, reqBody, respBody := g.request(i)
	id := fmt.Sprintf("%04x1f907f000001%08x", 40000+conn, i)
	b = fmt.Appendf(b, "1 %s %d 0\n", id, ts)
	if post {
		b = fmt.Appendf(b, "POST /api/items?page=%d HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: importgen\r\nCookie: session=s%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", i%97, conn, reqBody)
		b = append(b, g.bodyBytes(reqBody)...)
	} else {
		b = fmt.Appendf(b, "GET /api/items/%d HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: importgen\r\nCookie: session=s%d\r\nAccept: */*\r\n\r\n", i%9973, conn)
	}
	b = append(b, "\n\U0001F435\U0001F648\U0001F649\n"...)
	b = fmt.Appendf(b, "2 %s %d 0\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", id, ts+2_000_000, respBody)
	b = append(b, g.bodyBytes(respBody)...)
	return append(b, "\n\U0001F435\U0001F648\U0001F649\n"...)
}

func (g *gen) har(i int, b []byte) []byte {
	ts, conn, post, reqBody, respBody := g.request(i)
	if i > 0 {
		b = append(b, ',')
	}
	t := time.Unix(0, ts).UTC().Format("2006-01-02T15:04:05.000Z")
	method, postData := "GET", ""
	if post {
		method = "POST"
		postData = fmt.Sprintf(`,"postData":{"mimeType":"application/json","text":%q}`, g.bodyBytes(reqBody))
	}
	b = fmt.Appendf(b, `{"startedDateTime":%q,"time":3.5,"connection":"%d","serverIPAddress":"192.0.2.1",`+
		`"request":{"method":%q,"url":"https://shop.test/api/items/%d","httpVersion":"HTTP/1.1","headers":[{"name":"Host","value":"shop.test"},{"name":"Cookie","value":"session=s%d"}],"queryString":[],"headersSize":-1,"bodySize":%d%s},`+
		`"response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[{"name":"Content-Type","value":"application/json"}],"content":{"size":%d,"mimeType":"application/json","text":%q},"redirectURL":"","headersSize":-1,"bodySize":%d},`+
		`"cache":{},"timings":{"blocked":0.5,"dns":-1,"connect":-1,"send":0.1,"wait":2.5,"receive":0.4}}`,
		t, conn, method, i%9973, conn, reqBody, postData, respBody, g.bodyBytes(respBody), respBody)
	return b
}

func (g *gen) clf(i int, b []byte) []byte {
	ts, conn, post, _, respBody := g.request(i)
	method := "GET"
	if post {
		method = "POST"
	}
	return fmt.Appendf(b, "10.1.%d.%d - - [%s] \"%s /api/items/%d?q=x%%20y HTTP/1.1\" 200 %d \"https://shop.test/\" \"Mozilla/5.0 (X11; Linux x86_64) importgen/1.0\" 0.%03d\n",
		conn/8, conn, time.Unix(0, ts).UTC().Format("02/Jan/2006:15:04:05 -0700"), method, i%9973, respBody, i%1000)
}

func (g *gen) alb(i int, b []byte) []byte {
	ts, conn, post, reqBody, respBody := g.request(i)
	method := "GET"
	if post {
		method = "POST"
	}
	t := time.Unix(0, ts).UTC().Format("2006-01-02T15:04:05.000000Z")
	return fmt.Appendf(b, "https %s app/shop-lb/50dc6c495c0c9188 192.0.2.%d:%d 10.0.0.1:80 0.000 0.002 0.000 200 200 %d %d \"%s https://shop.test:443/api/items/%d HTTP/1.1\" \"importgen/1.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/t/73e2d6bc24d8a067 \"Root=1-58337262-%024x\" \"shop.test\" \"-\" 0 %s \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\"\n",
		t, conn, 40000+conn, 200+reqBody, respBody+200, method, i%9973, i, t)
}
