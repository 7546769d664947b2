package capture

import (
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"
	"github.com/herd-replay/herd/tape"
)

// maxDeferred bounds the responses kept while waiting for a request that
// may still arrive (a request delayed behind a gap in the other direction).
const maxDeferred = 64

// conn is one TCP connection: both directions, the requests waiting for
// their responses, and what has been written.
type conn struct {
	eng  *engine
	id   uint64
	addr [2]netip.AddrPort // sender of half 0 (the first packet seen) and of half 1
	h    [2]half

	q        []*message // requests in order, not yet written
	ans      int        // q[:ans] have their response assigned
	deferred []*message // responses seen before any request they could answer
	holdFor  *message   // the Upgrade or CONNECT request the client waits on
	h2       *h2conn    // the HTTP/2 decoder, once the connection speaks it

	seq      uint32 // exchanges written
	requests uint32 // requests handed to Options.OnRequest
	bodies   int64  // request body bytes stored in q
	mem      int64  // bytes buffered, as last accounted in the engine
	lastSeen time.Time
	http     bool
	closed   bool
}

func newConn(e *engine, id uint64, netFlow gopacket.Flow, tcp *layers.TCP) *conn {
	c := &conn{eng: e, id: id}
	src, dst := netFlow.Endpoints()
	sa, _ := netip.AddrFromSlice(src.Raw())
	da, _ := netip.AddrFromSlice(dst.Raw())
	c.addr[0] = netip.AddrPortFrom(sa, uint16(tcp.SrcPort))
	c.addr[1] = netip.AddrPortFrom(da, uint16(tcp.DstPort))
	for i := range c.h {
		c.h[i] = half{c: c, idx: i, lineStart: true}
	}
	// With --port, the side on a listed port is the server, unless both
	// are (then the first start line decides).
	srv0, srv1 := e.ports.has(c.addr[0].Port()), e.ports.has(c.addr[1].Port())
	switch {
	case srv0 && !srv1:
		c.h[0].role, c.h[1].role = roleServer, roleClient
	case srv1 && !srv0:
		c.h[0].role, c.h[1].role = roleClient, roleServer
	}
	return c
}

// Accept is called for every packet of the connection before reassembly.
func (c *conn) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, ac reassembly.AssemblerContext) bool {
	if c.closed {
		return false
	}
	if ci.Timestamp.After(c.lastSeen) {
		c.lastSeen = ci.Timestamp
	}
	if nextSeq == -1 {
		h := &c.h[dirIndex(dir)]
		if tcp.SYN {
			h.synced = true
		} else {
			// Mid-connection: the capture started after the handshake.
			// Take this packet as the start; the parser resynchronises
			// on the first start line.
			*start = true
		}
	}
	return true
}

func dirIndex(dir reassembly.TCPFlowDirection) int {
	if dir == reassembly.TCPDirClientToServer {
		return 0
	}
	return 1
}

// ReassembledSG receives the next contiguous bytes of one direction.
func (c *conn) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	if c.closed {
		return
	}
	dir, _, end, skip := sg.Info()
	h := &c.h[dirIndex(dir)]
	length, _ := sg.Lengths()
	seg := segment{sg: sg, packet: true}
	if skip > 0 {
		ts := h.lastTS
		if length > 0 {
			ts = sg.CaptureInfo(0).Timestamp.UnixNano()
		}
		h.gap(int64(skip), ts)
	}
	if length > 0 {
		seg.data = sg.Fetch(length)
		h.feed(&seg)
	}
	if end {
		h.end()
	}
	c.afterData()
}

// afterData accounts the connection's buffers after the parser has taken
// new bytes, and flushes it when they exceed its bound.
func (c *conn) afterData() {
	c.account()
	if c.mem > c.eng.opts.MaxConnBuffered {
		c.flush()
	}
}

// ReassemblyComplete is called once both directions have ended (FIN, RST,
// idle timeout or the end of the input).
func (c *conn) ReassemblyComplete(ac reassembly.AssemblerContext) bool {
	c.finish(incEnd)
	c.closed = true
	st := &c.eng.stats
	switch {
	case c.http:
		st.HTTPConnections++
	case c.h[0].payload || c.h[1].payload:
		st.NonHTTPConnections++
	default:
		st.EmptyConnections++
	}
	delete(c.eng.live, c)
	c.account()
	// Keep the connection in the assembler's pool: the last ACKs after
	// the FINs belong to it (and must not open a new, empty connection).
	// A new SYN on the 4-tuple replaces it; the idle timeout removes it.
	return false
}

// account updates the engine's count of buffered bytes for this connection.
func (c *conn) account() {
	var m int64
	if !c.closed {
		m = c.bodies + int64(len(c.h[0].buf)+len(c.h[1].buf)+c.h[0].heldBytes+c.h[1].heldBytes)
		if c.h2 != nil {
			m += c.h2.mem()
		}
	}
	c.eng.mem += m - c.mem
	c.mem = m
}

// flush ends everything in progress to free memory; the connection goes on
// and resynchronises at its next start lines.
func (c *conn) flush() {
	c.eng.stats.MemoryFlushes++
	c.finish(incFlush)
	c.account()
}

// finish ends both directions' messages and writes or discards every
// request still queued.
func (c *conn) finish(why incomplete) {
	c.h[0].finish(why)
	c.h[1].finish(why)
	if c.h2 != nil {
		c.h2.finish(why)
	}
	for len(c.q) > 0 {
		c.pop()
	}
	c.ans = 0
	for range c.deferred {
		c.eng.stats.OrphanResponses++
	}
	c.deferred = nil
	c.holdFor = nil
}

// setRole records that h sends requests (roleClient) or responses.
func (c *conn) setRole(h *half, r role) {
	if h.role != roleUnknown {
		return
	}
	other := &c.h[1-h.idx]
	h.role = r
	if r == roleClient {
		other.role = roleServer
	} else {
		other.role = roleClient
	}
}

// client returns the index of the client half.
func (c *conn) client() int {
	if c.h[1].role == roleClient {
		return 1
	}
	return 0
}

// addRequest queues a request whose start line was just seen.
func (c *conn) addRequest(m *message) {
	// Responses seen before any request: those that began before this
	// request are orphans (their request was before the capture); the
	// first that began after it answers it.
	for len(c.deferred) > 0 {
		r := c.deferred[0]
		c.deferred = c.deferred[1:]
		if r.start >= m.start {
			m.resp, r.req = r, m
			break
		}
		c.eng.stats.OrphanResponses++
	}
	c.q = append(c.q, m)
	if m.resp != nil {
		c.ans = len(c.q)
	}
}

// addResponse pairs a response whose status line was just seen with the
// oldest request still unanswered. Responses come in request order
// (RFC 9112 9.3.2), so pipelined requests pair in order.
func (c *conn) addResponse(m *message) {
	if c.ans < len(c.q) {
		req := c.q[c.ans]
		if req.start <= m.start {
			req.resp, m.req = m, req
			c.ans++
			return
		}
		// It began before the oldest request we have: it answers one
		// the capture did not see.
		c.eng.stats.OrphanResponses++
		return
	}
	if len(c.deferred) >= maxDeferred {
		c.eng.stats.OrphanResponses++
		c.deferred = c.deferred[1:]
	}
	c.deferred = append(c.deferred, m)
}

// requestLost records a request that fell whole into a gap of the client
// direction: its response, if seen, must not be paired with the next one.
func (c *conn) requestLost(ts int64) { c.requestCut(ts, reqLostInGap) }

// requestCut queues a request that was cut before its start line was
// complete, so that its response, if seen, is discarded with it rather
// than paired with the next request.
func (c *conn) requestCut(ts int64, why discardReason) {
	m := &message{start: ts, end: ts, done: true, drop: why}
	m.h.request = true
	c.addRequest(m)
	c.tryEmit()
}

// responseLost records that the start of the next response fell into a gap
// of the server direction.
func (c *conn) responseLost(ts int64) {
	if c.ans >= len(c.q) || c.q[c.ans].start > ts {
		return
	}
	req := c.q[c.ans]
	r := &message{start: ts, end: ts, done: true, req: req, flags: tape.NoResponse | tape.Gap}
	req.resp = r
	c.ans++
	if c.holdFor == req {
		c.release()
	}
	c.tryEmit()
}

// brokenResponse assigns to the oldest unanswered request a response that
// is not HTTP (a server answering with raw bytes). It stays open, counting
// bytes, until the server's next start line.
func (c *conn) brokenResponse(ts int64) *message {
	if c.ans >= len(c.q) || c.q[c.ans].start > ts {
		return nil
	}
	req := c.q[c.ans]
	r := &message{start: ts, end: ts, req: req, flags: tape.RespIncomplete, why: incMalformed}
	req.resp = r
	c.ans++
	return r
}

// bodyBytes hands body bytes to m, accounting what it stores.
func (c *conn) bodyBytes(m *message, b []byte) {
	c.bodies += int64(m.bodyBytes(b, c.eng.opts.MaxBody))
}

// tunnel ends HTTP on the connection after req was answered with 101
// Switching Protocols or a successful CONNECT.
func (c *conn) tunnel(req *message) {
	req.flags |= tape.Upgraded
	c.eng.stats.UpgradedConnections++
	for i := range c.h {
		h := &c.h[i]
		if h.msg != nil {
			h.cut(incEnd)
		}
		for _, s := range h.held {
			c.eng.stats.TunnelBytes += int64(len(s.data))
		}
		h.held, h.heldBytes, h.buf = nil, 0, nil
		h.st = stTunnel
	}
	c.holdFor = nil
}

// release resumes HTTP parsing of the client's held bytes: the Upgrade or
// CONNECT was refused, or no answer came.
func (c *conn) release() {
	c.holdFor = nil
	h := &c.h[c.client()]
	if h.st != stHold {
		return
	}
	held := h.held
	h.held, h.heldBytes = nil, 0
	h.st, h.lineStart, h.synced = stIdle, true, true
	for _, s := range held {
		if s.gap > 0 {
			h.gap(s.gap, s.ts)
		}
		if len(s.data) > 0 {
			h.feed(&segment{data: s.data, ts: s.ts})
		}
	}
}

// tryEmit writes the requests at the head of the queue whose exchange is
// settled.
func (c *conn) tryEmit() {
	for len(c.q) > 0 {
		m := c.q[0]
		if !m.done {
			return
		}
		if m.resp == nil {
			if len(c.q) <= c.eng.opts.MaxPending {
				return
			}
		} else if !m.resp.done {
			return
		}
		c.pop()
	}
}

// pop removes the head of the queue and writes or discards it.
func (c *conn) pop() {
	m := c.q[0]
	c.q[0] = nil
	c.q = c.q[1:]
	if c.ans > 0 {
		c.ans--
	}
	c.bodies -= int64(len(m.body))
	if !m.done {
		// Only at finish: a request still being read.
		m.drop = reqIncomplete
	}
	if m.drop != keep {
		c.eng.stats.discard(m.drop)
		return
	}
	c.eng.emit(c, m)
}
