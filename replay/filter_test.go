package replay

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/route"
	"github.com/herd-replay/herd/tape"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "/anything/at/all", true},
		{"/api/*", "/api/v1/users", true},
		{"/api/*", "/api", false},
		{"/api*", "/api", true},
		{"/health*", "/healthz", true},
		{"/health*", "/v1/health", false},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "example.com", false},
		{"10.0.0.?:80", "10.0.0.5:80", true},
		{"10.0.0.?:80", "10.0.0.55:80", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a*b", "abab", true},
		{"", "", true},
		{"", "x", false},
		{"/users/:id", "/users/:id", true},
	} {
		if got := Glob(c.pattern, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestRewritePath(t *testing.T) {
	rules := []PathRewrite{
		{"/v1/", "/v2/"},
		{"/api/*/items/*", "/items/*/of/*"},
		{"/old*", "/new*"},
		{"/x", "/y"},
	}
	for _, c := range []struct{ target, want string }{
		{"/v1/users?id=3", "/v2/users?id=3"},
		{"/v1/", "/v2/"},
		{"/v10/users", "/v10/users"}, // the prefix is /v1/, with its slash
		{"/api/shop/items/42?x=1#f", "/items/shop/of/42?x=1#f"},
		{"/api/shop/items", "/api/shop/items"},
		{"/oldest", "/newest"},
		{"/x/y", "/y/y"},
		{"http://h.example/v1/a?q", "http://h.example/v2/a?q"},
		{"http://h.example", "http://h.example"},
		{"*", "*"},
	} {
		if got := rewriteTarget(c.target, rules); got != c.want {
			t.Errorf("rewrite %q = %q, want %q", c.target, got, c.want)
		}
	}
	for _, bad := range []string{"v1=/v2", "/v1", "/a=/b/*", "/a/*=v"} {
		if _, err := ParsePathRewrite(bad); err == nil {
			t.Errorf("ParsePathRewrite(%q) accepted", bad)
		}
	}
}

func TestRequestPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, method, target string
		want                    bool
	}{
		{"GET /api/*", "GET", "/api/users/7?x=1", true},
		{"GET /api/*", "POST", "/api/users/7", false},
		{"get /api/*", "GET", "/api/users/7", true},
		{"/health*", "GET", "/healthz", true},
		{"/health*", "HEAD", "/health", true},
		{"POST", "POST", "/anything", true},
		{"POST", "GET", "/anything", false},
		{"/users/:id", "GET", "/users/42", true}, // the route template
		{"/users/:id", "GET", "/users/me", false},
		{"* /x", "DELETE", "/x", true},
	} {
		p, err := parseRequestPattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := p.matches(c.method, pathOf(c.target), route.Template(c.target)); got != c.want {
			t.Errorf("%q on %s %s = %v, want %v", c.pattern, c.method, c.target, got, c.want)
		}
	}
	for _, bad := range []string{"", "  ", "GET api"} {
		if _, err := parseRequestPattern(bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func TestServerMatches(t *testing.T) {
	k := tape.ServerKey{Addr: "10.0.0.5:8080", Host: "api.example.com:8443"}
	for _, c := range []struct {
		glob string
		want bool
	}{
		{"10.0.0.5:8080", true},
		{"10.0.0.5", true},
		{"10.0.0.*", true},
		{"api.example.com", true},
		{"api.example.com:8443", true},
		{"*.example.com", true},
		{"www.example.com", false},
		{"10.0.0.6", false},
		{":8080", false},
	} {
		if got := ServerMatches(c.glob, k); got != c.want {
			t.Errorf("ServerMatches(%q) = %v, want %v", c.glob, got, c.want)
		}
	}
	if ServerMatches("*", tape.ServerKey{}) {
		t.Error("a server without address or host matched *")
	}
}

func TestGCRA(t *testing.T) {
	// 10 req/s (100 ms apart) with a burst of 3 (200 ms of credit).
	const ms = int64(time.Millisecond)
	interval, tau := 100*ms, 200*ms
	tat := int64(0)
	steps := []struct {
		now  int64
		want bool
	}{
		{1000 * ms, true}, {1000 * ms, true}, {1000 * ms, true}, // the burst
		{1000 * ms, false},                   // over it
		{1050 * ms, false},                   // not yet refilled
		{1100 * ms, true},                    // one more token
		{1100 * ms, false},                   // and only one
		{5000 * ms, true}, {5000 * ms, true}, // idle time refills the burst, no more
		{5000 * ms, true}, {5000 * ms, false},
	}
	for i, s := range steps {
		next, ok := gcra(tat, s.now, interval, tau)
		if ok != s.want {
			t.Fatalf("step %d at %d ms: allowed %v, want %v", i, s.now/ms, ok, s.want)
		}
		if ok {
			tat = next
		}
	}
	for _, c := range []struct {
		rate float64
		want int64
	}{{0.5, 1}, {5, 5}, {10, 10}, {100, 10}, {1000, 100}, {2500.5, 251}} {
		if got := capBurst(c.rate); got != c.want {
			t.Errorf("capBurst(%g) = %d, want %d", c.rate, got, c.want)
		}
	}
}

// ex is one exchange of a tape of several servers.
type ex struct {
	conn     uint64
	server   string // address
	host     string
	method   string
	target   string
	offsetMS int64
}

func serversTape(t *testing.T, exs []ex) string {
	t.Helper()
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	seq := map[uint64]uint32{}
	var out []tape.Exchange
	for _, e := range exs {
		start := base + e.offsetMS*int64(time.Millisecond)
		x := tape.Exchange{
			ConnID: e.conn, Seq: seq[e.conn],
			Client:   netip.MustParseAddrPort(fmt.Sprintf("10.9.0.%d:5000", e.conn%250+1)),
			Server:   netip.MustParseAddrPort(e.server),
			ReqStart: start, ReqEnd: start + 1000, RespStart: start + 1e6, RespEnd: start + 2e6,
			Method: e.method, Target: e.target, Proto: "HTTP/1.1",
			ReqHeader: []tape.Field{{Name: "Host", Value: e.host}},
			Status:    200, RespProto: "HTTP/1.1",
		}
		seq[e.conn]++
		out = append(out, x)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ReqStart < out[j].ReqStart })
	path := filepath.Join(t.TempDir(), "servers.tape")
	if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1}, out); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadWith(t *testing.T, path string, o PlanOptions) (*Plan, error) {
	t.Helper()
	r, err := tape.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() }) // a streamed plan reads it as it runs
	if o.Window.Kind == "" {
		o.Window, _ = ParseWindow("all")
	}
	return Load(context.Background(), r, o)
}

func replayOnce(t *testing.T, p *Plan, s Settings) *results.Step {
	t.Helper()
	f, err := Replay(context.Background(), p, ReplayOptions{Settings: s, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &f.Steps[0]
}

// threeServers is a tape of three services behind one capture: api and
// shop on one address (told apart by Host), and an admin service on
// another address, plus one recorded connection that asks for api and
// shop in turn.
func threeServers(t *testing.T) string {
	var exs []ex
	for c := uint64(1); c <= 6; c++ {
		for i := int64(0); i < 5; i++ {
			at := int64(c)*40 + i*30
			switch c % 3 {
			case 0:
				exs = append(exs, ex{conn: c, server: "10.0.0.5:80", host: "api.example.com", method: "GET", target: fmt.Sprintf("/api/v1/users/%d", i), offsetMS: at})
			case 1:
				exs = append(exs, ex{conn: c, server: "10.0.0.5:80", host: "shop.example.com", method: "GET", target: fmt.Sprintf("/cart/%d", i), offsetMS: at})
			default:
				exs = append(exs, ex{conn: c, server: "10.0.0.9:8080", host: "admin.internal", method: "POST", target: "/health", offsetMS: at})
			}
		}
	}
	// One connection that asks for api, shop, api, shop: a client reusing
	// a connection to one address for two hosts.
	for i := int64(0); i < 4; i++ {
		host, target := "api.example.com", fmt.Sprintf("/api/v1/orders/%d", i)
		if i%2 == 1 {
			host, target = "shop.example.com", fmt.Sprintf("/cart/mixed/%d", i)
		}
		exs = append(exs, ex{conn: 7, server: "10.0.0.5:80", host: host, method: "GET", target: target, offsetMS: 500 + i*40})
	}
	return serversTape(t, exs)
}

func hostsOf(got []arrival) map[string]int {
	m := map[string]int{}
	for _, a := range got {
		m[a.host]++
	}
	return m
}

// TestTargetMap replays a tape of three services to two staging servers
// by name, the third unmapped: each server receives exactly its service's
// requests, with its own Host, the mixed connection's requests each to
// its own target, nothing of the third service anywhere, and the results
// count per target what the servers counted.
func TestTargetMap(t *testing.T) {
	path := threeServers(t)
	api, shop, other := newServer(t, nil), newServer(t, nil), newServer(t, nil)
	p, err := loadWith(t, path, PlanOptions{TargetMap: []TargetMapping{
		{Name: "api.example.com", URL: api.url()},
		{Name: "shop.*", URL: shop.url()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Skipped[SkipNoTarget] != 10 {
		t.Fatalf("skipped %v, want 10 no_target (the admin service)", p.Skipped)
	}
	if p.Targets[0].Requests != 12 || p.Targets[1].Requests != 12 {
		t.Fatalf("targets plan %d and %d requests, want 12 and 12", p.Targets[0].Requests, p.Targets[1].Requests)
	}
	f, err := Replay(context.Background(), p, ReplayOptions{Settings: Settings{Target: api.url()}, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := &f.Steps[0]
	ga, gs := api.arrivals(), shop.arrivals()
	if len(ga) != 12 || len(gs) != 12 || len(other.arrivals()) != 0 {
		t.Fatalf("api got %d, shop %d, want 12 each", len(ga), len(gs))
	}
	if h := hostsOf(ga); h[api.url().Host] != 12 {
		t.Fatalf("api saw hosts %v, want its own", h)
	}
	if h := hostsOf(gs); h[shop.url().Host] != 12 {
		t.Fatalf("shop saw hosts %v, want its own", h)
	}
	for _, a := range ga {
		if !strings.HasPrefix(a.target, "/api/") {
			t.Fatalf("api got %s", a.target)
		}
	}
	for _, a := range gs {
		if !strings.HasPrefix(a.target, "/cart/") {
			t.Fatalf("shop got %s", a.target)
		}
	}
	if len(st.Targets) != 2 {
		t.Fatalf("results have %d targets, want 2", len(st.Targets))
	}
	for i, srv := range []*server{api, shop} {
		tr := st.Targets[i]
		if tr.Target != srv.url().String() || tr.Sent != int64(len(srv.arrivals())) || tr.Completed != tr.Sent || tr.Errors != 0 {
			t.Fatalf("target %d in the results: %+v; the server counted %d", i, tr, len(srv.arrivals()))
		}
		if tr.LatencyMS.None || tr.LatencyMS.P50 <= 0 {
			t.Fatalf("target %d has no latency: %+v", i, tr.LatencyMS)
		}
	}
	if st.Sent != 24 || f.Window.Skipped[SkipNoTarget] != 10 {
		t.Fatalf("sent %d, skipped %v", st.Sent, f.Window.Skipped)
	}
	if !strings.Contains(f.Target, api.url().String()) || !strings.Contains(f.Target, shop.url().String()) {
		t.Fatalf("results target %q names not both", f.Target)
	}
	if len(f.Params.TargetMap) != 2 || !strings.HasPrefix(f.Params.TargetMap[1], "shop.*=") {
		t.Fatalf("params target map %v", f.Params.TargetMap)
	}
	// Several targets run on the goroutine engine, and the results say
	// so; the event loops asked for by name refuse the plan.
	if f.Params.Engine != "goroutine" {
		t.Fatalf("a plan of two targets ran on the %q engine", f.Params.Engine)
	}
	_, err = Replay(context.Background(), p, ReplayOptions{Settings: Settings{Target: api.url(), Engine: EngineLoop}, Scale: 1})
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Option != "engine" || loopSupported && !strings.Contains(err.Error(), "several targets") {
		t.Fatalf("engine loop with two targets: %v", err)
	}
}

// TestServerPick replays one service of the tape by address and by host.
func TestServerPick(t *testing.T) {
	path := threeServers(t)
	for _, c := range []struct {
		name   string
		want   int
		prefix string
	}{
		{"10.0.0.9", 10, "/health"},
		{"admin.*", 10, "/health"},
		{"*.example.com", 24, "/"},
		{"api.example.com", 12, "/api/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newServer(t, nil)
			p, err := loadWith(t, path, PlanOptions{Target: srv.url(), Servers: []string{c.name}})
			if err != nil {
				t.Fatal(err)
			}
			if p.Skipped[SkipOtherServer] != int64(34-c.want) {
				t.Fatalf("skipped %v, want %d other_server", p.Skipped, 34-c.want)
			}
			if len(p.Servers) != 3 {
				t.Fatalf("the plan lists %d servers, want 3", len(p.Servers))
			}
			st := replayOnce(t, p, Settings{Target: srv.url()})
			got := srv.arrivals()
			if len(got) != c.want || st.Sent != int64(c.want) {
				t.Fatalf("server got %d, sent %d; want %d", len(got), st.Sent, c.want)
			}
			for _, a := range got {
				if !strings.HasPrefix(a.target, c.prefix) {
					t.Fatalf("server got %s", a.target)
				}
			}
		})
	}
	if _, err := loadWith(t, path, PlanOptions{Target: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Servers: []string{"nowhere"}}); err == nil ||
		!strings.Contains(err.Error(), "api.example.com") {
		t.Fatalf("a server matching nothing: %v; want an error naming the tape's servers", err)
	}
}

// TestIncludeExcludeRewrite filters by method and path and rewrites the
// paths sent, counting at the server.
// On both engines, with the plan held in memory and streamed from the
// tape.
func TestIncludeExcludeRewrite(t *testing.T) {
	forEngines(t, func(t *testing.T, eng Engine) {
		for _, held := range []int64{0, -1} {
			t.Run(fmt.Sprintf("held=%d", held), func(t *testing.T) { testIncludeExcludeRewrite(t, eng, held) })
		}
	})
}

func testIncludeExcludeRewrite(t *testing.T, eng Engine, held int64) {
	path := threeServers(t)
	srv := newServer(t, nil)
	p, err := loadWith(t, path, PlanOptions{Target: srv.url(),
		Include:     []string{"GET /api/*", "/cart/*"},
		Exclude:     []string{"/cart/mixed/*", "GET /api/v1/users/:id"},
		RewritePath: []PathRewrite{{"/api/v1/", "/api/v2/"}, {"/cart/*", "/basket/*"}},
		MaxHeld:     held,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Streamed() != (held < 0) {
		t.Fatalf("streamed %v with MaxHeld %d", p.Streamed(), held)
	}
	// Kept: api orders (2), shop carts (10). Excluded: users (10), mixed
	// carts (2). Not included: admin POSTs (10).
	if p.Skipped[SkipExcluded] != 12 || p.Skipped[SkipNotIncluded] != 10 {
		t.Fatalf("skipped %v", p.Skipped)
	}
	replayOnce(t, p, Settings{Target: srv.url(), Engine: eng})
	got := map[string]int{}
	for _, a := range srv.arrivals() {
		switch {
		case strings.HasPrefix(a.target, "/api/v2/orders/"):
			got["orders"]++
		case strings.HasPrefix(a.target, "/basket/"):
			got["basket"]++
		default:
			t.Fatalf("server got %s", a.target)
		}
	}
	if got["orders"] != 2 || got["basket"] != 10 {
		t.Fatalf("server got %v, want 2 orders and 10 baskets", got)
	}
	// Routes are those of the paths sent.
	var routes []string
	for _, k := range p.Routes {
		routes = append(routes, k.Method+" "+k.Route)
	}
	sort.Strings(routes)
	if strings.Join(routes, ",") != "GET /api/v2/orders/:id,GET /basket/:id" {
		t.Fatalf("routes %v", routes)
	}
}

// TestMaxRate replays a burst far above the cap: the server receives no
// more than the cap allows over the run, the rest is counted as not sent
// for max_rate, and sent plus not sent is every request.
func TestMaxRate(t *testing.T) { forEngines(t, testMaxRate) }

func testMaxRate(t *testing.T, eng Engine) {
	// 400 requests over 2 s on 40 connections: 200 req/s.
	path := testTape(t, 40, 10, 5*time.Millisecond, 200*time.Millisecond)
	srv := newServer(t, nil)
	p := loadPlan(t, path, srv.url(), "all")
	const rate = 50.0
	start := time.Now()
	f, err := Replay(context.Background(), p, ReplayOptions{Settings: Settings{Target: srv.url(), MaxRate: rate, Engine: eng}, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start).Seconds()
	st := &f.Steps[0]
	got := int64(len(srv.arrivals()))
	bound := int64(rate*elapsed) + capBurst(rate)
	if got > bound || got < int64(rate*p.Length.Seconds())/2 {
		t.Fatalf("server got %d requests in %.2f s under a cap of %g/s; want at most %d and not far below the cap", got, elapsed, rate, bound)
	}
	if st.Sent != got || st.NotSent["max_rate"] != 400-got || st.Sent+st.NotSent["max_rate"] != 400 {
		t.Fatalf("sent %d, not sent %v; the server got %d of 400", st.Sent, st.NotSent, got)
	}
	if f.Params.MaxRate != rate || !strings.Contains(strings.Join(st.Generator.Notes, ";"), "--max-rate") {
		t.Fatalf("params max_rate %g, notes %v", f.Params.MaxRate, st.Generator.Notes)
	}
	// A request the cap refuses leaves its replayed connection's own
	// connection to the next one: each recorded connection's requests
	// arrive on one TCP connection.
	on := map[string]map[int]bool{}
	for _, a := range srv.arrivals() {
		rc := strings.Join(strings.Split(a.target, "/")[:3], "/")
		if on[rc] == nil {
			on[rc] = map[int]bool{}
		}
		on[rc][a.conn] = true
	}
	for rc, conns := range on {
		if len(conns) != 1 {
			t.Fatalf("the requests of %s arrived on %d connections", rc, len(conns))
		}
	}
	if f.Params.Engine != eng.String() {
		t.Fatalf("ran on the %s engine, asked for %s", f.Params.Engine, eng)
	}
}

// TestRampUnderRateCap: the cap ends a ramp at the highest step whose mean
// rate it allows, and refuses one whose first step is above it.
func TestRampUnderRateCap(t *testing.T) {
	path := testTape(t, 20, 5, 10*time.Millisecond, 100*time.Millisecond)
	srv := newServer(t, nil)
	p := loadPlan(t, path, srv.url(), "all")
	rate := p.Rate()
	o := RampOptions{Settings: Settings{Target: srv.url(), MaxRate: 2.5 * rate}, From: 1, Step: 1, To: 4, StepDuration: time.Second}
	f, err := Ramp(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if ks := stepList(f); len(ks) != 2 || ks[1] != 2 {
		t.Fatalf("steps %v, want 1x and 2x under a cap of 2.5x the rate", ks)
	}
	var sent int64
	for _, st := range f.Steps {
		sent += st.Sent
	}
	if got := int64(len(srv.arrivals())); got != sent {
		t.Fatalf("the server got %d, the steps sent %d", got, sent)
	}
	o.MaxRate = 0.5 * rate
	if _, err := Ramp(context.Background(), p, o); err == nil || !strings.Contains(err.Error(), "first step") {
		t.Fatalf("a cap below the first step: %v", err)
	}
}

// stepList is the scales a ramp judged, a step that herd's own limit made
// it run again counted once (a loaded machine may stall a step).
func stepList(f *results.File) []float64 {
	var ks []float64
	for _, st := range f.Steps {
		if st.Retry && len(ks) > 0 && ks[len(ks)-1] == st.Scale {
			continue
		}
		ks = append(ks, st.Scale)
	}
	return ks
}
