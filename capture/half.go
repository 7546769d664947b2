package capture

import (
	"bytes"

	"github.com/gopacket/gopacket/reassembly"
	"github.com/herd-replay/herd/tape"
)

// role is which end of the HTTP conversation a half-connection carries.
type role int8

const (
	roleUnknown role = iota
	roleClient       // sends requests
	roleServer       // sends responses
)

// pstate is where the parser of one direction stands.
type pstate uint8

const (
	stIdle      pstate = iota // between messages, or resynchronising: looking for a start line
	stHead                    // inside a start line and headers
	stBody                    // inside a Content-Length body
	stChunkSize               // expecting a chunk-size line
	stChunkData               // inside a chunk
	stChunkEnd                // expecting the line end after a chunk
	stTrailer                 // inside the trailer section of a chunked body
	stBodyClose               // inside a response body that ends with the connection
	stHold                    // client: waiting for the answer to an Upgrade or CONNECT
	stTunnel                  // no more HTTP on this connection
	stH2                      // HTTP/2 frames, decoded by the connection's h2conn
)

// incomplete says why a response was not seen whole.
type incomplete uint8

const (
	completeResp incomplete = iota
	incGap                  // a segment was lost inside it
	incEnd                  // the capture or the connection ended first
	incFlush                // the connection was flushed to bound memory
	incMalformed            // its framing broke (a bad chunk-size line)
	incReset                // HTTP/2: its stream was reset
)

// discard is why a request cut short for this reason is not written.
func (why incomplete) discard() discardReason {
	if why == incFlush {
		return reqMemoryFlush
	}
	return reqIncomplete
}

// segment is a run of reassembled bytes with a way to find the capture
// time of any of them.
type segment struct {
	data []byte
	sg   reassembly.ScatterGather // nil for bytes replayed from a hold
	ts   int64                    // the time of every byte when sg is nil
	// packet: data begins at a packet boundary of the capture (not bytes
	// replayed from a hold), where a message is likely to start.
	packet bool
}

// time returns the capture time of data[off], Unix ns.
func (s *segment) time(off int) int64 {
	if s.sg == nil {
		return s.ts
	}
	off = max(0, min(off, len(s.data)-1))
	return s.sg.CaptureInfo(off).Timestamp.UnixNano()
}

// heldSeg is client data kept while an Upgrade or CONNECT is answered.
type heldSeg struct {
	data []byte
	ts   int64
	gap  int64 // bytes lost before data
}

// half parses the bytes of one direction of a connection.
type half struct {
	c    *conn
	idx  int
	role role
	st   pstate

	lineStart bool  // stIdle: the next byte begins a line
	synced    bool  // stIdle: at a real message boundary, not skipping junk
	candTS    int64 // stIdle: time of the partial candidate line held in buf
	buf       []byte
	scan      int // stHead: where to resume looking for the end of the head
	remaining int64
	trailer   int // bytes of trailer section so far
	msg       *message

	ended   bool  // FIN or RST seen
	lastTS  int64 // time of the last byte seen
	payload bool  // any byte seen

	held      []heldSeg
	heldBytes int
	junk      *message // server: a response that is not HTTP, still being skipped
}

// plausible reports whether prefix, at a line start, could begin a start
// line this half may send.
func (h *half) plausible(prefix []byte) bool {
	switch h.role {
	case roleClient:
		return looksLikeRequestStart(prefix)
	case roleServer:
		return looksLikeStatusStart(prefix)
	}
	return looksLikeRequestStart(prefix) || looksLikeStatusStart(prefix)
}

// cutRequest reports whether the partial line in buf is a request cut
// short (not junk). On a connection not yet known to carry HTTP it takes
// a method in capitals, a space and the start of a target.
func (h *half) cutRequest() bool {
	if h.role == roleServer || !looksLikeRequestStart(h.buf) {
		return false
	}
	if h.c.http {
		return true
	}
	sp := bytes.IndexByte(h.buf, ' ')
	if sp < 1 || sp+1 >= len(h.buf) {
		return false
	}
	for _, c := range h.buf[:sp] {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	t := h.buf[sp+1]
	return t == '/' || t == '*' || (t >= 'a' && t <= 'z') || (t >= 'A' && t <= 'Z') || (t >= '0' && t <= '9')
}

// feed parses a run of contiguous bytes.
func (h *half) feed(s *segment) {
	if len(s.data) == 0 {
		return
	}
	h.payload = true
	h.lastTS = s.time(len(s.data) - 1)
	if h.st == stIdle && s.packet {
		// Skipping junk, or holding a partial line: a packet boundary is
		// where a message usually starts, so look for a start line here
		// too. A partial line held from before is given up if a whole
		// start line begins here.
		if len(h.buf) == 0 {
			h.lineStart = true
		} else if !h.continuesHere(s.data) && h.startsHere(s.data) {
			if h.cutRequest() {
				h.c.requestCut(h.candTS, reqIncomplete)
			} else {
				h.skipped(len(h.buf))
			}
			h.buf, h.lineStart = h.buf[:0], true
		}
	}
	off := 0
	for off < len(s.data) {
		switch h.st {
		case stIdle:
			off = h.idle(s, off)
		case stHead:
			off = h.readHead(s, off)
		case stBody, stChunkData:
			n := int(min(int64(len(s.data)-off), h.remaining))
			h.c.bodyBytes(h.msg, s.data[off:off+n])
			h.remaining -= int64(n)
			off += n
			if h.remaining == 0 {
				if h.st == stBody {
					h.complete(s, off-1)
				} else {
					h.st = stChunkEnd
				}
			}
		case stChunkEnd:
			switch s.data[off] {
			case '\r':
				off++
			case '\n':
				off++
				h.st = stChunkSize
			default:
				h.malformed(s, off)
			}
		case stChunkSize:
			off = h.chunkSize(s, off)
		case stTrailer:
			off = h.trailerLine(s, off)
		case stBodyClose:
			h.c.bodyBytes(h.msg, s.data[off:])
			// lastTS is the time of data's last byte: set above, and
			// only a release re-enters feed, for the client's half.
			h.msg.end = h.lastTS
			off = len(s.data)
		case stHold:
			h.hold(s.data[off:], s.time(off), 0)
			off = len(s.data)
		case stTunnel:
			h.c.eng.stats.TunnelBytes += int64(len(s.data) - off)
			off = len(s.data)
		case stH2:
			h.c.h2.feed(h.idx, s, off)
			off = len(s.data)
		}
	}
}

// skipped counts bytes that belong to no message.
func (h *half) skipped(n int) {
	h.c.eng.stats.SkippedBytes += int64(n)
	if r := h.junk; r != nil {
		r.bodyLen += int64(n)
	}
}

// desync notes that the bytes at ts are not a start line. When the server
// was at a real message boundary with a request waiting, those bytes are
// its answer, and not HTTP: the request gets a response marked incomplete
// rather than none, until the next start line.
func (h *half) desync(ts int64) {
	if h.synced && h.role == roleServer && h.junk == nil {
		h.junk = h.c.brokenResponse(ts)
	}
	h.lineStart, h.synced = false, false
}

// endJunk closes the broken response collecting junk, if any.
func (h *half) endJunk() {
	if r := h.junk; r != nil {
		r.end = max(r.end, h.lastTS)
		r.done = true
		h.junk = nil
		if r.req != nil && h.c.holdFor == r.req {
			h.c.release()
		}
		h.c.tryEmit()
	}
}

// idle looks for the next start line from data[off].
func (h *half) idle(s *segment, off int) int {
	data := s.data[off:]
	if len(h.buf) > 0 {
		// A candidate line began in an earlier segment.
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			if len(h.buf)+len(data) > maxLine {
				h.skipped(len(h.buf) + len(data))
				h.buf, h.lineStart, h.synced = h.buf[:0], false, false
				return len(s.data)
			}
			h.buf = append(h.buf, data...)
			return len(s.data)
		}
		h.buf = append(h.buf, data[:nl+1]...)
		if h.isPreface(h.buf[:len(h.buf)-1]) {
			h.buf = h.buf[:0]
			h.c.startH2(h, len(h2Preface)-len(h2PrefaceLine)-2)
			return off + nl + 1
		}
		if h.tryStart(h.buf[:len(h.buf)-1], h.candTS) {
			h.st, h.scan = stHead, len(h.buf)
			return off + nl + 1
		}
		h.skipped(len(h.buf))
		h.buf, h.lineStart, h.synced = h.buf[:0], true, false
		return off + nl + 1
	}
	if !h.lineStart {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			h.skipped(len(data))
			return len(s.data)
		}
		h.skipped(nl + 1)
		h.lineStart = true
		return off + nl + 1
	}
	// At a line start. Empty lines between messages are allowed.
	if data[0] == '\r' || data[0] == '\n' {
		return off + 1
	}
	if !h.plausible(data[:min(len(data), 16)]) {
		h.desync(s.time(off))
		return off
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		if len(data) > maxLine {
			h.desync(s.time(off))
			return off
		}
		h.buf = append(h.buf[:0], data...)
		h.candTS = s.time(off)
		return len(s.data)
	}
	if h.isPreface(data[:nl]) {
		h.c.startH2(h, len(h2Preface)-len(h2PrefaceLine)-2)
		return off + nl + 1
	}
	if h.tryStart(data[:nl], s.time(off)) {
		h.st, h.scan = stHead, 0
		return off
	}
	h.desync(s.time(off))
	return off
}

// continuesHere reports whether the partial line held in buf, completed by
// the first line of data, is a start line: a request line split across two
// segments ("G" then "ET / HTTP/1.1").
func (h *half) continuesHere(data []byte) bool {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 || len(h.buf)+nl > maxLine {
		return false
	}
	return h.isStart(append(h.buf[:len(h.buf):len(h.buf)], data[:nl]...))
}

// startsHere reports whether data begins with a whole start line this
// half may send.
func (h *half) startsHere(data []byte) bool {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return false
	}
	return h.isStart(data[:nl])
}

// isStart reports whether line is a start line this half may send.
func (h *half) isStart(line []byte) bool {
	if h.isPreface(line) {
		return true
	}
	line = trimCR(line)
	if h.role != roleServer {
		if _, _, _, ok := requestLine(line); ok {
			return true
		}
	}
	if h.role != roleClient {
		if _, _, ok := statusLine(line); ok {
			return true
		}
	}
	return false
}

// tryStart checks a complete candidate start line and, when it is one this
// half may send, begins a message.
func (h *half) tryStart(line []byte, ts int64) bool {
	line = trimCR(line)
	if h.junk != nil && h.role == roleServer {
		if _, _, ok := statusLine(line); ok {
			h.endJunk()
		}
	}
	if h.role != roleServer {
		if _, _, _, ok := requestLine(line); ok {
			h.c.setRole(h, roleClient)
			h.begin(true, 0, ts)
			return true
		}
	}
	if h.role != roleClient {
		if _, status, ok := statusLine(line); ok {
			h.c.setRole(h, roleServer)
			h.begin(false, status, ts)
			return true
		}
	}
	return false
}

func (h *half) begin(request bool, status int, ts int64) {
	m := &message{start: ts, end: ts}
	m.h.request, m.h.status = request, status
	h.msg = m
	h.c.http = true
	if request {
		h.c.addRequest(m)
		return
	}
	if status >= 100 && status < 200 && status != 101 {
		m.interim = true
		return
	}
	h.c.addResponse(m)
}

// readHead collects the head of h.msg from data[off] until its empty line.
func (h *half) readHead(s *segment, off int) int {
	data := s.data[off:]
	if len(h.buf) == 0 {
		// Common case: the whole head is in this segment; parse it in place.
		n := headEnd(data, 0, &h.scan)
		if n > 0 {
			h.headDone(data[:n], s, off+n-1)
			return off + n
		}
		if len(data) > maxHead {
			h.headTooLarge(s, off)
			return len(s.data)
		}
		h.buf = append(h.buf, data...)
		return len(s.data)
	}
	prev := len(h.buf)
	h.buf = append(h.buf, data...)
	n := headEnd(h.buf, h.scan, &h.scan)
	if n < 0 {
		if len(h.buf) > maxHead {
			h.buf = h.buf[:prev]
			h.headTooLarge(s, off)
			return len(s.data)
		}
		return len(s.data)
	}
	h.headDone(h.buf[:n], s, off+n-prev-1)
	h.buf = h.buf[:0]
	return off + n - prev
}

// headTooLarge gives up on a head longer than maxHead.
func (h *half) headTooLarge(s *segment, off int) {
	h.skipped(len(h.buf) + len(s.data) - off)
	h.giveUp(reqTooLarge)
}

// giveUp abandons h.msg as unparseable: a request is discarded for why, a
// response is marked incomplete (malformed).
func (h *half) giveUp(why discardReason) {
	m := h.msg
	if m.request() {
		m.drop = why
	} else {
		m.flags |= tape.RespIncomplete
		m.why = incMalformed
	}
	h.buf = h.buf[:0]
	h.abandon()
}

// abandon ends h.msg where it stands and resynchronises.
func (h *half) abandon() {
	if m := h.msg; m != nil {
		m.done = true
		h.msg = nil
		if h.c.holdFor == m {
			h.c.holdFor = nil
		}
	}
	h.st, h.lineStart, h.synced, h.remaining = stIdle, false, false, 0
	h.c.tryEmit()
}

// headDone parses a complete head and sets up reading the body.
func (h *half) headDone(raw []byte, s *segment, endOff int) {
	m := h.msg
	m.h = parseHead(raw, m.h)
	m.end = s.time(endOff)
	hd := &m.h
	if m.request() {
		if hd.tooLarge {
			// Keep reading it, to stay in step, but it cannot be stored.
			m.drop = reqTooLarge
		}
		if hd.otherCoding || hd.badLength {
			// No way to tell where the body ends (RFC 9112 6.3).
			m.drop = reqMalformed
			h.abandon()
			return
		}
		m.holdAfter = hd.upgrade || hd.method == "CONNECT"
		switch {
		case hd.chunked:
			h.st = stChunkSize
		case hd.contentLength > 0:
			h.st, h.remaining = stBody, hd.contentLength
		default:
			h.complete(s, endOff)
		}
		return
	}
	if hd.tooLarge {
		hd.fields = fitFields(hd.fields)
	}
	if m.interim {
		h.c.eng.stats.InterimResponses++
		h.msg = nil
		h.st, h.lineStart, h.synced = stIdle, true, true
		return
	}
	req, status := m.req, hd.status
	connectOK := req != nil && req.h.method == "CONNECT" && status >= 200 && status < 300
	switch {
	case status == 204 || status == 304 || status == 101 || connectOK || (req != nil && req.h.method == "HEAD"):
		h.complete(s, endOff)
	case hd.chunked:
		h.st = stChunkSize
	case hd.otherCoding || hd.badLength || hd.contentLength < 0:
		h.st = stBodyClose
		if h.ended {
			h.complete(s, endOff)
		}
	case hd.contentLength > 0:
		h.st, h.remaining = stBody, hd.contentLength
	default:
		h.complete(s, endOff)
	}
}

// fitFields drops response header fields a tape record cannot hold.
func fitFields(fs []tape.Field) []tape.Field {
	out := fs[:0]
	for _, f := range fs {
		if len(f.Name) <= tape.MaxHeaderName && len(f.Value) <= tape.MaxHeaderValue && len(out) < tape.MaxHeaders {
			out = append(out, f)
		}
	}
	return out
}

// complete ends h.msg at data[endOff].
func (h *half) complete(s *segment, endOff int) { h.completeAt(s.time(endOff)) }

// completeAt ends h.msg, read to its end, with its last byte at ts, and
// sets up what follows: the client waits after an Upgrade or CONNECT; a
// response that accepts one turns the connection into a tunnel, one that
// refuses it releases the client's held bytes.
func (h *half) completeAt(ts int64) {
	m := h.msg
	m.end = ts
	m.done = true
	h.msg = nil
	h.st, h.lineStart, h.synced, h.buf = stIdle, true, true, h.buf[:0]
	if m.request() {
		h.c.eng.requestDone(h.c, m)
		if m.holdAfter && m.drop == keep {
			h.st = stHold
			h.c.holdFor = m
		}
	} else if req := m.req; req != nil {
		switch {
		case m.h.status == 101 && upgradesToH2(req) && h.c.h2 == nil:
			h.c.upgradeH2(req)
		case m.h.status == 101 || (req.h.method == "CONNECT" && m.h.status >= 200 && m.h.status < 300):
			h.c.tunnel(req)
		case h.c.holdFor == req:
			h.c.release()
		}
	}
	h.c.tryEmit()
}

// malformed gives up on a body whose framing broke.
func (h *half) malformed(s *segment, off int) {
	h.msg.end = s.time(off)
	h.giveUp(reqMalformed)
}

// readLine returns the line starting at data[off] (without its '\n'),
// joined to any part of it held from earlier segments, and the offset after
// it. A line that goes on past the segment is held, up to limit bytes (past
// that the message is malformed), and done is false. The caller empties
// h.buf once it is through with the line.
func (h *half) readLine(s *segment, off, limit int) (line []byte, next int, done bool) {
	data := s.data[off:]
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		if len(h.buf)+len(data) > limit {
			// Resynchronise from here: the rest may hold a start line.
			h.malformed(s, off)
			return nil, off, false
		}
		h.buf = append(h.buf, data...)
		return nil, len(s.data), false
	}
	line = data[:nl]
	if len(h.buf) > 0 {
		h.buf = append(h.buf, line...)
		line = h.buf
	}
	return line, off + nl + 1, true
}

// chunkSize reads a chunk-size line.
func (h *half) chunkSize(s *segment, off int) int {
	line, next, done := h.readLine(s, off, maxLine)
	if !done {
		return next
	}
	size, ok := parseChunkSize(line)
	h.buf = h.buf[:0]
	if !ok {
		h.malformed(s, next-1)
		return next
	}
	if size == 0 {
		h.st, h.trailer = stTrailer, 0
	} else {
		h.st, h.remaining = stChunkData, size
	}
	return next
}

// trailerLine reads one line of the trailer section; the empty line ends
// the message. Trailer fields are not stored.
func (h *half) trailerLine(s *segment, off int) int {
	line, next, done := h.readLine(s, off, maxTrailer-h.trailer)
	if !done {
		return next
	}
	n := len(line)
	empty := len(trimCR(line)) == 0
	h.buf = h.buf[:0]
	if empty {
		h.complete(s, next-1)
		return next
	}
	h.trailer += n
	if h.trailer > maxTrailer {
		h.malformed(s, next-1)
	}
	return next
}

// hold keeps client bytes sent after an Upgrade or CONNECT request until
// its response says whether the connection leaves HTTP.
func (h *half) hold(b []byte, ts int64, gap int64) {
	h.held = append(h.held, heldSeg{data: append([]byte(nil), b...), ts: ts, gap: gap})
	h.heldBytes += len(b)
	if h.heldBytes > maxHeldBytes {
		// No answer in sight (a one-way capture): stop waiting and
		// parse what was held as HTTP.
		h.c.release()
	}
}

// gap handles n bytes lost before the next data, which starts at time ts.
func (h *half) gap(n int64, ts int64) {
	st := &h.c.eng.stats
	st.Gaps++
	st.GapBytes += n
	switch h.st {
	case stIdle:
		if r := h.junk; r != nil {
			r.flags |= tape.Gap
			r.bodyLen += n
		}
		if len(h.buf) > 0 {
			// A start line was cut.
			if h.cutRequest() {
				h.c.requestCut(h.candTS, reqIncomplete)
			} else if h.role == roleServer && h.synced {
				h.c.responseLost(h.candTS)
			}
		} else if h.synced && h.lineStart {
			// At a message boundary: the lost bytes began a new message.
			switch h.role {
			case roleClient:
				h.c.requestLost(h.lastTS)
			case roleServer:
				h.c.responseLost(ts)
			}
		}
	case stHead, stChunkSize, stChunkEnd, stTrailer:
		h.cut(incGap)
	case stBody, stChunkData:
		h.msg.bodyGap(n)
		if n <= h.remaining {
			// Still in step: the lost bytes were all body.
			h.remaining -= n
			if h.remaining > 0 {
				return
			}
			if h.st == stChunkData {
				h.st = stChunkEnd
				return
			}
			// Its last bytes fell in the gap: its end stays as recorded.
			h.completeAt(h.msg.end)
			return
		}
		h.cut(incGap)
	case stBodyClose:
		h.msg.bodyGap(n)
		return
	case stHold:
		h.held = append(h.held, heldSeg{gap: n, ts: ts})
		return
	case stTunnel:
		return
	case stH2:
		h.c.h2.gap(h.idx, n, ts)
		return
	}
	h.buf = h.buf[:0]
	h.st, h.lineStart, h.synced = stIdle, true, false
}

// cut ends h.msg short: a request is not written, a response is marked
// incomplete. The half resynchronises at the next start line.
func (h *half) cut(why incomplete) {
	m := h.msg
	if m == nil {
		return
	}
	if m.request() {
		if m.drop == keep {
			m.drop = why.discard()
		}
		if why == incGap {
			m.flags |= tape.Gap
		}
	} else {
		m.flags |= tape.RespIncomplete
		if why == incGap {
			m.flags |= tape.Gap
		}
		if m.why == completeResp {
			m.why = why
		}
	}
	h.abandon()
	h.buf = h.buf[:0]
}

// end handles the FIN or RST of this direction: it completes a body
// delimited by the close.
func (h *half) end() {
	h.ended = true
	if h.st == stBodyClose {
		h.completeAt(h.lastTS)
	}
}

// finish ends whatever is in progress: the connection is complete, or is
// being flushed (why says which).
func (h *half) finish(why incomplete) {
	if h.st == stHold {
		h.c.release()
	}
	h.endJunk()
	switch h.st {
	case stIdle:
		if len(h.buf) > 0 && h.cutRequest() {
			h.c.requestCut(h.candTS, why.discard())
		}
	case stHead, stBody, stChunkSize, stChunkData, stChunkEnd, stTrailer, stBodyClose:
		// A body delimited by the close is never left open after the
		// FIN: end (or headDone, when the FIN came first) completes it.
		h.cut(why)
	}
	h.msg = nil
	h.buf = nil
	if h.st != stTunnel && h.st != stH2 {
		h.st = stIdle
	}
	h.lineStart, h.synced, h.remaining = false, false, 0
}
