package replay

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-replay/herd/tape"
)

// arrival is one request as a test server saw it.
type arrival struct {
	conn   int // the server's index of the TCP connection
	target string
	host   string // the Host header
	at     time.Time
}

// server is a real HTTP/1.1 server on 127.0.0.1 that records every request
// and answers through handle, which writes a whole response.
type server struct {
	ln     net.Listener
	mu     sync.Mutex
	got    []arrival
	conns  int
	handle func(w *bufio.Writer, target string, n int) bool // false: close the connection
	// reset makes a close send a TCP RST instead of a FIN.
	reset atomic.Bool
	// onClose, when set, is called as each connection closes; onRead
	// with the body bytes of each request. Set them with hooks: a
	// connection takes them under mu as it is accepted.
	onClose func()
	onRead  func(n int)
}

// hooks sets onClose and onRead for the connections accepted from now on.
func (s *server) hooks(onClose func(), onRead func(n int)) {
	s.mu.Lock()
	s.onClose, s.onRead = onClose, onRead
	s.mu.Unlock()
}

func newServer(t *testing.T, handle func(w *bufio.Writer, target string, n int) bool) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, handle: handle}
	if s.handle == nil {
		s.handle = func(w *bufio.Writer, target string, n int) bool {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return true
		}
	}
	go s.serve()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *server) url() *url.URL { return &url.URL{Scheme: "http", Host: s.ln.Addr().String()} }

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		id := s.conns
		s.conns++
		onClose, onRead := s.onClose, s.onRead
		s.mu.Unlock()
		go s.serveConn(c, id, onClose, onRead)
	}
}

func (s *server) serveConn(c net.Conn, id int, onClose func(), onRead func(n int)) {
	defer c.Close()
	if onClose != nil {
		defer onClose()
	}
	if s.reset.Load() {
		c.(*net.TCPConn).SetLinger(0)
	}
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	for n := 0; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		at := time.Now()
		var length int
		host := ""
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if h == "\r\n" {
				break
			}
			if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "content-length") {
				fmt.Sscan(strings.TrimSpace(v), &length)
			} else if ok && strings.EqualFold(k, "host") {
				host = strings.TrimSpace(v)
			}
		}
		if length > 0 {
			n, err := br.Discard(length)
			if onRead != nil {
				onRead(n)
			}
			if err != nil {
				return
			}
		}
		f := strings.Fields(line)
		target := ""
		if len(f) > 1 {
			target = f[1]
		}
		s.mu.Lock()
		s.got = append(s.got, arrival{conn: id, target: target, host: host, at: at})
		s.mu.Unlock()
		keep := s.handle(bw, target, n)
		if bw.Flush() != nil || !keep {
			return
		}
	}
}

func (s *server) arrivals() []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]arrival(nil), s.got...)
}

// testTape writes a tape of conns recorded connections with perConn GETs
// each, spaced gap apart, connection starts spaced stagger apart. Each
// request's target names its connection and index: /c/<conn>/r/<i>.
func testTape(t *testing.T, conns, perConn int, stagger, gap time.Duration) string {
	t.Helper()
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	var exs []tape.Exchange
	for c := 0; c < conns; c++ {
		for i := 0; i < perConn; i++ {
			start := base + int64(c)*int64(stagger) + int64(i)*int64(gap)
			exs = append(exs, tape.Exchange{
				ConnID: uint64(c + 1), Seq: uint32(i),
				Client:   netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:4000", c%250+1)),
				Server:   netip.MustParseAddrPort("10.0.1.1:80"),
				ReqStart: start, ReqEnd: start + 1000, RespStart: start + 2e6, RespEnd: start + 3e6,
				Method: "GET", Target: fmt.Sprintf("/c/%d/r/%d", c+1, i), Proto: "HTTP/1.1",
				ReqHeader: []tape.Field{{Name: "Host", Value: "shop.example.com"}, {Name: "X-Trace", Value: "abc"}},
				Status:    200, RespProto: "HTTP/1.1",
			})
		}
	}
	path := filepath.Join(t.TempDir(), "t.tape")
	if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1}, exs); err != nil {
		t.Fatal(err)
	}
	return path
}

// forEngines runs a test on every engine of this platform: they must
// send and count alike, each the other's oracle.
func forEngines(t *testing.T, test func(t *testing.T, eng Engine)) {
	t.Helper()
	engines := []Engine{EngineGoroutine}
	if loopSupported {
		engines = append(engines, EngineLoop)
	}
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) { test(t, eng) })
	}
}

func loadPlan(t *testing.T, path string, target *url.URL, window string) *Plan {
	t.Helper()
	r, err := tape.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := ParseWindow(window)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), r, PlanOptions{Window: w, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCountIdentity replays at several scales in both modes and checks the
// server got exactly the requests expected, each replayed connection's
// requests in recorded order on one TCP connection of its own.
func TestCountIdentity(t *testing.T) { forEngines(t, testCountIdentity) }

func testCountIdentity(t *testing.T, eng Engine) {
	const conns, perConn = 40, 5
	path := testTape(t, conns, perConn, 20*time.Millisecond, 50*time.Millisecond)
	for _, mode := range []Mode{Clone, Compress} {
		for _, k := range []float64{1, 2.5, 4} {
			t.Run(fmt.Sprintf("%v-%g", mode, k), func(t *testing.T) {
				srv := newServer(t, nil)
				p := loadPlan(t, path, srv.url(), "all")
				sched := NewSchedule(mode, k, 7, p.Length, 0)
				st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: sched, Engine: eng})
				if err != nil {
					t.Fatal(err)
				}
				want, _ := sched.CountDue(p, 0)
				switch {
				case mode == Compress:
					if want != conns*perConn {
						t.Fatalf("compress plans %d requests, want %d", want, conns*perConn)
					}
				case k == float64(int(k)):
					if want != int64(k)*conns*perConn {
						t.Fatalf("clone %gx plans %d requests, want %d", k, want, int64(k)*conns*perConn)
					}
				default:
					// 2.5x: 2 copies of every connection, a third for about half.
					lo, hi := int64(2*conns*perConn), int64(3*conns*perConn)
					if want <= lo || want >= hi {
						t.Fatalf("clone 2.5x plans %d requests, want between %d and %d", want, lo, hi)
					}
				}
				got := srv.arrivals()
				if int64(len(got)) != want || st.Sent != want || st.Completed != want || st.Errors != 0 {
					t.Fatalf("server got %d, sent %d, completed %d, errors %d; want %d", len(got), st.Sent, st.Completed, st.Errors, want)
				}
				// Per TCP connection: one recorded connection's requests, in order.
				byConn := map[int][]string{}
				for _, a := range got {
					byConn[a.conn] = append(byConn[a.conn], a.target)
				}
				copies := map[string]int{}
				for _, targets := range byConn {
					prefix := targets[0][:strings.LastIndex(targets[0], "/r/")]
					if len(targets) != perConn {
						t.Fatalf("a connection carried %d requests, want %d: %v", len(targets), perConn, targets)
					}
					for i, tg := range targets {
						if tg != fmt.Sprintf("%s/r/%d", prefix, i) {
							t.Fatalf("connection order: %v", targets)
						}
					}
					copies[prefix]++
				}
				for prefix, n := range copies {
					if mode == Compress && n != 1 {
						t.Fatalf("%s replayed on %d connections in compress mode", prefix, n)
					}
					if mode == Clone && (n < int(k) || n > int(k)+1) {
						t.Fatalf("%s replayed on %d connections at %gx", prefix, n, k)
					}
				}
			})
		}
	}
}

// TestTiming checks that requests reach a fast server at their recorded
// offsets: a loose bound here, the exact figures are in the benchmarks.
func TestTiming(t *testing.T) { forEngines(t, testTiming) }

func testTiming(t *testing.T, eng Engine) {
	path := testTape(t, 20, 10, 37*time.Millisecond, 100*time.Millisecond)
	srv := newServer(t, nil)
	p := loadPlan(t, path, srv.url(), "all")
	sched := NewSchedule(Clone, 1, 1, p.Length, 0)
	start := time.Now()
	st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: sched, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.arrivals()
	if len(got) != 200 {
		t.Fatalf("got %d requests", len(got))
	}
	// Arrival offsets relative to the first arrival against recorded ones.
	sort.Slice(got, func(i, j int) bool { return got[i].at.Before(got[j].at) })
	want := map[string]time.Duration{}
	for _, c := range p.Conns {
		for i, r := range c.Reqs {
			want[fmt.Sprintf("/c/%d/r/%d", c.ID, i)] = r.Offset
		}
	}
	t0 := got[0].at.Add(-want[got[0].target])
	var worst time.Duration
	for _, a := range got {
		d := a.at.Sub(t0) - want[a.target]
		worst = max(worst, d, -d)
	}
	if worst > 50*time.Millisecond {
		t.Errorf("an arrival was %v off its recorded offset", worst)
	}
	if st.ScheduleLagMS.P50 > 5 {
		t.Errorf("schedule lag p50 %.3f ms", st.ScheduleLagMS.P50)
	}
	if el := time.Since(start); el > p.Length+2*time.Second {
		t.Errorf("a %v window took %v", p.Length, el)
	}
}

// TestTimelineTotals: with a settle that ends mid-second, the timeline's
// seconds still add up to the step: sent by due time, successes by
// completion time.
func TestTimelineTotals(t *testing.T) { forEngines(t, testTimelineTotals) }

func testTimelineTotals(t *testing.T, eng Engine) {
	srv := newServer(t, nil)
	path := testTape(t, 30, 40, 7*time.Millisecond, 60*time.Millisecond)
	p := loadPlan(t, path, srv.url(), "all")
	st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 2, 1, p.Length, 3*time.Second),
		Settle: 1250 * time.Millisecond, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	var sent, completed, finished int64
	for _, s := range st.Timeline {
		sent += s.Sent
		completed += s.Completed
		finished += s.Finished
	}
	if sent != st.Sent || completed != st.Completed || finished != st.Good || st.Sent == 0 {
		t.Fatalf("timeline sent %d completed %d finished %d; step sent %d completed %d good %d",
			sent, completed, finished, st.Sent, st.Completed, st.Good)
	}
	if st.Timeline[0].T != 1 {
		t.Fatalf("the timeline starts at second %d, want 1 (the settle ends at 1.25 s)", st.Timeline[0].T)
	}
}
