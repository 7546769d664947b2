package capture

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/herd-replay/herd/tape"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 over cleartext TCP (h2c), reached by the client's connection
// preface (prior knowledge) or by Upgrade: h2c. Each stream becomes one
// exchange. Frames are read by a bounded reader of its own, fed by the
// reassembled bytes as they come: DATA payloads stream through (request
// bodies stored up to MaxBody, response bodies hashed), header blocks are
// decoded by HPACK fragment by fragment, and only a control frame's first
// bytes are kept, so a connection holds no more than its decoders' tables,
// its open streams' stored bodies and one header list.

const (
	h2Preface     = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2PrefaceLine = "PRI * HTTP/2.0"

	h2FrameHeader = 9
	// h2TableMax is the largest HPACK dynamic table a peer may switch to.
	// Browsers and servers use 4 KiB to 64 KiB.
	h2TableMax = 64 << 10
	// h2ControlKeep is how much of a control frame's payload is kept: the
	// fields herd reads fit (RST_STREAM's code); the rest is skipped.
	h2ControlKeep = 16
)

// Frame types and flags (RFC 9113 6).
const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2RSTStream    = 0x3
	h2PushPromise  = 0x5
	h2Continuation = 0x9

	h2EndStream  = 0x1
	h2EndHeaders = 0x4
	h2Padded     = 0x8
	h2Priority   = 0x20
)

// h2conn decodes the HTTP/2 frames of both directions of one connection.
type h2conn struct {
	c       *conn
	client  int // index of the client's half
	dirs    [2]h2dir
	streams map[uint32]*h2stream
	lastID  uint32 // highest stream the client opened
}

// h2stream is one stream: its request, once decoded, and its response.
type h2stream struct {
	id   uint32
	req  *message
	resp *message
	// stub: a stream that is no exchange (a server push, or a response to
	// a request the capture did not see), tracked only to absorb its
	// frames without counting them twice.
	stub bool
}

// h2dir is the frame reader of one direction.
type h2dir struct {
	x       *h2conn
	idx     int
	dec     *hpack.Decoder
	preface int  // bytes of the connection preface still expected
	lost    bool // framing or HPACK state lost: the rest is skipped

	hdr    [h2FrameHeader]byte
	nhdr   int
	typ    byte
	flags  byte
	length int
	stream uint32
	read   int   // payload bytes consumed
	start  int64 // time of the frame's first byte

	prefix int    // payload bytes before the content: pad length, priority, promised stream
	pad    int    // padding after the content
	pre    []byte // those first bytes (or a control frame's first bytes)

	// The header block being decoded (HEADERS or PUSH_PROMISE, then
	// CONTINUATION frames).
	inBlock    bool
	block      uint32 // its stream
	blockEnd   bool   // END_STREAM was on its HEADERS
	blockPush  bool
	promised   uint32
	blockStart int64
	fields     []tape.Field // regular fields, in order
	pseudo     map[string]string
	size       int  // bytes of fields collected
	tooLarge   bool // a field or the list exceeds what a tape record holds
	dropBlock  bool // its stream was cut by a flush: decode it, then drop it
	badPseudo  bool // a pseudo-header after a regular field, or repeated
	regularYet bool
}

// h2Version is Exchange.Proto and RespProto of an HTTP/2 exchange.
const h2Version = tape.HTTP2

// isPreface reports whether line (without its '\n') is the first line of
// the HTTP/2 connection preface, sent by a client.
func (h *half) isPreface(line []byte) bool {
	return h.role != roleServer && h.c.h2 == nil && string(trimCR(line)) == h2PrefaceLine
}

// upgradesToH2 reports whether req asked to upgrade to h2c.
func upgradesToH2(req *message) bool {
	if !req.h.upgrade {
		return false
	}
	for _, f := range req.h.fields {
		if strings.EqualFold(f.Name, "Upgrade") && hasToken(f.Value, "h2c") {
			return true
		}
	}
	return false
}

// startH2 switches the connection to HTTP/2: client is the half that sent
// the preface, of which preface bytes are still to come.
func (c *conn) startH2(client *half, preface int) *h2conn {
	c.setRole(client, roleClient)
	c.http = true
	c.eng.stats.H2Connections++
	x := &h2conn{c: c, client: client.idx, streams: make(map[uint32]*h2stream)}
	for i := range x.dirs {
		d := &x.dirs[i]
		d.x, d.idx = x, i
		d.dec = hpack.NewDecoder(4096, d.emit)
		d.dec.SetAllowedMaxDynamicTableSize(h2TableMax)
		d.dec.SetMaxStringLength(tape.MaxHeaderValue)
	}
	x.dirs[client.idx].preface = preface
	c.h2 = x
	for i := range c.h {
		h := &c.h[i]
		if h.msg != nil {
			h.cut(incEnd)
		}
		h.endJunk()
		h.st, h.buf = stH2, nil
	}
	return x
}

// upgradeH2 switches the connection to HTTP/2 after a 101 answered req's
// Upgrade: h2c. The request goes on as stream 1, its response to come in
// HTTP/2 (RFC 7540 3.2); the client's bytes held since the request start
// with the full connection preface.
func (c *conn) upgradeH2(req *message) {
	c.eng.stats.H2Upgrades++
	if i := slices.Index(c.q, req); i >= 0 {
		c.q = slices.Delete(c.q, i, i+1)
		if i < c.ans {
			c.ans--
		}
	}
	cl := &c.h[c.client()]
	held := cl.held
	cl.held, cl.heldBytes = nil, 0
	c.holdFor = nil
	x := c.startH2(cl, len(h2Preface))
	req.resp = nil
	req.h.fields = h2FromUpgrade(req.h.fields)
	req.h.proto = h2Version
	req.stream, req.seq = 1, c.seq
	c.seq++
	x.streams[1] = &h2stream{id: 1, req: req}
	x.lastID = 1
	for _, s := range held {
		if s.gap > 0 {
			x.gap(cl.idx, s.gap, s.ts)
		}
		if len(s.data) > 0 {
			x.feed(cl.idx, &segment{data: s.data, ts: s.ts}, 0)
		}
	}
}

// h2FromUpgrade turns the HTTP/1.1 header of an Upgrade: h2c request into
// the tape's HTTP/2 form: :authority (from Host) and :scheme first, then
// the fields that are not about the connection.
func h2FromUpgrade(fs []tape.Field) []tape.Field {
	out := make([]tape.Field, 0, len(fs)+1)
	host := ""
	for _, f := range fs {
		if strings.EqualFold(f.Name, "Host") {
			host = f.Value
			break
		}
	}
	out = append(out, tape.Field{Name: ":authority", Value: host}, tape.Field{Name: ":scheme", Value: "http"})
	for _, f := range fs {
		switch strings.ToLower(f.Name) {
		case "host", "connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding":
			continue
		}
		out = append(out, f)
	}
	return out
}

// mem is what the connection's HTTP/2 state buffers beyond stored bodies.
func (x *h2conn) mem() int64 {
	return int64(len(x.dirs[0].pre) + len(x.dirs[1].pre) + x.dirs[0].size + x.dirs[1].size)
}

// feed reads frames from s.data[off:].
func (x *h2conn) feed(idx int, s *segment, off int) {
	d := &x.dirs[idx]
	data := s.data
	for off < len(data) {
		if d.lost {
			x.c.eng.stats.SkippedBytes += int64(len(data) - off)
			return
		}
		if d.preface > 0 {
			want := h2Preface[len(h2Preface)-d.preface:]
			n := min(len(want), len(data)-off)
			if string(data[off:off+n]) != want[:n] {
				x.lose(idx, incMalformed)
				continue
			}
			d.preface -= n
			off += n
			continue
		}
		if d.nhdr < h2FrameHeader {
			if d.nhdr == 0 {
				d.start = s.time(off)
			}
			n := copy(d.hdr[d.nhdr:], data[off:])
			d.nhdr += n
			off += n
			if d.nhdr == h2FrameHeader && d.begin() && d.length == 0 {
				d.end(s.time(off - 1))
			}
			continue
		}
		n := min(d.length-d.read, len(data)-off)
		d.payload(data[off : off+n])
		off += n
		if !d.lost && d.read == d.length {
			d.end(s.time(off - 1))
		}
	}
}

// begin reads a frame header; false when it breaks the framing.
func (d *h2dir) begin() bool {
	h := d.hdr[:]
	d.length = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	d.typ, d.flags = h[3], h[4]
	d.stream = binary.BigEndian.Uint32(h[5:9]) & (1<<31 - 1)
	d.read, d.pad, d.pre = 0, 0, d.pre[:0]
	if d.inBlock && (d.typ != h2Continuation || d.stream != d.block) {
		// A header block is interrupted (RFC 9113 6.10).
		d.x.lose(d.idx, incMalformed)
		return false
	}
	switch d.typ {
	case h2Data:
		d.prefix = 0
		if d.flags&h2Padded != 0 {
			d.prefix = 1
		}
	case h2Headers:
		d.prefix = 0
		if d.flags&h2Padded != 0 {
			d.prefix++
		}
		if d.flags&h2Priority != 0 {
			d.prefix += 5
		}
	case h2PushPromise:
		d.prefix = 4
		if d.flags&h2Padded != 0 {
			d.prefix++
		}
	case h2Continuation:
		if !d.inBlock {
			d.x.lose(d.idx, incMalformed)
			return false
		}
		d.prefix = 0
	default:
		d.prefix = min(d.length, h2ControlKeep)
	}
	if d.prefix > d.length {
		d.x.lose(d.idx, incMalformed)
		return false
	}
	if d.prefix == 0 {
		return d.prefixDone()
	}
	return true
}

// payload takes the next bytes of the current frame's payload.
func (d *h2dir) payload(b []byte) {
	for len(b) > 0 && !d.lost {
		switch {
		case d.read < d.prefix:
			n := min(len(b), d.prefix-d.read)
			d.pre = append(d.pre, b[:n]...)
			b, d.read = b[n:], d.read+n
			if d.read == d.prefix && !d.prefixDone() {
				return
			}
		case d.read < d.length-d.pad:
			n := min(len(b), d.length-d.pad-d.read)
			d.content(b[:n])
			b, d.read = b[n:], d.read+n
		default: // padding, or the rest of a control frame
			d.read += len(b)
			return
		}
	}
}

// prefixDone reads the fields before a frame's content.
func (d *h2dir) prefixDone() bool {
	switch d.typ {
	case h2Data, h2Headers, h2PushPromise:
		if d.flags&h2Padded != 0 {
			d.pad = int(d.pre[0])
			if d.prefix+d.pad > d.length {
				d.x.lose(d.idx, incMalformed)
				return false
			}
		}
		if d.typ == h2PushPromise {
			d.promised = binary.BigEndian.Uint32(d.pre[len(d.pre)-4:]) & (1<<31 - 1)
		}
		if d.typ != h2Data {
			d.beginBlock()
		}
	}
	return true
}

// beginBlock starts the header block of a HEADERS or PUSH_PROMISE frame.
func (d *h2dir) beginBlock() {
	d.inBlock, d.block = true, d.stream
	d.blockEnd = d.typ == h2Headers && d.flags&h2EndStream != 0
	d.blockPush = d.typ == h2PushPromise
	d.blockStart = d.start
	d.fields, d.pseudo, d.size = nil, nil, 0
	d.tooLarge, d.badPseudo, d.regularYet, d.dropBlock = false, false, false, false
}

// content takes content bytes of the current frame.
func (d *h2dir) content(b []byte) {
	switch d.typ {
	case h2Data:
		d.x.data(d.idx, d.stream, b)
	case h2Headers, h2PushPromise, h2Continuation:
		if _, err := d.dec.Write(b); err != nil {
			d.x.lose(d.idx, incMalformed)
		}
	}
}

// emit collects one decoded header field, within the tape's bounds.
func (d *h2dir) emit(f hpack.HeaderField) {
	if strings.HasPrefix(f.Name, ":") {
		if d.regularYet || d.pseudo[f.Name] != "" {
			d.badPseudo = true
		}
		if d.pseudo == nil {
			d.pseudo = make(map[string]string, 4)
		}
		d.pseudo[f.Name] = f.Value
		d.size += len(f.Name) + len(f.Value)
		return
	}
	d.regularYet = true
	if len(f.Name) > tape.MaxHeaderName || len(f.Value) > tape.MaxHeaderValue ||
		len(d.fields) >= tape.MaxHeaders || d.size > maxHead {
		d.tooLarge = true
		return
	}
	d.size += len(f.Name) + len(f.Value)
	d.fields = append(d.fields, tape.Field{Name: f.Name, Value: f.Value})
}

// end finishes the current frame, whose last byte was at ts.
func (d *h2dir) end(ts int64) {
	d.nhdr = 0
	x := d.x
	switch d.typ {
	case h2Data:
		if d.flags&h2EndStream != 0 {
			x.endStream(d.idx, d.stream, ts)
		} else {
			x.touch(d.idx, d.stream, ts)
		}
	case h2Headers, h2PushPromise, h2Continuation:
		if d.flags&h2EndHeaders == 0 {
			return
		}
		d.inBlock = false
		if err := d.dec.Close(); err != nil {
			x.lose(d.idx, incMalformed)
			return
		}
		x.headers(d, ts)
		d.fields, d.pseudo, d.size = nil, nil, 0
	case h2RSTStream:
		if len(d.pre) >= 4 {
			x.reset(d.stream, ts)
		}
	}
	d.pre = d.pre[:0]
}

// lose gives up on direction idx: its framing or HPACK state can no
// longer be trusted. Every open stream is settled as it stands.
func (x *h2conn) lose(idx int, why incomplete) {
	d := &x.dirs[idx]
	if d.lost {
		return
	}
	d.lost = true
	d.inBlock, d.fields, d.pseudo, d.size, d.pre = false, nil, nil, 0, nil
	x.c.eng.stats.H2SyncLost++
	x.settleAll(why)
}

// gap handles n bytes of direction idx lost before the next data at ts.
func (x *h2conn) gap(idx int, n int64, ts int64) {
	d := &x.dirs[idx]
	if d.lost {
		return
	}
	inFrame := d.preface == 0 && d.nhdr == h2FrameHeader
	left := int64(d.length - d.read)
	switch {
	case inFrame && d.typ == h2Data && d.read >= d.prefix && n <= int64(d.length-d.pad-d.read):
		// Lost body bytes only: the framing stays in step.
		x.dataGap(idx, d.stream, n)
		d.read += int(n)
	case inFrame && d.read >= d.prefix && d.read >= d.length-d.pad && n <= left:
		d.read += int(n) // padding, or a control frame's skipped tail
	case inFrame && d.typ != h2Headers && d.typ != h2PushPromise && d.typ != h2Continuation && d.typ != h2Data &&
		d.read >= d.prefix && n <= left:
		d.read += int(n)
	default:
		x.lose(idx, incGap)
		return
	}
	if d.read == d.length {
		d.end(ts)
	}
}

// stream finds the stream a frame of direction idx belongs to, or nil.
func (x *h2conn) stream(id uint32) *h2stream { return x.streams[id] }

// data takes DATA content of direction idx for stream id.
func (x *h2conn) data(idx int, id uint32, b []byte) {
	st := x.stream(id)
	m := x.side(st, idx)
	if m == nil || m.done {
		x.c.eng.stats.SkippedBytes += int64(len(b))
		return
	}
	if m.request() {
		x.c.bodyBytes(m, b)
		return
	}
	m.bodyBytes(b, 0)
}

// dataGap accounts body bytes of stream id lost in a gap.
func (x *h2conn) dataGap(idx int, id uint32, n int64) {
	if m := x.side(x.stream(id), idx); m != nil && !m.done {
		m.bodyGap(n)
	}
}

// side returns the message direction idx sends on st: the request from
// the client, the response from the server.
func (x *h2conn) side(st *h2stream, idx int) *message {
	if st == nil {
		return nil
	}
	if idx == x.client {
		return st.req
	}
	return st.resp
}

// touch moves the end of the message a frame of stream id carried.
func (x *h2conn) touch(idx int, id uint32, ts int64) {
	if m := x.side(x.stream(id), idx); m != nil && !m.done {
		m.end = max(m.end, ts)
	}
}

// endStream ends the message direction idx sends on stream id.
func (x *h2conn) endStream(idx int, id uint32, ts int64) {
	st := x.stream(id)
	if st == nil {
		return
	}
	if st.stub {
		if idx != x.client {
			delete(x.streams, id)
		}
		return
	}
	if m := x.side(st, idx); m != nil && !m.done {
		m.end, m.done = max(m.end, ts), true
		if idx == x.client {
			x.c.eng.requestDone(x.c, m)
		}
	}
	x.settle(st)
}

// headers handles a decoded header block.
func (x *h2conn) headers(d *h2dir, ts int64) {
	stats := &x.c.eng.stats
	id := d.block
	if d.dropBlock {
		return
	}
	if d.blockPush {
		// The pushed request is the server's; its response is absorbed.
		stats.PushedStreams++
		x.open(&h2stream{id: d.promised, stub: true})
		return
	}
	s := x.stream(id)
	if d.idx == x.client {
		switch {
		case s == nil && id > x.lastID && id%2 == 1:
			x.lastID = id
			m := x.request(d, ts)
			x.open(&h2stream{id: id, req: m})
			if m.done {
				x.c.eng.requestDone(x.c, m)
				x.settle(x.stream(id))
			}
		case s != nil && s.req != nil && !s.req.done:
			// Trailers: they end the request.
			s.req.trailer = fitFields(d.fields)
			if d.blockEnd {
				s.req.end, s.req.done = max(s.req.end, ts), true
				x.c.eng.requestDone(x.c, s.req)
				x.settle(s)
			}
		}
		return
	}
	if s == nil {
		// A response to a request the capture did not see.
		stats.OrphanResponses++
		if !d.blockEnd {
			x.open(&h2stream{id: id, stub: true})
		}
		return
	}
	if s.stub {
		if d.blockEnd {
			delete(x.streams, id)
		}
		return
	}
	if s.resp == nil {
		status, err := strconv.Atoi(d.pseudo[":status"])
		if err == nil && status >= 100 && status < 200 {
			stats.InterimResponses++
			return
		}
		r := &message{start: d.blockStart, end: ts, req: s.req}
		r.h.status, r.h.proto, r.h.fields = status, h2Version, fitFields(d.fields)
		if err != nil || status < 200 || status > 999 {
			r.h.status = 0
			r.flags |= tape.RespIncomplete
			r.why = incMalformed
		}
		s.resp = r
	} else if !s.resp.done {
		s.resp.trailer = fitFields(d.fields)
	}
	if d.blockEnd && !s.resp.done {
		s.resp.end, s.resp.done = max(s.resp.end, ts), true
	}
	x.settle(s)
}

// request builds the request of a client header block.
func (x *h2conn) request(d *h2dir, ts int64) *message {
	m := &message{start: d.blockStart, end: ts, done: d.blockEnd}
	c := x.c
	m.stream, m.seq = d.block, c.seq
	c.seq++
	p := d.pseudo
	m.h.request, m.h.proto = true, h2Version
	m.h.method, m.h.target = p[":method"], p[":path"]
	fs := make([]tape.Field, 0, len(d.fields)+2)
	for _, name := range []string{":authority", ":scheme"} {
		if v, ok := p[name]; ok {
			fs = append(fs, tape.Field{Name: name, Value: v})
		}
	}
	m.h.fields = append(fs, d.fields...)
	switch {
	case d.tooLarge || len(m.h.method) > tape.MaxMethod || len(m.h.target) > tape.MaxTarget || len(m.h.fields) > tape.MaxHeaders:
		m.drop = reqTooLarge
	case m.h.method == "" || d.badPseudo || (m.h.method != "CONNECT" && m.h.target == ""):
		m.drop = reqMalformed
	}
	return m
}

// open tracks a new stream, settling the oldest when too many are open.
func (x *h2conn) open(s *h2stream) {
	x.streams[s.id] = s
	if len(x.streams) <= x.c.eng.opts.MaxPending {
		return
	}
	var oldest *h2stream
	for _, o := range x.streams {
		if oldest == nil || o.id < oldest.id {
			oldest = o
		}
	}
	x.finishStream(oldest, incEnd)
}

// reset ends stream id by RST_STREAM, from either side.
func (x *h2conn) reset(id uint32, ts int64) {
	s := x.stream(id)
	if s == nil {
		return
	}
	if s.req != nil && !s.req.done && s.req.drop == keep {
		s.req.drop = reqReset
	}
	x.finishStream(s, incReset)
}

// settle writes the exchange of s once both its messages have ended.
func (x *h2conn) settle(s *h2stream) {
	if s.stub || !s.req.done || s.resp == nil || !s.resp.done {
		return
	}
	x.finishStream(s, incEnd)
}

// finishStream writes or discards s as it stands; why says what cut a
// response still open.
func (x *h2conn) finishStream(s *h2stream, why incomplete) {
	delete(x.streams, s.id)
	m := s.req
	if m == nil {
		return
	}
	c := x.c
	c.bodies -= int64(len(m.body))
	if !m.done && m.drop == keep {
		m.drop = why.discard()
		if why == incGap {
			m.flags |= tape.Gap
		}
	}
	if m.drop != keep {
		c.eng.stats.discard(m.drop)
		return
	}
	if r := s.resp; r != nil {
		if !r.done {
			r.flags |= tape.RespIncomplete
			if why == incGap {
				r.flags |= tape.Gap
			}
			if r.why == completeResp {
				r.why = why
			}
		}
		m.resp = r
	}
	c.eng.emit(c, m)
}

// settleAll ends every open stream, in the order they opened.
func (x *h2conn) settleAll(why incomplete) {
	ids := make([]uint32, 0, len(x.streams))
	for id := range x.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		x.finishStream(x.streams[id], why)
	}
}

// finish ends every open stream: the connection ended, or is flushed.
// Decoding goes on after a flush: the framing and HPACK state are intact,
// and frames of the streams cut here are skipped.
func (x *h2conn) finish(why incomplete) {
	x.settleAll(why)
	for i := range x.dirs {
		d := &x.dirs[i]
		if d.inBlock && !d.dropBlock {
			// A header block cut in the middle: its fields are dropped,
			// not its decoding, and a request it began is discarded.
			d.fields, d.size, d.dropBlock = nil, 0, true
			if i == x.client && !d.blockPush && d.block > x.lastID {
				x.lastID = d.block
				x.c.eng.stats.discard(why.discard())
			}
		}
	}
}
