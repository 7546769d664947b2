package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/route"
	"github.com/herd-replay/herd/tape"
)

// PlanOptions decide which recorded requests are replayed and how they are
// rewritten for the target.
type PlanOptions struct {
	Window WindowSpec
	// MaxIdle shortens every stretch of the window with no request due
	// that is longer than it to it (DefaultMaxIdle when zero; negative
	// keeps wall-clock fidelity): the 1x rate is over active time.
	MaxIdle       time.Duration
	Target        *url.URL
	KeepHost      bool         // send the recorded Host header
	ReadOnly      bool         // send only GET, HEAD and OPTIONS
	SendTruncated bool         // send requests whose body was cut at capture
	SetHeaders    []tape.Field // replace (or add) these headers
	SetQuery      []tape.Field // replace these query parameters where present (rewrite.go)
	SetBodyFields []tape.Field // replace these form, JSON, multipart body fields where present
	MaxRoutes     int          // routes measured separately; the rest are "(other)" (default 50)
	// SendWithoutBody: on a tape whose source holds no request bodies (an
	// access log), also send the requests that need one, with none.
	// Otherwise they are skipped as no_body_recorded.
	SendWithoutBody bool
	// Shard keeps only the recorded connections whose hash falls in shard
	// Index of Count, so that Count herd processes replay the window
	// together, each its share. Count 0 keeps them all.
	Shard Shard
	// MaxHeld bounds the memory a plan spends on holding its requests
	// rendered for the target: a window whose requests fit is read once
	// and held; a larger one is streamed from the tape, in time order,
	// each time a pass replays it (DefaultMaxHeld when zero; negative
	// always streams).
	MaxHeld int64
	// Filters (filter.go): Servers keeps only the requests to the servers
	// one of these globs names (ServerMatches); TargetMap sends each
	// server's requests to the target of the first mapping that names it,
	// instead of to Target, and skips those of servers it does not map;
	// Include and Exclude keep requests by method and path ('GET /api/*',
	// '/health*'); RewritePath rewrites the recorded paths.
	Servers     []string
	TargetMap   []TargetMapping
	Include     []string
	Exclude     []string
	RewritePath []PathRewrite
	// HTTP2 builds every request's HTTP/2 form (Req.H2), not only those of
	// connections recorded as HTTP/2: the run may send them over HTTP/2.
	HTTP2 bool
}

// DefaultMaxHeld is the memory a plan may spend holding a window's
// requests (PlanOptions.MaxHeld), and a live replay holding the requests
// it took and has not sent (LiveOptions.MaxHeld).
const DefaultMaxHeld = 64 << 20

// Shard is one of Count disjoint shares of the recorded connections.
type Shard struct{ Index, Count int }

// ParseShard parses i/N, with 0 <= i < N: shards are numbered from 0.
func ParseShard(s string) (Shard, error) {
	bad := fmt.Errorf("shard %q: use i/N with 0 <= i < N, such as 0/4 (shards are numbered from 0)", s)
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, bad
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, bad
	}
	return Shard{Index: i, Count: n}, nil
}

func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// has reports whether the recorded connection belongs to the shard. The
// hash is fixed (not seeded), so every shard of a run agrees.
func (s Shard) has(conn uint64) bool {
	return s.Count <= 1 || mix(conn, 0x7368617264)%uint64(s.Count) == uint64(s.Index)
}

// Plan is the window of a tape, ready to replay: per recorded connection,
// its requests as bytes to send, with their offsets in the window.
type Plan struct {
	// Options are those the plan was built with.
	Options PlanOptions
	Spec    string
	Start   int64 // window start, Unix ns
	// Length is one pass of the window at 1x: the recorded span minus the
	// idle time removed. The 1x rate is over it.
	Length time.Duration
	// Recorded is the recorded span of the window, Unix ns, idle included.
	Recorded time.Duration
	// Clamped is set when the window asked for was longer than the
	// recording's activity, so the whole recording is the window.
	Clamped bool
	// MaxIdle is the idle bound applied (0: none); Idles lists the long
	// stretches without requests (those it shortened, and any of 10 s or
	// more), IdleRemoved the time removed from them.
	MaxIdle     time.Duration
	Idles       []Idle
	IdleRemoved time.Duration
	Conns       []Conn // by first request offset
	Requests    int64  // requests to send at 1x
	Skipped     map[string]int64
	Routes      []RouteKey
	// Redacted counts the requests carrying a redaction placeholder, by
	// header name, query:NAME and body:NAME, so the caller can warn that
	// the target will see it.
	Redacted map[string]int64
	// RouteRequests counts the requests of one pass at 1x by route, in
	// the order of Routes.
	RouteRequests []int64

	// Conns above holds the requests of a window small enough to hold
	// (PlanOptions.MaxHeld); a larger one leaves it nil and streams them.
	stream *tapeStream
	conns  connIndex
	peak1x int64 // replayed connections open at once at 1x; 0: compute from Conns
	order  []reqRef
	planOnce
	// SampleWeight is how many real connections each recorded connection
	// stands for: 100/sample_pct for a tape captured with --sample (10 for
	// 10%), 1 otherwise. Rate and every schedule count with it, so 1x is
	// the rate of the whole traffic, not of the sample.
	SampleWeight float64
	// Targets are where the requests go, by Req.Target: Options.Target
	// alone, or one per TargetMap entry.
	Targets []Target
	// Servers are the servers the window's requests went to, before any
	// filter, busiest first: a caller warns when several would all go to
	// one target.
	Servers []tape.ServerCount
}

// Target is one target of a plan and the requests of one pass at 1x that
// go to it.
type Target struct {
	Name     string // the TargetMap name that chose it; "" for Options.Target
	URL      *url.URL
	Requests int64
}

// Streamed reports whether the plan's requests are read from its tape on
// each pass rather than held in memory (PlanOptions.MaxHeld). A streamed
// plan must not outlive its tape.Reader.
func (p *Plan) Streamed() bool { return p.stream != nil }

// RouteKey names a route: a method and a route template.
type RouteKey struct{ Method, Route string }

// OtherRoute collects the routes beyond PlanOptions.MaxRoutes.
const OtherRoute = "(other)"

// Conn is one recorded client connection.
type Conn struct {
	ID   uint64
	Reqs []Req // in recorded order
	// End is when the connection's last recorded exchange ended (its
	// response's last byte, or its request's without one), as an offset in
	// the window: with the first offset, how long it was open.
	End   time.Duration
	HTTP2 bool // recorded as HTTP/2
}

// Req is one request to replay.
type Req struct {
	Offset time.Duration // from the window start
	Wire   []byte        // the request as sent: line, headers, body
	Head   bool          // a HEAD request: its response has no body
	Route  int32         // index in Plan.Routes
	Status int           // recorded status; 0 when no response was recorded
	H2     *H2Req        // the request as HTTP/2 sends it; nil when the plan has no use for it
	// Target is the index in Plan.Targets of where it goes. A replayed
	// connection is to one target at a time: an engine that meets a
	// request for another target on it closes it and opens one there, as
	// a client would.
	Target int32
}

// Shortened counts the idle stretches the idle bound shortened.
func (p *Plan) Shortened() int {
	n := 0
	for _, id := range p.Idles {
		if id.Kept < id.Recorded {
			n++
		}
	}
	return n
}

// Rate is the plan's request rate at 1x.
func (p *Plan) Rate() float64 {
	return float64(p.Requests) * p.weight() / p.Length.Seconds()
}

func (p *Plan) weight() float64 {
	if p.SampleWeight > 0 {
		return p.SampleWeight
	}
	return 1
}

// Load reads the window of r and builds the plan. It reads the window
// once, in time order, to learn what a plan must know before it runs (the
// idle stretches, routes, skipped and redacted requests, the recorded
// connections and their counts); it keeps the requests themselves only
// when they fit in PlanOptions.MaxHeld, and otherwise streams them from
// r each pass, so that memory does not grow with the tape: r must then
// stay open while the plan is used.
func Load(ctx context.Context, r *tape.Reader, o PlanOptions) (*Plan, error) {
	if o.Target == nil && len(o.TargetMap) == 0 {
		return nil, errors.New("no target")
	}
	filt, err := newFilter(o)
	if err != nil {
		return nil, err
	}
	if o.MaxRoutes <= 0 {
		o.MaxRoutes = 50
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = DefaultMaxIdle
	}
	o.MaxIdle = max(o.MaxIdle, 0)
	if o.MaxHeld == 0 {
		o.MaxHeld = DefaultMaxHeld
	}
	win, err := resolveWindow(ctx, r, o.Window, o.MaxIdle)
	if err != nil {
		return nil, err
	}
	from, to := win.from, win.to
	p := &Plan{Options: o, Spec: o.Window.Text, Start: from, Clamped: win.clamped, MaxIdle: o.MaxIdle,
		Skipped: map[string]int64{}, Redacted: map[string]int64{}, SampleWeight: 1, Targets: planTargets(o)}
	if pct := r.Meta().Source.SamplePct; pct > 0 && pct < 100 {
		p.SampleWeight = 100 / pct
	}
	servers := tape.NewServerCounter()
	noBodies := r.MetaErr() == nil && r.Meta().Source.NoRequestBodies && !o.SendWithoutBody
	ord, err := r.Ordered(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("read tape window: %w", err)
	}
	sel := &selector{o: o, noBodies: noBodies, filt: filt, h2: len(p.Targets) == 1}
	tb := newTimelineBuilder(from, o.MaxIdle)
	routes := newRouteCounter()
	rw := newRewriter(o)
	x := &p.conns
	var peak peakSweep
	// The recorded connections seen within connSplit, by id: a plan
	// remembers the connections open in the recording, not every
	// connection of the tape.
	type openConn struct {
		ord       int32
		last, end int64 // Unix ns: its last request's start, and the end of its exchanges
		flags     uint8
	}
	open := make(map[uint64]*openConn)
	closeConn := func(oc *openConn) {
		peak.closed(oc.end)
		x.setFlag(oc.ord, oc.flags)
	}
	var sweepAt int64
	var held int64
	for {
		e, err := ord.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tape window: %w", err)
		}
		tb.add(e.ReqStart)
		servers.Add(e)
		if e.ReqStart >= sweepAt {
			for id, oc := range open {
				if e.ReqStart-oc.last > int64(connSplit) {
					closeConn(oc)
					delete(open, id)
				}
			}
			sweepAt = e.ReqStart + int64(connSplit/4)
			// Every connection that started before then is closed or
			// known to be open: count them.
			peak.settle(e.ReqStart - int64(connSplit*5/4))
		}
		e, target, why, ok := sel.keep(e)
		if !ok {
			if why != "" {
				p.Skipped[why]++
			}
			continue
		}
		p.Targets[target].Requests++
		routes.add(RouteKey{e.Method, route.Template(e.Target)})
		oc := open[e.ConnID]
		if oc != nil && e.ReqStart-oc.last > int64(connSplit) {
			closeConn(oc) // idle so long a server would have closed it: replayed as another connection
			oc = nil
		}
		if oc == nil {
			oc = &openConn{ord: x.add(e.ConnID, tb.offset(e.ReqStart), 0), flags: connAllH2}
			peak.started(e.ReqStart)
			open[e.ConnID] = oc
		}
		switch {
		case !sel.h2:
			oc.flags = 0 // HTTP/2 goes to one target: a plan of several replays over HTTP/1.x (filter.go)
		case e.IsHTTP2():
			oc.flags |= connRecordedH2
		case !o.HTTP2:
			oc.flags &^= connAllH2 // this request has no HTTP/2 form
		}
		x.addN(oc.ord, 1)
		oc.last = e.ReqStart
		oc.end = max(oc.end, e.ReqEnd, e.ReqStart)
		if e.HasResponse() {
			oc.end = max(oc.end, e.RespEnd)
		}
		rw.countRedacted(e, p.Redacted)
		held += reqBytes(e)
		p.Requests++
	}
	for _, oc := range open {
		closeConn(oc)
	}
	open = nil
	peak.settle(1<<63 - 1)
	tl := tb.finish(to)
	p.Idles, p.IdleRemoved = tl.idles, tl.removedTotal()
	p.Recorded = time.Duration(to - from)
	p.Length = p.Recorded - p.IdleRemoved
	if win.all {
		// One pass of the whole recording lasts from its first request to
		// just after its last, and at least a second, so that looping a
		// tiny tape stays sane.
		p.Length = max(p.Length, time.Second)
	}
	p.Servers = servers.List()
	if p.Requests == 0 {
		return nil, filt.explain(noRequests(o.Window.Text, p.Skipped, r.Damage()), p)
	}
	p.Routes = routes.top(o.MaxRoutes)
	s := &tapeStream{r: r, from: from, to: to, tl: tl, o: o, sel: sel, targets: p.TargetURLs(), routes: make(map[RouteKey]int32, len(p.Routes)), other: -1}
	for i, k := range p.Routes {
		s.routes[k] = int32(i)
		if k.Route == OtherRoute {
			s.other = int32(i)
		}
	}
	p.RouteRequests = make([]int64, len(p.Routes))
	for k, n := range routes.counts {
		p.RouteRequests[s.routeOf(k)] += *n
	}
	p.peak1x = peak.peak
	p.once.Do(func() {}) // the index is built
	if held > o.MaxHeld && o.MaxHeld > 0 || o.MaxHeld < 0 {
		p.stream = s
		return p, nil
	}
	// Small enough to hold: one more pass renders every request once.
	cur, err := s.cursor(ctx, p, true)
	if err != nil {
		return nil, err
	}
	p.Conns = make([]Conn, x.len())
	for i := range p.Conns {
		o := int32(i)
		p.Conns[i] = Conn{ID: x.id(o), Reqs: make([]Req, 0, x.n(o)), HTTP2: x.flag(o)&connRecordedH2 != 0}
	}
	tc := cur.(*tapeCursor)
	for {
		c, rq, err := cur.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tape window: %w", err)
		}
		p.Conns[c].Reqs = append(p.Conns[c].Reqs, *rq)
		p.Conns[c].End = max(p.Conns[c].End, tl.offset(tc.end))
	}
	for i := range p.Conns {
		if len(p.Conns[i].Reqs) != int(x.n(int32(i))) {
			return nil, fmt.Errorf("the tape changed while it was read: recorded connection %d", x.id(int32(i)))
		}
	}
	return p, nil
}

// connSplit is how long a recorded connection may sit idle and still be
// replayed as one connection: past it (a server would have closed it long
// before), what follows is replayed on another. It bounds what a plan
// keeps of the tape's connections while it is read: those active within
// it.
const connSplit = 5 * time.Minute

// peakSweep finds the most recorded connections open at once (from each
// one's first request to the end of its last exchange) as the window is
// read in time order, holding only the connections of the last few
// minutes: a connection's start is counted once every connection that
// started before it is known to be closed or open then.
type peakSweep struct {
	starts  []int64 // starts not counted yet, in order (Unix ns), from startAt
	startAt int
	ends    endsHeap // ends of closed connections not yet before a counted start
	n       int64    // starts counted
	gone    int64    // of them, closed before the last start counted
	peak    int64
}

func (s *peakSweep) started(at int64) { s.starts = append(s.starts, at) }
func (s *peakSweep) closed(end int64) { s.ends.push(end) }

// settle counts the starts up to before, when the state of every
// connection that started earlier is known.
func (s *peakSweep) settle(before int64) {
	i := s.startAt
	for ; i < len(s.starts) && s.starts[i] <= before; i++ {
		at := s.starts[i]
		// One that ends where another starts overlaps it.
		for len(s.ends) > 0 && s.ends[0] < at {
			s.ends.pop()
			s.gone++
		}
		s.n++
		s.peak = max(s.peak, s.n-s.gone)
	}
	s.startAt = i
	if s.startAt > 4096 && s.startAt > len(s.starts)/2 {
		s.starts = append(s.starts[:0], s.starts[s.startAt:]...)
		s.startAt = 0
	}
}

// endsHeap is a min-heap of times.
type endsHeap []int64

func (h *endsHeap) push(t int64) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p] <= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *endsHeap) pop() int64 {
	s := *h
	t := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s[l] < s[m] {
			m = l
		}
		if r < n && s[r] < s[m] {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return t
}

// routeCounter counts requests by route. Past maxRouteKeys distinct
// routes (a tape whose paths carry free text the templates cannot
// collapse) it keeps the heavy hitters only (Misra-Gries), so that a long
// tape's plan stays bounded; the top routes keep their counts but for
// a bounded error.
//
// The keys are copies, and counts are incremented through pointers: a map
// assignment replaces the stored key with the one given, and a key
// pointing into a decoded chunk would keep the whole chunk alive.
type routeCounter struct {
	counts map[RouteKey]*int64
}

const maxRouteKeys = 1 << 16

func newRouteCounter() *routeCounter { return &routeCounter{counts: map[RouteKey]*int64{}} }

func (rc *routeCounter) add(k RouteKey) {
	if n, ok := rc.counts[k]; ok {
		*n++
		return
	}
	if len(rc.counts) >= maxRouteKeys {
		for key, n := range rc.counts {
			if *n <= 1 {
				delete(rc.counts, key)
			} else {
				*n--
			}
		}
		return
	}
	n := int64(1)
	rc.counts[RouteKey{strings.Clone(k.Method), strings.Clone(k.Route)}] = &n
}

func (rc *routeCounter) all() map[RouteKey]int64 {
	m := make(map[RouteKey]int64, len(rc.counts))
	for k, n := range rc.counts {
		m[k] = *n
	}
	return m
}

func (rc *routeCounter) top(limit int) []RouteKey { return topRoutes(rc.all(), limit) }

// noRequests explains an empty plan: what was skipped and why, and whether
// the tape was damaged (a damaged chunk's requests are lost, not skipped).
func noRequests(window string, skipped map[string]int64, damage []error) error {
	msg := fmt.Sprintf("window %s of the tape holds no request to replay", window)
	if len(skipped) > 0 {
		keys := make([]string, 0, len(skipped))
		for k := range skipped {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%d %s", skipped[k], strings.ReplaceAll(k, "_", " "))
		}
		msg += " (skipped: " + strings.Join(parts, ", ") + ")"
	}
	if len(damage) > 0 {
		msg += fmt.Sprintf("; the tape is damaged: %d part(s) could not be read, the first: %v", len(damage), damage[0])
	}
	return errors.New(msg)
}

// window is a resolved window: [from, to) in Unix ns.
type window struct {
	from, to int64
	all      bool // the whole recording
	clamped  bool // asked for more than the recording holds
}

// resolveWindow turns a window spec into [from, to) in Unix ns. The busiest
// window is searched over active time (idle stretches beyond maxIdle
// shortened), and a window longer than the recording's activity becomes
// the whole recording, marked clamped: its rate is never divided by time
// in which nothing was recorded.
func resolveWindow(ctx context.Context, r *tape.Reader, w WindowSpec, maxIdle time.Duration) (window, error) {
	rates, err := r.Rates(ctx)
	if err != nil {
		return window{}, fmt.Errorf("read tape rates: %w", err)
	}
	if len(rates.Seconds) == 0 {
		if d := r.Damage(); len(d) > 0 {
			return window{}, fmt.Errorf("the tape holds no readable requests: it is damaged (%v)", d[0])
		}
		return window{}, errors.New("the tape holds no requests")
	}
	switch w.Kind {
	case "peak":
		cr, back := rates.Compact(int64(maxIdle / time.Second))
		secs := int64(w.Dur / time.Second)
		if cr.Span() < secs {
			win, err := wholeRecording(ctx, r, rates)
			win.clamped = true
			return win, err
		}
		b := cr.Busiest(secs)
		return window{from: back(b.Start) * 1e9, to: (back(b.Start+secs-1) + 1) * 1e9}, nil
	case "range":
		from, to := w.From, w.To
		if !w.Abs {
			first, err := firstRequest(ctx, r, rates.Seconds[0])
			if err != nil {
				return window{}, err
			}
			from, to = first+w.From, first+w.To
		}
		if err := rangeHasRequests(rates, from, to, w.Text); err != nil {
			return window{}, err
		}
		return window{from: from, to: to}, nil
	}
	return wholeRecording(ctx, r, rates)
}

// wholeRecording is the window from the first request to just after the
// last.
func wholeRecording(ctx context.Context, r *tape.Reader, rates tape.Rates) (window, error) {
	first, err := firstRequest(ctx, r, rates.Seconds[0])
	if err != nil {
		return window{}, err
	}
	last := rates.Seconds[len(rates.Seconds)-1]
	var lastStart int64
	err = r.Window(ctx, last*1e9, (last+1)*1e9, func(e *tape.Exchange) error {
		lastStart = max(lastStart, e.ReqStart)
		return nil
	})
	if err != nil {
		return window{}, err
	}
	return window{from: first, to: lastStart + int64(time.Millisecond), all: true}, nil
}

// rangeHasRequests refuses a FROM-TO window in which no request starts,
// naming the nearest activity.
func rangeHasRequests(rates tape.Rates, from, to int64, text string) error {
	lo, hi := tape.UnixSecond(from), tape.UnixSecond(to-1)
	i := sort.Search(len(rates.Seconds), func(i int) bool { return rates.Seconds[i] >= lo })
	if i < len(rates.Seconds) && rates.Seconds[i] <= hi {
		return nil
	}
	first := rates.Seconds[0]
	near := func(sec int64) string {
		return fmt.Sprintf("+%v (%s)", time.Duration(sec-first)*time.Second, time.Unix(sec, 0).UTC().Format(time.RFC3339))
	}
	var where []string
	if i > 0 {
		where = append(where, "before it at "+near(rates.Seconds[i-1]))
	}
	if i < len(rates.Seconds) {
		where = append(where, "after it at "+near(rates.Seconds[i]))
	}
	return &OptionError{Option: "window", Err: fmt.Errorf("window %s holds no request; the nearest activity is %s (offsets from the first request)",
		text, strings.Join(where, ", and "))}
}

func firstRequest(ctx context.Context, r *tape.Reader, sec int64) (int64, error) {
	first := int64(1<<63 - 1)
	err := r.Window(ctx, sec*1e9, (sec+1)*1e9, func(e *tape.Exchange) error {
		first = min(first, e.ReqStart)
		return nil
	})
	return first, err
}

func skipReason(e *tape.Exchange, o PlanOptions, noBodies bool) string {
	switch {
	case e.Method == "CONNECT":
		return "connect_tunnel"
	case noBodies && needsBody(e.Method):
		return "no_body_recorded"
	case o.ReadOnly && e.Method != "GET" && e.Method != "HEAD" && e.Method != "OPTIONS":
		return "read_only"
	case e.Flags&tape.ReqBodyTruncated != 0 && !o.SendTruncated:
		return "body_truncated"
	}
	return ""
}

// needsBody reports whether requests of method carry a body as a rule:
// all but GET, HEAD, OPTIONS, DELETE and TRACE. Without the recorded body
// such a request cannot be replayed faithfully.
func needsBody(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "DELETE", "TRACE":
		return false
	}
	return true
}

func topRoutes(counts map[RouteKey]int64, limit int) []RouteKey {
	keys := make([]RouteKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i].Route+keys[i].Method < keys[j].Route+keys[j].Method
	})
	if len(keys) > limit {
		keys = append(keys[:limit:limit], RouteKey{Route: OtherRoute})
	}
	return keys
}

func overridden(name string, set []tape.Field) bool {
	for _, f := range set {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// hopHeaders are rewritten for the replayed message: framing follows the
// body actually sent, and herd does not wait for 100 Continue.
var hopHeaders = []string{"Content-Length", "Transfer-Encoding", "Expect"}

// requestBytes renders e for the target: origin-form target, headers in
// recorded order and casing, Host set to the target unless keepHost, the
// overrides applied in place, and the body framed by Content-Length.
func requestBytes(e *tape.Exchange, host string, o PlanOptions) []byte {
	target := originForm(e.Target)
	b := make([]byte, 0, 256+len(e.ReqBody))
	b = append(b, e.Method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, ' ')
	proto := e.Proto
	if proto == "" || proto == tape.HTTP2 {
		proto = "HTTP/1.1"
	}
	b = append(b, proto...)
	b = append(b, "\r\n"...)
	header := func(name, value string) {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}
	// emitted records the header names already written: a replaced name
	// is written once, at its first recorded position, with every value
	// given for it.
	emitted := make(map[string]bool)
	emit := func(name, recordedValue string) {
		lname := strings.ToLower(name)
		if emitted[lname] {
			return
		}
		emitted[lname] = true
		if !overridden(name, o.SetHeaders) {
			header(name, recordedValue)
			return
		}
		for _, s := range o.SetHeaders {
			if strings.EqualFold(s.Name, name) {
				header(s.Name, s.Value)
			}
		}
	}
	hadFraming := false
	for _, f := range e.ReqHeader {
		switch lname := strings.ToLower(f.Name); {
		case isHop(f.Name):
			hadFraming = hadFraming || lname != "expect"
		case lname == ":authority":
			// HTTP/2: the Host of HTTP/1.x.
			if o.KeepHost {
				header("Host", f.Value)
				emitted["host"] = true
			} else {
				emit("Host", host)
			}
		case strings.HasPrefix(lname, ":"):
			// Other pseudo-header fields have no HTTP/1.x form.
		case lname == "host" && !o.KeepHost:
			emit(f.Name, host)
		case overridden(f.Name, o.SetHeaders):
			emit(f.Name, f.Value)
		default:
			header(f.Name, f.Value) // repeated names (several Cookie lines) are kept as recorded
			if lname == "host" {
				emitted["host"] = true
			}
		}
	}
	if !emitted["host"] {
		emit("Host", host)
	}
	for _, s := range o.SetHeaders {
		emit(s.Name, "")
	}
	if len(e.ReqBody) > 0 || hadFraming {
		header("Content-Length", strconv.Itoa(len(e.ReqBody)))
	}
	b = append(b, "\r\n"...)
	return append(b, e.ReqBody...)
}

func isHop(name string) bool {
	for _, h := range hopHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// originForm reduces an absolute-form target (http://host/path) to its
// path and query, so that no request names another host.
func originForm(target string) string {
	if strings.HasPrefix(target, "/") || target == "*" {
		return target
	}
	if u, err := url.Parse(target); err == nil && u.Scheme != "" && u.Host != "" {
		if s := u.RequestURI(); s != "" {
			return s
		}
		return "/"
	}
	return target
}
