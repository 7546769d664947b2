package replay

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/herd-replay/herd/internal/route"
	"github.com/herd-replay/herd/tape"
)

// connIndex is what a plan keeps of every recorded connection, whatever
// the tape's length: its id, its first request's offset and how many
// requests it carries, in order of first request (then id). That is 20
// bytes a connection, in blocks that grow without copying; the requests
// themselves are held only for a small window and otherwise streamed from
// the tape (reqCursor).
type connIndex struct {
	ids    [][]uint64
	firsts [][]time.Duration
	ns     [][]int32
	flags  [][]uint8 // connRecordedH2, connAllH2
	count  int
}

// Flags of a recorded connection, for HTTP/2 (h2Engine.uses).
const (
	connRecordedH2 = 1 << iota // recorded as HTTP/2
	connAllH2                  // every request has its HTTP/2 form
)

const indexBlock = 1 << 14

func (x *connIndex) len() int { return x.count }

func (x *connIndex) id(i int32) uint64           { return x.ids[i/indexBlock][i%indexBlock] }
func (x *connIndex) first(i int32) time.Duration { return x.firsts[i/indexBlock][i%indexBlock] }
func (x *connIndex) n(i int32) int32             { return x.ns[i/indexBlock][i%indexBlock] }

func (x *connIndex) flag(i int32) uint8                { return x.flags[i/indexBlock][i%indexBlock] }
func (x *connIndex) setFirst(i int32, f time.Duration) { x.firsts[i/indexBlock][i%indexBlock] = f }
func (x *connIndex) addN(i int32, d int32)             { x.ns[i/indexBlock][i%indexBlock] += d }
func (x *connIndex) setFlag(i int32, f uint8)          { x.flags[i/indexBlock][i%indexBlock] = f }

// add appends a connection and returns its ordinal.
func (x *connIndex) add(id uint64, first time.Duration, n int32) int32 {
	if x.count%indexBlock == 0 {
		x.ids = append(x.ids, make([]uint64, 0, indexBlock))
		x.firsts = append(x.firsts, make([]time.Duration, 0, indexBlock))
		x.ns = append(x.ns, make([]int32, 0, indexBlock))
		x.flags = append(x.flags, make([]uint8, 0, indexBlock))
	}
	b := len(x.ids) - 1
	x.ids[b] = append(x.ids[b], id)
	x.firsts[b] = append(x.firsts[b], first)
	x.ns[b] = append(x.ns[b], n)
	x.flags[b] = append(x.flags[b], 0)
	x.count++
	return int32(x.count - 1)
}

// index returns the plan's connection index, built from Conns for a plan
// that holds its requests (one made in memory, by Load for a small window
// or by hand).
func (p *Plan) index() *connIndex {
	p.once.Do(func() {
		if p.stream != nil {
			return // Load built it
		}
		x := &p.conns
		for i := range p.Conns {
			c := &p.Conns[i]
			first := time.Duration(0)
			if len(c.Reqs) > 0 {
				first = c.Reqs[0].Offset
			}
			i := x.add(c.ID, first, int32(len(c.Reqs)))
			var f uint8 = connAllH2
			if c.HTTP2 {
				f |= connRecordedH2
			}
			for j := range c.Reqs {
				if c.Reqs[j].H2 == nil {
					f &^= connAllH2
				}
			}
			x.setFlag(i, f)
		}
	})
	return &p.conns
}

// Connections is the number of recorded connections the plan replays (at
// 1x), whether it holds their requests or streams them.
func (p *Plan) Connections() int { return p.index().len() }

// reqCursor yields the requests of one pass of a plan's window in time
// order (offset, then recorded connection, then position on it), each with
// the ordinal of its recorded connection in the plan's index. At the end
// it returns io.EOF.
type reqCursor interface {
	next() (conn int32, r *Req, err error)
}

// requests starts a pass over the plan's requests. Without render, only
// each request's offset is set: what counting needs.
func (p *Plan) requests(ctx context.Context, render bool) (reqCursor, error) {
	if p.stream != nil {
		return p.stream.cursor(ctx, p, render)
	}
	p.index()
	p.orderOnce.Do(func() {
		// Conns of a plan with requests in memory; positions sorted by
		// offset, then connection (in index order), then position.
		for c := range p.Conns {
			for i := range p.Conns[c].Reqs {
				p.order = append(p.order, reqRef{conn: int32(c), req: int32(i)})
			}
		}
		slices.SortStableFunc(p.order, func(a, b reqRef) int {
			if c := cmp.Compare(p.Conns[a.conn].Reqs[a.req].Offset, p.Conns[b.conn].Reqs[b.req].Offset); c != 0 {
				return c
			}
			if c := cmp.Compare(a.conn, b.conn); c != 0 {
				return c
			}
			return cmp.Compare(a.req, b.req)
		})
	})
	return &memCursor{p: p}, nil
}

// reqRef locates a request of a plan held in memory.
type reqRef struct{ conn, req int32 }

type memCursor struct {
	p *Plan
	i int
}

func (c *memCursor) next() (int32, *Req, error) {
	if c.i >= len(c.p.order) {
		return 0, nil, io.EOF
	}
	ref := c.p.order[c.i]
	c.i++
	return ref.conn, &c.p.Conns[ref.conn].Reqs[ref.req], nil
}

// tapeStream is a plan whose window is too large to hold: its requests are
// read from the tape, in time order, each time a pass needs them, and
// rendered for the target as they are read.
type tapeStream struct {
	r        *tape.Reader
	from, to int64
	tl       *timeline
	o        PlanOptions
	sel      *selector
	targets  []*url.URL // by Req.Target
	routes   map[RouteKey]int32
	other    int32 // index of the (other) route; -1 when every route is listed
}

// selector decides which recorded exchanges of the window are replayed,
// to which target, and with what path: the one decision that the plan's
// counts and every pass share.
type selector struct {
	o        PlanOptions
	noBodies bool // the tape's source recorded no request bodies (skipReason)
	filt     *filter
	h2       bool // requests may have their HTTP/2 form: the plan has one target
}

// keep says whether e is replayed, to which target (Req.Target), and if
// not why ("" for a connection of another shard, which is not counted).
// With path rewrites, the exchange it returns is a rewritten copy of e.
func (sel *selector) keep(e *tape.Exchange) (*tape.Exchange, int32, string, bool) {
	if !sel.o.Shard.has(e.ConnID) {
		return e, 0, "", false
	}
	target, why := sel.filt.server(e)
	if why == "" {
		why = skipReason(e, sel.o, sel.noBodies)
	}
	if why == "" {
		if len(sel.filt.rewrites) > 0 {
			c := *e
			e = &c
		}
		why = sel.filt.request(e)
	}
	return e, target, why, why == ""
}

func (s *tapeStream) cursor(ctx context.Context, p *Plan, render bool) (reqCursor, error) {
	ord, err := s.r.Ordered(ctx, s.from, s.to)
	if err != nil {
		return nil, fmt.Errorf("read tape window: %w", err)
	}
	return &tapeCursor{s: s, x: &p.conns, ord: ord, open: map[uint64]*openConn{}, render: render,
		rw: newRewriter(s.o)}, nil
}

// tapeCursor reads one pass of a streamed plan. It knows a recorded
// connection by id only while it is open: from its first request to its
// last (the index has its count), so its memory is that of the
// connections open at once in the recording.
type tapeCursor struct {
	s      *tapeStream
	x      *connIndex
	ord    *tape.Ordered
	open   map[uint64]*openConn
	next_  int32 // ordinal of the next connection to open
	render bool
	rw     *rewriter
	end    int64 // when the exchange of the last request returned ended (Unix ns)
}

type openConn struct {
	ord  int32
	left int32
	prev tape.Exchange // what HTTP/2's form needs of the request before: whether and when it was answered
}

func (c *tapeCursor) next() (int32, *Req, error) {
	for {
		e, err := c.ord.Next()
		if err != nil {
			return 0, nil, err
		}
		e, target, _, ok := c.s.sel.keep(e)
		if !ok {
			continue
		}
		// A connection's requests run from its ordinal's first on, as
		// many as it has: the next request of its id after that belongs
		// to another connection of the plan (one Load split at a long
		// idle stretch), at the next ordinal.
		oc := c.open[e.ConnID]
		if oc == nil {
			if int(c.next_) >= c.x.len() || c.x.id(c.next_) != e.ConnID {
				return 0, nil, fmt.Errorf("the tape changed while it was replayed: recorded connection %d is not where the plan has it", e.ConnID)
			}
			oc = &openConn{ord: c.next_, left: c.x.n(c.next_)}
			c.next_++
			c.open[e.ConnID] = oc
		}
		if oc.left--; oc.left <= 0 {
			delete(c.open, e.ConnID)
		}
		c.end = max(e.ReqEnd, e.ReqStart)
		if e.HasResponse() {
			c.end = max(c.end, e.RespEnd)
		}
		r := &Req{Offset: c.s.tl.offset(e.ReqStart), Target: target}
		if c.render {
			t := c.s.targets[target]
			c.s.fill(r, e, c.rw, t.Host)
			if c.s.sel.h2 && (e.IsHTTP2() || c.s.o.HTTP2) {
				var prev *tape.Exchange
				if oc.left+1 < c.x.n(oc.ord) {
					prev = &oc.prev
				}
				r.H2 = h2Request(e, prev, t.Scheme, t.Host, c.s.o)
			}
			oc.prev = tape.Exchange{Flags: e.Flags & tape.NoResponse, RespEnd: e.RespEnd}
		}
		return oc.ord, r, nil
	}
}

// fill renders a recorded exchange into the request sent for it.
func (s *tapeStream) fill(r *Req, e *tape.Exchange, rw *rewriter, host string) {
	r.Wire = requestBytes(rw.request(e), host, s.o)
	r.Head = e.Method == "HEAD"
	r.Route = s.routeOf(RouteKey{e.Method, route.Template(e.Target)})
	if e.HasResponse() {
		r.Status = e.Status
	}
}

func (s *tapeStream) routeOf(k RouteKey) int32 {
	if i, ok := s.routes[k]; ok {
		return i
	}
	return max(s.other, 0)
}

// reqBytes estimates what a request takes in memory once rendered, to
// decide whether a window is held or streamed.
func reqBytes(e *tape.Exchange) int64 {
	n := int64(len(e.Method)+len(e.Target)+len(e.ReqBody)) + 64
	for _, f := range e.ReqHeader {
		n += int64(len(f.Name) + len(f.Value) + 4)
	}
	return n + 80 // the Req itself and its slice
}

// planOnce holds the lazily built parts of a plan.
type planOnce struct {
	once      sync.Once
	orderOnce sync.Once
}
