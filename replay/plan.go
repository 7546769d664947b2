package replay

import (
	"context"
	"errors"
	"fmt"
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
	Window        WindowSpec
	Target        *url.URL
	KeepHost      bool         // send the recorded Host header
	ReadOnly      bool         // send only GET, HEAD and OPTIONS
	SendTruncated bool         // send requests whose body was cut at capture
	SetHeaders    []tape.Field // replace (or add) these headers
	MaxRoutes     int          // routes measured separately; the rest are "(other)" (default 50)
	// Shard keeps only the recorded connections whose hash falls in shard
	// Index of Count, so that Count herd processes replay the window
	// together, each its share. Count 0 keeps them all.
	Shard Shard
	// HTTP2 builds every request's HTTP/2 form (Req.H2), not only those of
	// connections recorded as HTTP/2: the run may send them over HTTP/2.
	HTTP2 bool
}

// Shard is one of Count disjoint shares of the recorded connections.
type Shard struct{ Index, Count int }

// ParseShard parses i/N, with 0 <= i < N.
func ParseShard(s string) (Shard, error) {
	var sh Shard
	if _, err := fmt.Sscanf(s, "%d/%d", &sh.Index, &sh.Count); err != nil || sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
		return Shard{}, fmt.Errorf("shard %q: use i/N with 0 <= i < N, such as 0/4", s)
	}
	return sh, nil
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
	Spec     string
	Start    int64         // window start, Unix ns
	Length   time.Duration // window length: one pass at 1x
	Conns    []Conn        // by first request offset
	Requests int64         // requests to send at 1x
	Skipped  map[string]int64
	Routes   []RouteKey
	// Redacted counts the requests carrying a redaction placeholder, by
	// header name, so the caller can warn that the target will see it.
	Redacted map[string]int64
}

// RouteKey names a route: a method and a route template.
type RouteKey struct{ Method, Route string }

// OtherRoute collects the routes beyond PlanOptions.MaxRoutes.
const OtherRoute = "(other)"

// Conn is one recorded client connection.
type Conn struct {
	ID    uint64
	Reqs  []Req // in recorded order
	HTTP2 bool  // recorded as HTTP/2
}

// Req is one request to replay.
type Req struct {
	Offset time.Duration // from the window start
	Wire   []byte        // the request as sent: line, headers, body
	Head   bool          // a HEAD request: its response has no body
	Route  int32         // index in Plan.Routes
	Status int           // recorded status; 0 when no response was recorded
	H2     *H2Req        // the request as HTTP/2 sends it; nil when the plan has no use for it
}

// Rate is the plan's request rate at 1x.
func (p *Plan) Rate() float64 {
	return float64(p.Requests) / p.Length.Seconds()
}

// Load reads the window of r and builds the plan.
func Load(ctx context.Context, r *tape.Reader, o PlanOptions) (*Plan, error) {
	if o.Target == nil {
		return nil, errors.New("no target")
	}
	if o.MaxRoutes <= 0 {
		o.MaxRoutes = 50
	}
	from, to, length, err := resolveWindow(ctx, r, o.Window)
	if err != nil {
		return nil, err
	}
	p := &Plan{Spec: o.Window.Text, Start: from, Length: length, Skipped: map[string]int64{}, Redacted: map[string]int64{}}
	byConn := make(map[uint64][]*tape.Exchange)
	err = r.Window(ctx, from, to, func(e *tape.Exchange) error {
		c := *e
		byConn[e.ConnID] = append(byConn[e.ConnID], &c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tape window: %w", err)
	}
	counts := make(map[RouteKey]int64)
	type pending struct {
		e   *tape.Exchange
		key RouteKey
	}
	conns := make(map[uint64][]pending)
	for id, exs := range byConn {
		if !o.Shard.has(id) {
			continue
		}
		sort.Slice(exs, func(i, j int) bool {
			if exs[i].Seq != exs[j].Seq {
				return exs[i].Seq < exs[j].Seq
			}
			return exs[i].ReqStart < exs[j].ReqStart
		})
		for _, e := range exs {
			if why := skipReason(e, o); why != "" {
				p.Skipped[why]++
				continue
			}
			k := RouteKey{e.Method, route.Template(e.Target)}
			counts[k]++
			conns[id] = append(conns[id], pending{e, k})
		}
	}
	p.Routes = topRoutes(counts, o.MaxRoutes)
	index := make(map[RouteKey]int32, len(p.Routes))
	for i, k := range p.Routes {
		index[k] = int32(i)
	}
	other, hasOther := index[RouteKey{Route: OtherRoute}]
	host := o.Target.Host
	for id, ps := range conns {
		c := Conn{ID: id, Reqs: make([]Req, len(ps))}
		for i, pe := range ps {
			e := pe.e
			ri, ok := index[pe.key]
			if !ok && hasOther {
				ri = other
			}
			c.Reqs[i] = Req{
				Offset: time.Duration(e.ReqStart - from),
				Wire:   requestBytes(e, host, o),
				Head:   e.Method == "HEAD",
				Route:  ri,
			}
			if e.HasResponse() {
				c.Reqs[i].Status = e.Status
			}
			if e.IsHTTP2() || o.HTTP2 {
				var prev *tape.Exchange
				if i > 0 {
					prev = ps[i-1].e
				}
				c.Reqs[i].H2 = h2Request(e, prev, o.Target.Scheme, host, o)
				c.HTTP2 = c.HTTP2 || e.IsHTTP2()
			}
			for _, f := range e.ReqHeader {
				if strings.HasPrefix(f.Value, tape.RedactedPrefix) || strings.Contains(f.Value, "="+tape.RedactedPrefix) {
					if !overridden(f.Name, o.SetHeaders) {
						p.Redacted[strings.ToLower(f.Name)]++
					}
				}
			}
		}
		p.Requests += int64(len(c.Reqs))
		p.Conns = append(p.Conns, c)
	}
	sort.Slice(p.Conns, func(i, j int) bool {
		a, b := p.Conns[i], p.Conns[j]
		if a.Reqs[0].Offset != b.Reqs[0].Offset {
			return a.Reqs[0].Offset < b.Reqs[0].Offset
		}
		return a.ID < b.ID
	})
	if p.Requests == 0 {
		return nil, fmt.Errorf("window %s of the tape holds no request to replay (skipped: %v)", o.Window.Text, p.Skipped)
	}
	return p, nil
}

// resolveWindow turns a window spec into [from, to) in Unix ns and the
// length of one pass.
func resolveWindow(ctx context.Context, r *tape.Reader, w WindowSpec) (from, to int64, length time.Duration, err error) {
	rates, err := r.Rates(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read tape rates: %w", err)
	}
	if len(rates.Seconds) == 0 {
		return 0, 0, 0, errors.New("the tape holds no requests")
	}
	switch w.Kind {
	case "peak":
		b := rates.Busiest(int64(w.Dur / time.Second))
		return b.Start * 1e9, (b.Start + b.Seconds) * 1e9, w.Dur, nil
	case "range":
		if w.Abs {
			return w.From, w.To, time.Duration(w.To - w.From), nil
		}
		first, err := firstRequest(ctx, r, rates.Seconds[0])
		if err != nil {
			return 0, 0, 0, err
		}
		return first + w.From, first + w.To, time.Duration(w.To - w.From), nil
	}
	first, err := firstRequest(ctx, r, rates.Seconds[0])
	if err != nil {
		return 0, 0, 0, err
	}
	last := rates.Seconds[len(rates.Seconds)-1]
	var lastStart int64
	err = r.Window(ctx, last*1e9, (last+1)*1e9, func(e *tape.Exchange) error {
		lastStart = max(lastStart, e.ReqStart)
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	// One pass lasts from the first request to just after the last, and at
	// least a second, so that looping a tiny tape stays sane.
	length = max(time.Duration(lastStart-first)+time.Millisecond, time.Second)
	return first, first + int64(length), length, nil
}

func firstRequest(ctx context.Context, r *tape.Reader, sec int64) (int64, error) {
	first := int64(1<<63 - 1)
	err := r.Window(ctx, sec*1e9, (sec+1)*1e9, func(e *tape.Exchange) error {
		first = min(first, e.ReqStart)
		return nil
	})
	return first, err
}

func skipReason(e *tape.Exchange, o PlanOptions) string {
	switch {
	case e.Method == "CONNECT":
		return "connect_tunnel"
	case o.ReadOnly && e.Method != "GET" && e.Method != "HEAD" && e.Method != "OPTIONS":
		return "read_only"
	case e.Flags&tape.ReqBodyTruncated != 0 && !o.SendTruncated:
		return "body_truncated"
	}
	return ""
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
