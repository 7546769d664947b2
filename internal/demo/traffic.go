package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/route"
	"github.com/herd-replay/herd/tape"
)

// Route is one endpoint of the demo application.
type Route struct {
	Method  string
	Path    string // route template, as herd reports it
	Queries int    // simulated database queries per request
	Fixed   int    // queries per request once the fix is in
	Weight  float64
	// ServiceTime is how long the recorded production service took.
	ServiceTime time.Duration
}

// Routes is the demo application. /login makes dozens of queries per
// request, like the service behind the outage herd was built after; the fix
// cut that to a few.
var Routes = []Route{
	{Method: "POST", Path: "/login", Queries: 30, Fixed: 3, ServiceTime: 45 * time.Millisecond},
	{Method: "GET", Path: "/api/users/:id", Queries: 3, Fixed: 3, Weight: 0.25, ServiceTime: 8 * time.Millisecond},
	{Method: "GET", Path: "/api/items/:id", Queries: 2, Fixed: 2, Weight: 0.35, ServiceTime: 6 * time.Millisecond},
	{Method: "GET", Path: "/api/search", Queries: 5, Fixed: 5, Weight: 0.18, ServiceTime: 15 * time.Millisecond},
	{Method: "POST", Path: "/api/cart/:id/items", Queries: 4, Fixed: 4, Weight: 0.10, ServiceTime: 10 * time.Millisecond},
	{Method: "GET", Path: "/api/session", Queries: 1, Fixed: 1, Weight: 0.12, ServiceTime: 3 * time.Millisecond},
}

// TrafficOptions shape a synthetic recording.
type TrafficOptions struct {
	Seed     uint64
	Start    time.Time     // wall-clock time of the recording's first second
	Duration time.Duration // length of the recording
	// Sessions per second at the daily rate (before the spike) at Start.
	SessionRate float64
	// A spike (a marketing e-mail going out) multiplies the session rate by
	// SpikeFactor at SpikeAt, decaying over SpikeWidth.
	SpikeAt     time.Duration
	SpikeWidth  time.Duration
	SpikeFactor float64
	LoginShare  float64       // share of sessions that start by logging in
	MeanThink   time.Duration // mean think time between a session's requests
	MeanLength  float64       // mean requests per session after the login
	Server      netip.AddrPort
}

// SampleTraffic is the recording behind testdata/sample.tape: ten minutes
// around a lunchtime spike.
func SampleTraffic() TrafficOptions {
	return TrafficOptions{
		Seed:        1,
		Start:       time.Date(2026, 11, 16, 11, 50, 0, 0, time.UTC),
		Duration:    10 * time.Minute,
		SessionRate: 2.2,
		SpikeAt:     5 * time.Minute,
		SpikeWidth:  90 * time.Second,
		SpikeFactor: 2.5,
		LoginShare:  0.3,
		MeanThink:   1500 * time.Millisecond,
		MeanLength:  6,
		Server:      netip.MustParseAddrPort("10.1.0.10:8080"),
	}
}

// DemoTraffic is the recording herd demo replays: ninety seconds around
// the same kind of spike, at a higher rate, so that every step of the demo
// ramp carries enough requests to measure.
func DemoTraffic() TrafficOptions {
	o := SampleTraffic()
	o.Seed = 2
	o.Start = time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC)
	o.Duration = 90 * time.Second
	o.SessionRate = 12
	o.SpikeAt = 45 * time.Second
	o.SpikeWidth = 40 * time.Second
	o.SpikeFactor = 1.8
	return o
}

// sessionRate is the session arrival rate at offset t: a daily curve
// (quiet at night, highest early afternoon) times a decaying spike.
func (o TrafficOptions) sessionRate(t time.Duration) float64 {
	at := o.Start.Add(t)
	hour := float64(at.Hour()) + float64(at.Minute())/60 + float64(at.Second())/3600
	h0 := float64(o.Start.Hour()) + float64(o.Start.Minute())/60 + float64(o.Start.Second())/3600
	daily := func(h float64) float64 { return 0.55 - 0.45*math.Cos(2*math.Pi*(h-2)/24) }
	rate := o.SessionRate * daily(hour) / daily(h0)
	if o.SpikeFactor > 1 && o.SpikeWidth > 0 {
		d := (t - o.SpikeAt).Seconds() / o.SpikeWidth.Seconds()
		if d >= 0 {
			rate *= 1 + (o.SpikeFactor-1)*math.Exp(-d)
		} else {
			rate *= 1 + (o.SpikeFactor-1)*math.Exp(4*d) // a fast rise
		}
	}
	return rate
}

// Traffic generates the recording: sessions arrive by a non-homogeneous
// Poisson process; each session is one keep-alive connection whose client
// sends a request, waits for the response, thinks, and goes on.
func Traffic(o TrafficOptions) []tape.Exchange {
	rng := rand.New(rand.NewPCG(o.Seed, 0x68657264))
	var peak float64
	for t := time.Duration(0); t < o.Duration; t += time.Second {
		peak = max(peak, o.sessionRate(t))
	}
	var out []tape.Exchange
	var conn uint64
	t := 0.0
	end := o.Duration.Seconds()
	for {
		t += rng.ExpFloat64() / peak
		if t >= end {
			break
		}
		if rng.Float64()*peak > o.sessionRate(time.Duration(t*float64(time.Second))) {
			continue // thinning
		}
		conn++
		out = append(out, o.session(rng, conn, t)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RespEnd < out[j].RespEnd })
	return out
}

func (o TrafficOptions) session(rng *rand.Rand, conn uint64, startS float64) []tape.Exchange {
	client := netip.AddrPortFrom(
		netip.AddrFrom4([4]byte{10, 2, byte(rng.IntN(64)), byte(1 + rng.IntN(250))}),
		uint16(32768+rng.IntN(28000)))
	ua := userAgents[rng.IntN(len(userAgents))]
	user := 1000 + rng.IntN(90000)
	session := fmt.Sprintf("herd-redacted:%016x", rng.Uint64())
	n := 1 + int(rng.ExpFloat64()*(o.MeanLength-1)+0.5)
	login := rng.Float64() < o.LoginShare
	at := o.Start.UnixNano() + int64(startS*1e9)
	end := o.Start.Add(o.Duration).UnixNano()
	var out []tape.Exchange
	for seq := 0; seq < n+btoi(login) && at < end; seq++ {
		var r Route
		if seq == 0 && login {
			r = Routes[0]
		} else {
			r = pickRoute(rng)
		}
		e := o.request(rng, r, user, ua, session, seq == 0 && login)
		e.ConnID, e.Seq, e.Client, e.Server = conn, uint32(seq), client, o.Server
		reqDur := int64(50_000 + rng.IntN(150_000))
		if len(e.ReqBody) > 0 {
			reqDur += int64(len(e.ReqBody)) * 80
		}
		svc := int64(float64(r.ServiceTime) * (0.6 + 0.8*rng.Float64()))
		e.ReqStart, e.ReqEnd = at, at+reqDur
		e.RespStart = e.ReqEnd + svc
		e.RespEnd = e.RespStart + 40_000 + e.RespBodyLen*8
		out = append(out, e)
		think := -math.Log(1-rng.Float64()) * float64(o.MeanThink)
		at = e.RespEnd + int64(max(think, 80e6))
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func pickRoute(rng *rand.Rand) Route {
	x := rng.Float64()
	for _, r := range Routes[1:] {
		if x < r.Weight {
			return r
		}
		x -= r.Weight
	}
	return Routes[len(Routes)-1]
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"okhttp/4.12.0",
}

var searchTerms = []string{"boots", "rain+jacket", "usb-c+cable", "coffee", "desk+lamp", "socks", "backpack", "headphones"}

// request builds one exchange of route r. Statuses follow the demo
// service's rules, so a replay against it matches the recording.
func (o TrafficOptions) request(rng *rand.Rand, r Route, user int, ua, session string, login bool) tape.Exchange {
	e := tape.Exchange{Method: r.Method, Proto: "HTTP/1.1", RespProto: "HTTP/1.1", Status: 200}
	var body string
	switch r.Path {
	case "/login":
		e.Target = "/login"
		body = fmt.Sprintf(`{"user":"u%d","password":"herd-redacted:%016x"}`, user, rng.Uint64())
	case "/api/users/:id":
		e.Target = "/api/users/" + strconv.Itoa(user)
	case "/api/items/:id":
		e.Target = "/api/items/" + uuid(rng)
		if strings.HasPrefix(e.Target, "/api/items/0") {
			e.Status = 404
		}
	case "/api/search":
		e.Target = "/api/search?q=" + searchTerms[rng.IntN(len(searchTerms))] + "&page=" + strconv.Itoa(1+rng.IntN(3))
	case "/api/cart/:id/items":
		e.Target = "/api/cart/" + strconv.Itoa(user) + "/items"
		body = fmt.Sprintf(`{"item":"%s","qty":%d}`, uuid(rng), 1+rng.IntN(3))
	default:
		e.Target = r.Path
	}
	e.ReqHeader = []tape.Field{
		{Name: "Host", Value: "shop.example.com"},
		{Name: "User-Agent", Value: ua},
		{Name: "Accept", Value: "application/json"},
		{Name: "Accept-Encoding", Value: "gzip, br"},
	}
	if !login {
		e.ReqHeader = append(e.ReqHeader, tape.Field{Name: "Cookie", Value: "session=" + session})
		e.Flags |= tape.Redacted
	}
	if body != "" {
		e.ReqBody = []byte(body)
		e.ReqBodyLen = int64(len(body))
		e.ReqHeader = append(e.ReqHeader,
			tape.Field{Name: "Content-Type", Value: "application/json"},
			tape.Field{Name: "Content-Length", Value: strconv.Itoa(len(body))})
		if login {
			e.Flags |= tape.Redacted
		}
	}
	e.RespBodyLen = int64(200 + rng.IntN(3000))
	if e.Status == 404 {
		e.RespBodyLen = 22
	}
	e.RespBodyHash = rng.Uint64()
	e.RespHeader = []tape.Field{
		{Name: "Content-Type", Value: "application/json"},
		{Name: "Content-Length", Value: strconv.FormatInt(e.RespBodyLen, 10)},
		{Name: "Cache-Control", Value: "no-store"},
	}
	return e
}

func uuid(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
}

// WriteTraffic generates a recording and writes it to a tape at path.
func WriteTraffic(path string, o TrafficOptions, herdVersion string) error {
	meta := tape.Meta{
		HerdVersion: herdVersion,
		Created:     o.Start.Add(o.Duration),
		Source:      tape.Source{Kind: "synthetic", Ports: []int{int(o.Server.Port())}},
		Redaction:   tape.Redaction{Enabled: true, Headers: []string{"authorization", "cookie", "set-cookie"}},
		Notes: []string{
			"synthetic shop traffic: keep-alive sessions with think times, a daily curve and a spike at " +
				o.Start.Add(o.SpikeAt).Format("15:04:05"),
		},
	}
	exs := Traffic(o)
	conns := make(map[uint64]bool)
	for _, e := range exs {
		conns[e.ConnID] = true
	}
	w, err := tape.Create(path, meta, tape.WriterOptions{NoSync: true, FlushInterval: -1})
	if err != nil {
		return err
	}
	for i := range exs {
		if err := w.Write(&exs[i]); err != nil {
			w.Close()
			return err
		}
	}
	w.SetStats(tape.Stats{
		Counters:  map[string]int64{"exchanges": int64(len(exs)), "tcp_connections": int64(len(conns))},
		Discarded: map[string]int64{},
	})
	return w.Close()
}

// RouteOf returns the demo route serving method and target, or nil.
func RouteOf(method, target string) *Route {
	tmpl := route.Template(target)
	for i := range Routes {
		if Routes[i].Method == method && Routes[i].Path == tmpl {
			return &Routes[i]
		}
	}
	return nil
}
