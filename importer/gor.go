package importer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net/netip"
	"strconv"

	"github.com/herd-replay/herd/internal/h1"
	"github.com/herd-replay/herd/tape"
)

// GoReplay's payload separator: a line holding exactly these three emoji.
const gorSep = "\U0001F435\U0001F648\U0001F649"

// gorHeader is a payload's first line: TYPE ID TIMESTAMP_NS [LATENCY].
type gorHeader struct {
	typ     byte // '1' request, '2' original response, '3' replayed response
	id      string
	ts      int64
	latency int64
}

// parseGorHeader parses a payload header strictly: a type digit, a hex id,
// a timestamp in nanoseconds, and an optional latency.
func parseGorHeader(line []byte) (gorHeader, bool) {
	f := bytes.Split(line, []byte(" "))
	if len(f) < 3 || len(f) > 4 || len(f[0]) != 1 || f[0][0] < '1' || f[0][0] > '3' {
		return gorHeader{}, false
	}
	if len(f[1]) == 0 || len(f[1]) > 64 {
		return gorHeader{}, false
	}
	if _, err := hex.DecodeString(string(f[1])); err != nil && len(f[1])%2 == 0 {
		return gorHeader{}, false
	}
	ts, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil || ts < 0 {
		return gorHeader{}, false
	}
	h := gorHeader{typ: f[0][0], id: string(f[1]), ts: ts}
	if len(f) == 4 {
		if h.latency, err = strconv.ParseInt(string(f[3]), 10, 64); err != nil {
			return gorHeader{}, false
		}
	}
	return h, true
}

// gorAddr reads the client address out of a GoReplay request id. From
// version 1.2 GoReplay's ids are 12 bytes: the client port, the server
// port, the client's IPv4 address (the last 4 bytes of an IPv6 one), then
// a TCP acknowledgement number. Versions between used the sequence number
// and a timestamp instead, and older ones 20 random bytes: those carry no
// address.
func gorAddr(id string, ts int64) (netip.AddrPort, bool) {
	if len(id) != 24 {
		return netip.AddrPort{}, false
	}
	var b [12]byte
	if _, err := hex.Decode(b[:], []byte(id)); err != nil {
		return netip.AddrPort{}, false
	}
	// The sequence-and-timestamp form holds the payload's time in bytes
	// 4..12; an address and a port almost never look like it.
	if d := int64(binary.BigEndian.Uint64(b[4:])) - ts; d > -86400e9 && d < 86400e9 {
		return netip.AddrPort{}, false
	}
	client := binary.BigEndian.Uint16(b[0:])
	server := binary.BigEndian.Uint16(b[2:])
	if client == 0 || server == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), client), true
}

// gorResp is a response waiting for its request.
type gorResp struct {
	hdr        gorHeader
	status     int
	proto      string
	header     []tape.Field
	trailer    []tape.Field
	bodyLen    int64
	crc        uint64
	incomplete bool
	seq        int64 // payload index, for eviction
}

// gorReq is a request waiting for its response.
type gorReq struct {
	e    *tape.Exchange
	conn *tableConn // nil: a connection of its own
	size int64
	seq  int64
}

// reqOnlyAfter: payloads without a response after which a file is taken
// to hold requests only.
const reqOnlyAfter = 4096

type gorImporter struct {
	r      *run
	conns  *connTable[netip.AddrPort]
	reqs   map[string]*gorReq
	resps  map[string]*gorResp
	queue  []pendingID // pending requests and responses in arrival order
	held   int64       // bytes of pending requests
	index  int64       // payloads read
	noAddr int64       // requests whose id carries no address
	// Request-only files (GoReplay without response tracking) hold no
	// type 2 payloads: once reqOnlyAfter payloads passed without one,
	// requests are written at once instead of waiting for a response.
	lastResp int64

	// The payload being read.
	started   bool // a byte of it was seen
	lineStart bool // at the start of a line
	pendingLF bool // a LF not yet fed: it may belong to a separator
	gotHeader bool
	hdrLine   []byte
	hdr       gorHeader
	hdrOK     bool // the header has a type, an id and a timestamp
	skip      bool // the payload is not read (bad header, type 3)
	p         gorPayload
}

type pendingID struct {
	id   string
	seq  int64
	resp bool
}

func newGor(r *run) *gorImporter {
	return &gorImporter{
		r:         r,
		conns:     newConnTable[netip.AddrPort](r),
		reqs:      make(map[string]*gorReq),
		resps:     make(map[string]*gorResp),
		lineStart: true,
	}
}

func (g *gorImporter) notes() []string {
	var notes []string
	if n := g.r.stats.Grouped; n > 0 {
		notes = append(notes, fmt.Sprintf("connections: %d requests grouped into connections by the client address and port in their GoReplay ids (GoReplay 1.2 and later)", n))
	}
	if g.noAddr > 0 {
		notes = append(notes, fmt.Sprintf("connections: %d requests whose GoReplay ids carry no client address have a connection each", g.noAddr))
	}
	return notes
}

// read splits r into payloads at separator lines. The LF before a
// separator belongs to it, not to the payload. Lines are handled in the
// pieces the buffer holds, so no line is ever held whole.
func (g *gorImporter) read(name string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			if perr := g.piece(b, err == io.EOF); perr != nil {
				return perr
			}
		}
		switch {
		case err == nil || errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if g.started {
				// Bytes after the last separator: GoReplay drops an
				// unterminated record, and so does herd.
				g.r.stats.Entries++
				g.r.stats.discard("payload_unterminated")
			}
			g.reset()
			return nil
		default:
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
}

// piece takes the next bytes of the input: a whole line with its LF, the
// part of a line the buffer holds, or the last line at the end.
func (g *gorImporter) piece(b []byte, atEOF bool) error {
	full := b[len(b)-1] == '\n'
	if g.lineStart && (full || atEOF) && string(bytes.TrimSuffix(b, []byte("\n"))) == gorSep {
		err := g.endPayload()
		g.reset()
		return err
	}
	g.started = true
	if !g.gotHeader {
		if len(g.hdrLine) < 256 {
			g.hdrLine = append(g.hdrLine, b[:min(len(b), 256)]...)
		}
		if full {
			g.gotHeader = true
			g.startPayload(h1.TrimEOL(g.hdrLine))
		}
		g.lineStart = full
		return nil
	}
	if g.pendingLF {
		g.feed([]byte("\n"))
		g.pendingLF = false
	}
	if full {
		g.feed(b[:len(b)-1])
		g.pendingLF = true
	} else {
		g.feed(b)
	}
	g.lineStart = full
	return nil
}

func (g *gorImporter) reset() {
	g.started, g.lineStart, g.pendingLF, g.gotHeader, g.skip = false, true, false, false, false
	g.hdrLine = g.hdrLine[:0]
}

// startPayload reads the payload header.
func (g *gorImporter) startPayload(line []byte) {
	f := bytes.Split(line, []byte(" "))
	g.skip, g.hdrOK, g.hdr = true, false, gorHeader{}
	if len(f) < 3 {
		return // counted at the end of the payload
	}
	ts, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return
	}
	g.hdr, g.hdrOK = gorHeader{id: string(f[1]), ts: ts}, true
	if len(f[0]) == 1 {
		g.hdr.typ = f[0][0]
	}
	if len(f) > 3 {
		g.hdr.latency, _ = strconv.ParseInt(string(f[3]), 10, 64)
	}
	switch g.hdr.typ {
	case '1', '2':
		g.skip = false
		g.p.start(g.hdr.typ == '1', g.r.opts.MaxBody, g.r.crc)
	}
}

func (g *gorImporter) feed(b []byte) {
	if !g.skip {
		g.p.feed(b)
	}
}

// endPayload acts on a payload at its separator.
func (g *gorImporter) endPayload() error {
	if !g.started {
		return nil
	}
	g.index++
	g.r.stats.Entries++
	if err := g.r.check(); err != nil {
		return err
	}
	switch {
	case !g.gotHeader || !g.hdrOK:
		g.r.stats.discard("header_malformed")
	case g.hdr.typ == '1':
		g.request()
	case g.hdr.typ == '2':
		g.response()
	case g.hdr.typ == '3':
		g.r.stats.count("replayed_responses")
	default:
		g.r.stats.discard("payload_unknown_type")
	}
	g.evict()
	return nil
}

func (g *gorImporter) request() {
	h, err := g.p.finish()
	switch {
	case errors.Is(err, h1.ErrTooLarge):
		g.r.stats.discard("request_too_large")
		return
	case err != nil:
		g.r.stats.discard("request_malformed")
		return
	}
	if h.BadLines > 0 {
		g.r.stats.Counters["header_lines_skipped"] += int64(h.BadLines)
	}
	e := &tape.Exchange{
		Method: h.Method, Target: h.Target, Proto: h.Proto, ReqHeader: h.Fields,
		ReqStart: g.hdr.ts, ReqEnd: g.hdr.ts, Flags: tape.NoResponse,
		ReqTrailer: g.p.chunk.Trailer,
	}
	declared := int64(0)
	if g.p.fr.Kind == h1.Length {
		declared = g.p.fr.Length
	}
	g.p.body.set(e, declared)
	e.ReqBody = bytes.Clone(e.ReqBody)
	if !g.p.complete() {
		e.Flags |= tape.ReqBodyTruncated
	}
	var conn *tableConn
	if addr, ok := gorAddr(g.hdr.id, g.hdr.ts); ok {
		e.Client = addr
		conn = g.conns.assign(addr, e.ReqStart)
		e.ConnID = conn.id
	} else {
		g.noAddr++
		e.ConnID = g.r.newConn()
	}
	if old := g.reqs[g.hdr.id]; old != nil {
		// The same id again: the first has had its chance.
		g.drop(g.hdr.id, old)
	}
	if rs := g.resps[g.hdr.id]; rs != nil {
		delete(g.resps, g.hdr.id)
		g.pair(e, rs)
		g.r.emit(e, conn)
		return
	}
	if g.index-g.lastResp > reqOnlyAfter {
		g.r.emit(e, conn)
		return
	}
	size := int64(len(e.ReqBody)) + int64(len(g.p.head)) + 256
	g.reqs[g.hdr.id] = &gorReq{e: e, conn: conn, size: size, seq: g.index}
	g.held += size
	g.queue = append(g.queue, pendingID{id: g.hdr.id, seq: g.index})
}

func (g *gorImporter) response() {
	g.lastResp = g.index
	h, err := g.p.finish()
	rs := &gorResp{hdr: g.hdr, seq: g.index, bodyLen: g.p.n, crc: g.p.crc, incomplete: !g.p.complete()}
	if err != nil {
		// Not an HTTP response: the request had an answer, of unknown
		// status.
		g.r.stats.count("responses_malformed")
		rs.incomplete = true
	} else {
		rs.status, rs.proto, rs.header, rs.trailer = h.Status, h.Proto, h.Fields, g.p.chunk.Trailer
	}
	if rs.status >= 100 && rs.status < 200 && rs.status != 101 {
		g.r.stats.count("interim_responses")
		return
	}
	if q := g.reqs[g.hdr.id]; q != nil {
		g.drop(g.hdr.id, q)
		g.pair(q.e, rs)
		g.r.emit(q.e, q.conn)
		return
	}
	if g.resps[g.hdr.id] != nil {
		g.r.stats.discard("orphan_response")
	}
	g.resps[g.hdr.id] = rs
	g.queue = append(g.queue, pendingID{id: g.hdr.id, seq: g.index, resp: true})
}

// drop forgets a pending request (its entry in the queue goes stale).
func (g *gorImporter) drop(id string, q *gorReq) {
	delete(g.reqs, id)
	g.held -= q.size
}

func (g *gorImporter) pair(e *tape.Exchange, rs *gorResp) {
	e.Flags &^= tape.NoResponse
	e.Status, e.RespProto, e.RespHeader, e.RespTrailer = rs.status, rs.proto, rs.header, rs.trailer
	e.RespBodyLen, e.RespBodyHash = rs.bodyLen, rs.crc
	// A response written before its request, or stamped earlier, is
	// taken to start with it: the tape's times run forward.
	e.RespStart = max(rs.hdr.ts, e.ReqStart)
	e.RespEnd = e.RespStart
	if rs.hdr.latency > 0 {
		e.RespEnd = max(e.RespEnd, e.ReqStart+rs.hdr.latency)
	}
	if rs.incomplete {
		e.Flags |= tape.RespIncomplete
	}
	if rs.status == 101 {
		e.Flags |= tape.Upgraded
	}
}

// evict writes the requests that waited too long (in payloads, or in
// bytes held) without a response, and counts the responses that waited
// too long for a request as orphans.
func (g *gorImporter) evict() {
	limit := g.index - int64(g.r.opts.PairWindow)
	for len(g.queue) > 0 && (g.queue[0].seq < limit || g.held > g.r.opts.MaxPendingSize) {
		g.expire(g.queue[0])
		g.queue = g.queue[1:]
	}
}

func (g *gorImporter) expire(p pendingID) {
	if p.resp {
		if rs := g.resps[p.id]; rs != nil && rs.seq == p.seq {
			delete(g.resps, p.id)
			g.r.stats.discard("orphan_response")
		}
		return
	}
	if q := g.reqs[p.id]; q != nil && q.seq == p.seq {
		g.drop(p.id, q)
		g.r.emit(q.e, q.conn)
	}
}

// finish writes the requests still waiting, without a response.
func (g *gorImporter) finish() error {
	for _, p := range g.queue {
		g.expire(p)
	}
	g.queue = nil
	return nil
}

// gorPayload parses one request or response payload as it streams past:
// the head is held (up to h1.MaxHead), the body only counted, hashed and,
// for a request, kept up to the body limit.
type gorPayload struct {
	request  bool
	head     []byte
	scan     int // where the search for the head's end resumes
	headDone bool
	tooLarge bool
	fr       h1.Framing
	broken   bool // body framing broken
	left     int64
	chunk    h1.ChunkedDecoder
	body     body // request
	n        int64
	crc      uint64
	table    *crc64.Table
	h        h1.Head
	herr     error
}

func (p *gorPayload) start(request bool, maxBody int64, table *crc64.Table) {
	*p = gorPayload{request: request, head: p.head[:0], body: body{max: maxBody, data: p.body.data[:0]}, table: table}
}

func (p *gorPayload) feed(b []byte) {
	if p.headDone {
		p.feedBody(b)
		return
	}
	if p.tooLarge {
		return
	}
	p.head = append(p.head, b...)
	end := headEnd(p.head, &p.scan)
	if end < 0 {
		if len(p.head) > h1.MaxHead {
			p.tooLarge = true
		}
		return
	}
	rest := p.head[end:]
	p.head = p.head[:end]
	p.parseHead()
	if len(rest) > 0 {
		p.feedBody(rest)
	}
}

func (p *gorPayload) parseHead() {
	p.headDone = true
	if p.request {
		p.h, p.herr = h1.ParseRequest(p.head)
	} else {
		p.h, p.herr = h1.ParseResponse(p.head)
	}
	if p.herr != nil {
		return
	}
	var err error
	if p.request {
		p.fr, err = h1.RequestFraming(p.h.Fields)
	} else {
		p.fr, err = h1.ResponseFraming("", p.h.Status, p.h.Fields)
	}
	if err != nil {
		// Unframeable: keep what follows the head as the body, and say
		// it may not be whole.
		p.fr, p.broken = h1.Framing{Kind: h1.Close}, true
	}
	p.left = p.fr.Length
}

func (p *gorPayload) feedBody(b []byte) {
	switch p.fr.Kind {
	case h1.Length:
		k := min(p.left, int64(len(b)))
		p.data(b[:k])
		p.left -= k
	case h1.Chunked:
		if p.broken || p.chunk.Done() {
			return
		}
		if _, _, err := p.chunk.Feed(b, p.data); err != nil {
			p.broken = true
		}
	case h1.Close:
		p.data(b)
	}
}

func (p *gorPayload) data(b []byte) {
	if p.request {
		p.body.write(b)
		return
	}
	p.n += int64(len(b))
	p.crc = crc64.Update(p.crc, p.table, b)
}

// finish returns the head, parsing what there is when the payload ended
// inside it.
func (p *gorPayload) finish() (h1.Head, error) {
	if p.tooLarge {
		line := p.head
		if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
			line = line[:nl]
		}
		if _, _, _, ok := h1.RequestLine(h1.TrimEOL(line)); ok || !p.request {
			return h1.Head{}, h1.ErrTooLarge
		}
		return h1.Head{}, h1.ErrStartLine
	}
	if !p.headDone {
		p.parseHead()
	}
	return p.h, p.herr
}

// complete reports whether the whole body was in the payload.
func (p *gorPayload) complete() bool {
	switch p.fr.Kind {
	case h1.Length:
		return p.left == 0
	case h1.Chunked:
		return p.chunk.Done()
	}
	return !p.broken
}

// headEnd returns the length of the head in buf, through the empty line
// that ends it, or -1. *scan is where the search resumes: the start of
// the first line not yet seen whole.
func headEnd(buf []byte, scan *int) int {
	i := *scan
	for {
		nl := bytes.IndexByte(buf[i:], '\n')
		if nl < 0 {
			*scan = i
			return -1
		}
		line := buf[i : i+nl]
		if i > 0 && (len(line) == 0 || (len(line) == 1 && line[0] == '\r')) {
			return i + nl + 1
		}
		i += nl + 1
	}
}
