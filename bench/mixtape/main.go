// Command mixtape writes a tape of a bursty recorded mix: new client
// connections arrive at a steady rate, and each carries a short burst of
// requests (a page and its assets, an API call and its follow-ups) a few
// milliseconds apart, then closes. Requests carry what real ones carry
// (user agents, cookies with a per-session value, request ids, now and
// then a JSON body), so that the tape compresses as a real one does.
// bench/replay.sh replays it with session pacing; bench/rss.sh writes a
// 1 GB one (-size) to measure herd's memory.
//
//	go run ./bench/mixtape -o mix.tape -rate 200 -duration 30s
//	go run ./bench/mixtape -o big.tape -rate 100 -size 1GiB
//
// The tape is written as it is generated: its size does not bound this
// command's memory.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/tape"
)

func main() {
	out := flag.String("o", "", "tape to write")
	rate := flag.Float64("rate", 200, "requests per second of the whole tape")
	perConn := flag.Int("per-conn", 4, "requests per connection")
	gap := flag.Duration("gap", 10*time.Millisecond, "recorded time between the requests of a connection")
	dur := flag.Duration("duration", 30*time.Second, "length of the tape (unless -size ends it first)")
	size := flag.String("size", "", "stop once the tape holds this much (1GiB, 500MiB); the duration is then a bound")
	seed := flag.Uint64("seed", 1, "seed of the generated values")
	flag.Parse()
	limit, err := parseSize(*size)
	if *out == "" || *rate <= 0 || *perConn < 1 || err != nil {
		fmt.Fprintln(os.Stderr, "usage: mixtape -o FILE [-rate R] [-per-conn N] [-gap D] [-duration D] [-size 1GiB]", err)
		os.Exit(2)
	}
	if limit > 0 && !isFlagSet("duration") {
		*dur = 1000 * time.Hour
	}
	if err := write(*out, *rate, *perConn, *gap, *dur, limit, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "mixtape:", err)
		os.Exit(1)
	}
}

func isFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			return int64(v * float64(u.mult)), err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

var agents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"okhttp/4.12.0",
	"python-requests/2.32.3",
}

// burst is what one connection asks for, in order.
var bursts = [][]string{
	{"/", "/static/app.js", "/static/app.css", "/api/session"},
	{"/products/%d", "/api/products/%d/reviews", "/static/img/%d.webp", "/api/cart"},
	{"/api/search?q=%s", "/api/products/%d", "/api/products/%d/stock", "/api/recommendations?user=%d"},
	{"/login", "/api/login", "/account", "/api/orders?page=1"},
}

func write(path string, rate float64, perConn int, gap, dur time.Duration, limit int64, seed uint64) error {
	w, err := tape.Create(path, tape.Meta{Source: tape.Source{Kind: "synthetic"}}, tape.WriterOptions{NoSync: true, FlushInterval: -1})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	start := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	every := time.Duration(float64(perConn) / rate * float64(time.Second)) // between new connections
	server := netip.MustParseAddrPort("10.1.0.1:80")
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	// Exchanges are written in order of completion, as a capture writes
	// them: the connections open at once interleave.
	var open []tape.Exchange
	flush := func(upTo int64) error {
		n := 0
		for _, e := range open {
			if e.RespEnd <= upTo {
				if err := w.Write(&e); err != nil {
					return err
				}
				continue
			}
			open[n] = e
			n++
		}
		open = open[:n]
		return nil
	}
	var conn uint64
	for at := time.Duration(0); at < dur; at += every {
		if limit > 0 && w.Size() >= limit {
			break
		}
		conn++
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(conn >> 16), byte(conn >> 8), byte(conn)}), uint16(1024+conn%60000))
		agent := agents[rng.IntN(len(agents))]
		session := hex(32)
		b := bursts[rng.IntN(len(bursts))]
		for i := 0; i < perConn; i++ {
			t := start + int64(at) + int64(time.Duration(i)*gap) + rng.Int64N(int64(time.Millisecond))
			target := b[i%len(b)]
			switch {
			case strings.Contains(target, "%d"):
				target = strings.ReplaceAll(target, "%d", strconv.Itoa(rng.IntN(50000)))
			case strings.Contains(target, "%s"):
				target = strings.ReplaceAll(target, "%s", hex(6))
			}
			e := tape.Exchange{
				ConnID: conn, Seq: uint32(i), Client: client, Server: server,
				ReqStart: t, ReqEnd: t + 20_000, RespStart: t + 900_000, RespEnd: t + 1_200_000,
				Method: "GET", Target: target, Proto: "HTTP/1.1", Status: 200, RespProto: "HTTP/1.1",
				RespBodyLen: int64(200 + rng.IntN(20000)), RespBodyHash: rng.Uint64(),
				ReqHeader: []tape.Field{
					{Name: "Host", Value: "shop.example.com"},
					{Name: "User-Agent", Value: agent},
					{Name: "Accept", Value: "text/html,application/json;q=0.9,*/*;q=0.8"},
					{Name: "Accept-Language", Value: "en-US,en;q=0.9"},
					{Name: "Cookie", Value: "session=" + session + "; theme=dark"},
					{Name: "X-Request-Id", Value: hex(16)},
				},
				RespHeader: []tape.Field{{Name: "Content-Type", Value: "application/json"}, {Name: "Server", Value: "nginx"}},
			}
			if strings.HasPrefix(target, "/api/") && rng.IntN(4) == 0 {
				body := fmt.Sprintf(`{"user":%d,"items":[%d,%d],"note":"%s"}`, rng.IntN(1e6), rng.IntN(1e4), rng.IntN(1e4), hex(40+rng.IntN(400)))
				e.Method, e.ReqBody, e.ReqBodyLen = "POST", []byte(body), int64(len(body))
				e.ReqHeader = append(e.ReqHeader, tape.Field{Name: "Content-Type", Value: "application/json"},
					tape.Field{Name: "Content-Length", Value: strconv.Itoa(len(body))})
			}
			open = append(open, e)
		}
		if err := flush(start + int64(at)); err != nil {
			w.Close()
			return err
		}
	}
	if err := flush(1<<63 - 1); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
