package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"
	"github.com/herd-replay/herd/internal/cputime"
	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/tape"
)

// Defaults of Options.
const (
	DefaultMaxBody         = 1 << 20
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultGapTimeout      = 5 * time.Second
	DefaultMaxBuffered     = 256 << 20 // reassembly pages are bounded separately, see Options
	DefaultMaxConnBuffered = 32 << 20
	DefaultMaxPending      = 4096
)

// Options configure a capture. The zero value captures every TCP port with
// the defaults above and redaction on.
type Options struct {
	// Ports: only TCP connections with one end on one of these ports are
	// captured, and that end is the server. Empty: every port, and the side
	// that sends a request line is the client.
	Ports []int
	// MaxBody is how many bytes of each request body are stored; the real
	// length is recorded whatever it is. 0 means DefaultMaxBody; negative
	// stores no body.
	MaxBody int64
	// SamplePct keeps this percentage of connections, chosen by a hash of
	// their addresses so whole connections are kept or left out. 0 or 100:
	// all of them.
	SamplePct float64
	// Redact says which secrets are replaced (internal/redact; the zero
	// value redacts the defaults).
	Redact redact.Options
	// MaxCPU, when positive, is a budget in cores for this process: while
	// it uses more, the sampling rate of new connections is halved (down
	// to MinSamplePct), and it is doubled back (up to SamplePct) after a
	// while under a third of the budget. A connection being recorded is
	// never cut. The sink must be a SampleSink.
	MaxCPU float64

	// IdleTimeout: a connection with no packet for this long (in packet
	// time) is closed and its exchanges written.
	IdleTimeout time.Duration
	// GapTimeout: data waiting behind a missing segment for this long (in
	// packet time) is delivered, and the missing bytes become a gap.
	GapTimeout time.Duration
	// MaxBuffered bounds the bytes held by the HTTP parser over all
	// connections (partial heads, stored request bodies waiting for their
	// response); past it the least recently active connections are
	// flushed. Out-of-order TCP segments are bounded separately by the
	// same amount.
	MaxBuffered int64
	// MaxConnBuffered bounds the same per connection; past it the
	// connection is flushed.
	MaxConnBuffered int64
	// MaxPending bounds the requests of one connection waiting for their
	// response; past it the oldest is written without one.
	MaxPending int
	// ProgressEvery is the wall-clock interval between progress reports
	// (default 200ms).
	ProgressEvery time.Duration
	// OnRequest, when set, is called with each request as soon as its
	// line, headers and body have all been captured, before its response:
	// live shadowing sends it on then, without waiting for the response.
	// The exchange holds the request only (flagged NoResponse), with the
	// Seq its exchange will have on the connection; it is not redacted,
	// and it and what it points to are valid only during the call, and
	// must not be changed. The request still reaches the Sink with its
	// response, as always. It is called from Run's goroutine.
	OnRequest func(e *tape.Exchange)
}

func (o *Options) defaults() error {
	switch {
	case o.MaxBody == 0:
		o.MaxBody = DefaultMaxBody
	case o.MaxBody < 0:
		o.MaxBody = 0
	case o.MaxBody > tape.MaxStoredBody:
		return fmt.Errorf("body limit %d above the tape's %d", o.MaxBody, tape.MaxStoredBody)
	}
	if o.SamplePct < 0 || o.SamplePct > 100 {
		return fmt.Errorf("sample percentage %v outside 0..100", o.SamplePct)
	}
	if o.MaxCPU < 0 {
		return fmt.Errorf("CPU budget %v below 0", o.MaxCPU)
	}
	for _, p := range o.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("port %d outside 1..65535", p)
		}
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.GapTimeout <= 0 {
		o.GapTimeout = DefaultGapTimeout
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	if o.MaxConnBuffered <= 0 {
		o.MaxConnBuffered = DefaultMaxConnBuffered
	}
	o.MaxConnBuffered = max(o.MaxConnBuffered, o.MaxBody+maxHead)
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 200 * time.Millisecond
	}
	return nil
}

// Sink receives exchanges as they are settled. A *tape.Writer is one. The
// exchange is only valid during the call.
type Sink interface {
	Write(e *tape.Exchange) error
}

// StatsSink is a Sink that wants the capture's running counters, e.g. to
// store each rotated file's share of them. Run calls BindStats once before
// the first Write; the function it hands over may be called from Write.
type StatsSink interface {
	Sink
	BindStats(func() tape.Stats)
}

// portSet is a set of TCP ports.
type portSet struct {
	bits [1024]uint64
	any  bool
}

func newPortSet(ports []int) *portSet {
	s := &portSet{}
	for _, p := range ports {
		s.bits[p>>6] |= 1 << (p & 63)
		s.any = true
	}
	return s
}

func (s *portSet) has(p uint16) bool { return s.bits[p>>6]&(1<<(p&63)) != 0 }

// engine is one capture run: the assembler, the connections, the counters.
type engine struct {
	opts   Options
	sink   Sink
	red    *redact.Redactor
	ports  *portSet
	stats  Stats
	pool   *reassembly.StreamPool
	asm    *reassembly.Assembler
	live   map[*conn]struct{}
	nextID uint64
	mem    int64
	err    error // first sink error: the run stops

	samplePct float64 // rate in force: Options.SamplePct, or lower under a CPU budget
	budget    *budget

	now       time.Time // packet clock: the latest timestamp seen
	lastFlush time.Time
	frame     frame
	tcp       layers.TCP
	ctxs      []packetCtx
	ex        tape.Exchange
}

// packetCtx carries a packet's capture info through the assembler, which
// keeps it with any segment it must queue. They are handed out from slabs
// so that a packet costs no allocation of its own.
type packetCtx struct{ ci gopacket.CaptureInfo }

func (p *packetCtx) GetCaptureInfo() gopacket.CaptureInfo { return p.ci }

const ctxSlab = 1024

func (e *engine) packetCtx(ts time.Time, length int) *packetCtx {
	if len(e.ctxs) == 0 {
		e.ctxs = make([]packetCtx, ctxSlab)
	}
	c := &e.ctxs[0]
	e.ctxs = e.ctxs[1:]
	c.ci.Timestamp, c.ci.CaptureLength, c.ci.Length = ts, length, length
	return c
}

func newEngine(opts Options, sink Sink) (*engine, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	red, err := redact.New(opts.Redact)
	if err != nil {
		return nil, err
	}
	e := &engine{
		opts:  opts,
		sink:  sink,
		red:   red,
		ports: newPortSet(opts.Ports),
		live:  make(map[*conn]struct{}),
	}
	e.samplePct = opts.SamplePct
	if opts.MaxCPU > 0 {
		if _, ok := sink.(SampleSink); !ok {
			return nil, errors.New("a CPU budget needs a sink that records changes of the sampling rate (rotated files)")
		}
		e.budget = newBudget(opts.MaxCPU, opts.SamplePct)
		e.samplePct = e.budget.pct
	}
	e.stats.SamplePct = e.samplePct
	e.pool = reassembly.NewStreamPool(e)
	e.asm = reassembly.NewAssembler(e.pool)
	// Out-of-order segments wait in pages of about 2 KB; bound them too.
	pages := int(opts.MaxBuffered / 2048)
	e.asm.MaxBufferedPagesTotal = pages
	e.asm.MaxBufferedPagesPerConnection = max(64, int(opts.MaxConnBuffered/2048))
	return e, nil
}

// New implements reassembly.StreamFactory.
func (e *engine) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, ac reassembly.AssemblerContext) reassembly.Stream {
	e.stats.TCPConnections++
	if e.samplePct > 0 && e.samplePct < 100 && !e.sampled(netFlow, tcp) {
		e.stats.SampledOut++
		return dropStream{}
	}
	e.nextID++
	c := newConn(e, e.nextID, netFlow, tcp)
	c.lastSeen = ac.GetCaptureInfo().Timestamp
	e.live[c] = struct{}{}
	return c
}

// sampled decides by a hash of the connection's two endpoints, the same
// whichever side sent the first packet.
func (e *engine) sampled(netFlow gopacket.Flow, tcp *layers.TCP) bool {
	src, dst := netFlow.Endpoints()
	a := append(src.Raw(), byte(tcp.SrcPort>>8), byte(tcp.SrcPort))
	b := append(dst.Raw(), byte(tcp.DstPort>>8), byte(tcp.DstPort))
	if string(a) > string(b) {
		a, b = b, a
	}
	h := fnv.New64a()
	h.Write(a)
	h.Write(b)
	return float64(h.Sum64()%1_000_000) < e.samplePct*10_000
}

// dropStream swallows a connection that sampling left out.
type dropStream struct{}

func (dropStream) Accept(*layers.TCP, gopacket.CaptureInfo, reassembly.TCPFlowDirection, reassembly.Sequence, *bool, reassembly.AssemblerContext) bool {
	return false
}
func (dropStream) ReassembledSG(reassembly.ScatterGather, reassembly.AssemblerContext) {}
func (dropStream) ReassemblyComplete(reassembly.AssemblerContext) bool                 { return true }

// Run reads src to its end (or until ctx is done), writes an exchange to
// sink for every complete request, and returns the counters. When ctx is
// cancelled, everything already read is still flushed and written before
// Run returns ctx.Err(). progress, if not nil, is called from Run's
// goroutine with the counters so far every Options.ProgressEvery, and once
// at the end.
func Run(ctx context.Context, src Source, opts Options, sink Sink, progress func(Stats)) (Stats, error) {
	e, err := newEngine(opts, sink)
	if err != nil {
		return Stats{}, err
	}
	if ss, ok := sink.(StatsSink); ok {
		ss.BindStats(func() tape.Stats {
			st := e.stats
			st.Redactions = e.red.Counters()
			return st.Tape()
		})
	}
	err = e.run(ctx, src, progress)
	e.stats.Redactions = e.red.Counters()
	return e.stats, err
}

func (e *engine) run(ctx context.Context, src Source, progress func(Stats)) error {
	dropper, _ := src.(Dropper)
	report := func() {
		if dropper != nil {
			if d, err := dropper.Drops(); err == nil {
				e.stats.KernelDrops = d
			}
		}
		if progress != nil {
			progress(e.stats)
		}
	}
	defer report()
	lastReport := time.Now()
	var p Packet
	var runErr error
	for i := 0; ; i++ {
		if i&255 == 0 {
			if err := ctx.Err(); err != nil {
				runErr = err
				break
			}
			if now := time.Now(); now.Sub(lastReport) >= e.opts.ProgressEvery {
				lastReport = now
				report()
				if err := e.checkBudget(now); err != nil {
					runErr = err
					break
				}
			}
		}
		err := src.Next(&p)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, ErrNoPacket) {
				// A live source is quiet: packet time still moves on.
				e.advance(time.Now())
				i = (i | 255) // check the context on the next turn
				continue
			}
			if errors.Is(err, ErrTruncatedFile) {
				e.stats.TruncatedFiles++
				continue
			}
			runErr = err
			break
		}
		if err := e.packet(&p); err != nil {
			runErr = err
			break
		}
		if e.err != nil {
			break
		}
	}
	e.asm.FlushAll()
	if e.err != nil {
		return e.err
	}
	return runErr
}

// checkBudget applies the CPU budget: a new sampling rate for new
// connections, recorded by the sink.
func (e *engine) checkBudget(now time.Time) error {
	if e.budget == nil {
		return nil
	}
	pct, why := e.budget.observe(now, cputime.Process())
	if pct == 0 {
		return nil
	}
	if err := e.sink.(SampleSink).SetSamplePct(pct, why); err != nil {
		return fmt.Errorf("change the sampling rate: %w", err)
	}
	if pct < e.samplePct {
		e.stats.SampleReductions++
	}
	e.samplePct = pct
	e.stats.SamplePct = pct
	return nil
}

// packet handles one frame.
func (e *engine) packet(p *Packet) error {
	e.stats.Packets++
	e.stats.Bytes += int64(len(p.Data))
	if !supportedLink(p.Link) {
		return &UnsupportedLinkError{Link: p.Link}
	}
	f := &e.frame
	switch decodeLink(p.Link, p.Data, f) {
	case decodedNotTCP:
		e.stats.NonTCPPackets++
		return nil
	case decodedFragment:
		e.stats.IPFragments++
		return nil
	case decodedMalformed:
		e.stats.MalformedPackets++
		return nil
	}
	if len(f.tcp) < 20 {
		e.stats.MalformedPackets++
		return nil
	}
	if e.ports.any {
		sp, dp := binary.BigEndian.Uint16(f.tcp[0:2]), binary.BigEndian.Uint16(f.tcp[2:4])
		if !e.ports.has(sp) && !e.ports.has(dp) {
			e.stats.FilteredPackets++
			return nil
		}
	}
	if err := e.tcp.DecodeFromBytes(f.tcp, gopacket.NilDecodeFeedback); err != nil {
		e.stats.MalformedPackets++
		return nil
	}
	if f.truncated {
		e.stats.TruncatedPackets++
	}
	var netFlow gopacket.Flow
	if f.v6 {
		netFlow = gopacket.NewFlow(layers.EndpointIPv6, f.src, f.dst)
	} else {
		netFlow = gopacket.NewFlow(layers.EndpointIPv4, f.src, f.dst)
	}
	e.asm.AssembleWithContext(netFlow, &e.tcp, e.packetCtx(p.Time, p.Length))
	e.advance(p.Time)
	if e.mem > e.opts.MaxBuffered {
		e.flushOldest()
	}
	return nil
}

// advance moves the packet clock to ts (it never goes back) and, once per
// second of packet time, gives up on old gaps and closes idle connections.
func (e *engine) advance(ts time.Time) {
	if !ts.After(e.now) {
		return
	}
	e.now = ts
	if e.lastFlush.IsZero() {
		e.lastFlush = ts
		return
	}
	if ts.Sub(e.lastFlush) < time.Second {
		return
	}
	e.lastFlush = ts
	e.asm.FlushWithOptions(reassembly.FlushOptions{
		T:  ts.Add(-e.opts.GapTimeout),
		TC: ts.Add(-e.opts.IdleTimeout),
	})
}

// flushOldest flushes the least recently active connections until the
// parser's buffers are back under three quarters of their bound.
func (e *engine) flushOldest() {
	conns := make([]*conn, 0, len(e.live))
	for c := range e.live {
		if c.mem > 0 {
			conns = append(conns, c)
		}
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].lastSeen.Before(conns[j].lastSeen) })
	for _, c := range conns {
		if e.mem <= e.opts.MaxBuffered/4*3 {
			break
		}
		c.flush()
	}
}

// emit writes the exchange of request m on connection c.
func (e *engine) emit(c *conn, m *message) {
	if e.err != nil {
		return
	}
	x := &e.ex
	seq := c.seq
	if m.stream != 0 {
		seq = m.seq // given when the stream opened
	}
	*x = requestOf(c, m, seq)
	r := m.resp
	if r == nil {
		x.Flags |= tape.NoResponse
	} else {
		x.Flags |= r.flags
		if x.HasResponse() { // not a response lost whole in a gap (responseLost)
			x.RespStart, x.RespEnd = r.start, max(r.end, r.start)
			x.Status, x.RespProto, x.RespHeader = r.h.status, r.h.proto, r.h.fields
			x.RespBodyLen, x.RespBodyHash = r.bodyLen, r.crc
			x.RespTrailer = r.trailer
		}
	}
	redacted := e.red.Exchange(x) // sets tape.Redacted
	st := &e.stats
	if len(x.Target) > tape.MaxTarget {
		// Only a redaction marker longer than the value it replaced can
		// get here.
		st.RequestTooLarge++
		return
	}
	// Write first, count after: a sink that rotates files takes the
	// counters of the file it closes before this exchange is counted.
	if err := e.sink.Write(x); err != nil {
		e.err = fmt.Errorf("write exchange: %w", err)
		return
	}
	if m.stream == 0 {
		c.seq++
	}
	st.Exchanges++
	if redacted {
		st.Redacted++
	}
	switch {
	case x.Flags&tape.NoResponse != 0:
		st.NoResponse++
	case x.Flags&tape.RespIncomplete == 0:
		st.Responses++
	case r.why == incGap:
		st.IncompleteGap++
	case r.why == incFlush:
		st.IncompleteFlush++
	case r.why == incMalformed:
		st.IncompleteBroken++
	case r.why == incReset:
		st.IncompleteReset++
	default:
		st.IncompleteEnd++
	}
	if x.Flags&tape.ReqBodyTruncated != 0 {
		st.BodiesTruncated++
	}
}

// requestOf is the exchange of request m on connection c, without its
// response, numbered seq.
func requestOf(c *conn, m *message, seq uint32) tape.Exchange {
	ci := c.client()
	return tape.Exchange{
		ConnID:     c.id,
		Seq:        seq,
		Stream:     m.stream,
		ReqTrailer: m.trailer,
		Client:     c.addr[ci],
		Server:     c.addr[1-ci],
		ReqStart:   m.start,
		ReqEnd:     max(m.end, m.start),
		Method:     m.h.method,
		Target:     m.h.target,
		Proto:      m.h.proto,
		ReqHeader:  m.h.fields,
		ReqBody:    m.body,
		ReqBodyLen: m.bodyLen,
		Flags:      m.flags,
	}
}

// requestDone hands a complete request to Options.OnRequest. Requests
// complete in order on a connection and every one kept is written (unless
// redaction makes its target too long for a record), so counting them
// gives each the Seq its exchange will have.
func (e *engine) requestDone(c *conn, m *message) {
	if e.opts.OnRequest == nil || e.err != nil || m.drop != keep {
		return
	}
	seq := m.seq // an HTTP/2 stream's, given when it opened
	if m.stream == 0 {
		seq = c.requests
		c.requests++
	}
	x := requestOf(c, m, seq)
	x.Flags |= tape.NoResponse
	e.opts.OnRequest(&x)
}
