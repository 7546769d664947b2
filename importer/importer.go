package importer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"maps"
	"sort"
	"time"

	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/tape"
)

// Defaults of Options.
const (
	DefaultMaxBody        = 1 << 20
	DefaultPairWindow     = 100_000
	DefaultMaxPendingSize = 64 << 20
	// connIdle: a grouped connection with no request for this long (in
	// recorded time) is forgotten; a later request from the same address
	// starts a new one. It bounds the connection table.
	connIdle = 10 * time.Minute
)

// Options configure an import. The zero value uses the defaults.
type Options struct {
	// MaxBody is how many bytes of each request body are stored; the real
	// length is recorded whatever it is. 0 means DefaultMaxBody; negative
	// stores no body.
	MaxBody int64
	// Redact says which secrets are replaced before an exchange is
	// written; the zero value applies the default rules, as capture does.
	Redact redact.Options
	// PairWindow (.gor): a request waits for its response for this many
	// later payloads; past it, it is written without one.
	PairWindow int
	// MaxPendingSize bounds the bytes of exchanges held: .gor requests
	// waiting for their responses (past it the oldest are written
	// without one), and exchanges of grouped connections waiting to be
	// numbered in order of start (past it the earliest are written).
	MaxPendingSize int64
	// Progress, if not nil, is called with the counters so far every
	// ProgressEvery (default 200ms) and once at the end.
	Progress      func(Stats)
	ProgressEvery time.Duration
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
	if o.PairWindow <= 0 {
		o.PairWindow = DefaultPairWindow
	}
	if o.MaxPendingSize <= 0 {
		o.MaxPendingSize = DefaultMaxPendingSize
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 200 * time.Millisecond
	}
	return nil
}

// Source is one input: a name for messages and its bytes.
type Source struct {
	Name string
	R    io.Reader
}

// Stats count what an import read, wrote and left out.
type Stats struct {
	Format      Format
	Files       int
	Bytes       int64 // input bytes read (decompressed)
	Entries     int64 // payloads, HAR entries or non-blank log lines read
	Exchanges   int64 // exchanges written
	Responses   int64 // ... of which with a response
	NoResponse  int64 // ... without one
	Connections int64 // tape connections
	// Grouped counts exchanges put on a connection with others by the
	// source's connection information (GoReplay ids, HAR connection ids,
	// ALB client ports); the rest each have a connection of their own.
	Grouped         int64
	Redacted        int64
	BodiesTruncated int64 // request bodies longer than MaxBody, or than the source kept
	// Format-specific counters, by snake_case name (replayed_responses,
	// blank_lines, header_lines_skipped ...).
	Counters map[string]int64
	// Redactions counts the values redacted by kind and name, as
	// redact.Redactor.Counters names them.
	Redactions map[string]int64
	// Discarded counts entries that did not become exchanges, by reason.
	Discarded map[string]int64
}

// notMalformed are the discard reasons that are not damage in the input.
var notMalformed = map[string]bool{
	"orphan_response": true,
}

// Malformed sums the discard reasons that are malformed input: entries
// that are not requests, broken headers, unterminated payloads.
func (s *Stats) Malformed() int64 {
	var n int64
	for k, v := range s.Discarded {
		if !notMalformed[k] {
			n += v
		}
	}
	return n
}

// Tape returns the counters as the tape stores them; zeros are left out.
func (s *Stats) Tape() tape.Stats {
	c := map[string]int64{
		"files":                     int64(s.Files),
		"bytes":                     s.Bytes,
		"entries":                   s.Entries,
		"exchanges":                 s.Exchanges,
		"responses":                 s.Responses,
		"requests_without_response": s.NoResponse,
		"connections":               s.Connections,
		"grouped_exchanges":         s.Grouped,
		"redacted":                  s.Redacted,
		"body_truncated":            s.BodiesTruncated,
	}
	for k, v := range s.Counters {
		c[k] += v
	}
	for k, v := range s.Redactions {
		c[k] += v
	}
	d := make(map[string]int64, len(s.Discarded))
	for k, v := range s.Discarded {
		d[k] = v
	}
	for _, m := range []map[string]int64{c, d} {
		for k, v := range m {
			if v == 0 {
				delete(m, k)
			}
		}
	}
	return tape.Stats{Counters: c, Discarded: d}
}

func (s *Stats) count(name string)  { s.Counters[name]++ }
func (s *Stats) discard(why string) { s.Discarded[why]++ }
func (s *Stats) clone() (out Stats) {
	out = *s
	out.Counters = make(map[string]int64, len(s.Counters))
	out.Redactions = maps.Clone(s.Redactions)
	out.Discarded = make(map[string]int64, len(s.Discarded))
	for k, v := range s.Counters {
		out.Counters[k] = v
	}
	for k, v := range s.Discarded {
		out.Discarded[k] = v
	}
	return out
}

// Result is what Run hands back besides the counters: what the tape's
// metadata should say about the import.
type Result struct {
	Format Format
	// NoRequestBodies: the source holds no request bodies (access logs).
	NoRequestBodies bool
	// Notes say what the format could not: how connections were formed.
	Notes []string
	// Warnings are damage worth telling a person about (a HAR file cut
	// short), beyond the counters.
	Warnings []string
}

// MismatchError is a set of inputs in different formats.
type MismatchError struct {
	First, Other       string
	FirstFmt, OtherFmt Format
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s is %s but %s is %s: import each format into its own tape", e.First, e.FirstFmt, e.Other, e.OtherFmt)
}

// DetectAll reads the start of every source and returns the format they
// share, with readers that still yield every byte (decompressed). It is
// Run's first step, exposed so a caller can name the format (for the
// tape's metadata) before any exchange is written.
func DetectAll(srcs []Source) (Format, []Source, error) {
	if len(srcs) == 0 {
		return Unknown, nil, errors.New("no input")
	}
	out := make([]Source, len(srcs))
	var f Format
	for i, s := range srcs {
		fi, r, err := Detect(s.R)
		if err != nil {
			return Unknown, nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		if i == 0 {
			f = fi
		} else if fi != f {
			return Unknown, nil, &MismatchError{First: srcs[0].Name, Other: s.Name, FirstFmt: f, OtherFmt: fi}
		}
		out[i] = Source{Name: s.Name, R: r}
	}
	return f, out, nil
}

// Run imports srcs, which DetectAll has checked, in order, as one
// recording, into sink. When ctx is cancelled it stops reading, writes
// what it holds and returns ctx.Err().
func Run(ctx context.Context, f Format, srcs []Source, opts Options, sink tape.Sink) (Stats, Result, error) {
	res := Result{Format: f, NoRequestBodies: f.noBodies()}
	if err := opts.defaults(); err != nil {
		return Stats{}, res, err
	}
	red, err := redact.New(opts.Redact)
	if err != nil {
		return Stats{}, res, err
	}
	r := newRun(ctx, f, opts, sink)
	r.red = red
	var imp importer
	switch f {
	case GoReplay:
		imp = newGor(r)
	case HAR:
		imp = newHAR(r)
	case CombinedLog:
		imp = newCLF(r)
	case ALBLog:
		imp = newALB(r)
	default:
		return r.stats, res, fmt.Errorf("unknown format %v", f)
	}
	for _, s := range srcs {
		r.stats.Files++
		cr := &countingReader{r: s.R, n: &r.stats.Bytes}
		if err = imp.read(s.Name, cr); err != nil {
			break
		}
	}
	if ferr := imp.finish(); err == nil {
		err = ferr
	}
	r.drain()
	if err == nil && r.err != nil {
		err = r.err
	}
	res.Notes = imp.notes()
	res.Warnings = r.warnings
	r.stats.Redactions = red.Counters()
	r.progress(true)
	return r.stats.clone(), res, err
}

// importer is one format's reader.
type importer interface {
	// read imports one input; the state that pairs and groups carries
	// over to the next, so rotated files import as one.
	read(name string, r io.Reader) error
	// finish writes whatever is still held.
	finish() error
	// notes say how connections were formed.
	notes() []string
}

// run is what every importer shares: counters, connection ids, the sink.
type run struct {
	ctx      context.Context
	opts     Options
	sink     tape.Sink
	stats    Stats
	err      error // first sink error, or the context's
	warnings []string
	order    reorder
	red      *redact.Redactor
	nextID   uint64
	crc      *crc64.Table
	lastRep  time.Time
}

func newRun(ctx context.Context, f Format, opts Options, sink tape.Sink) *run {
	return &run{
		ctx: ctx, opts: opts, sink: sink,
		stats: Stats{Format: f, Counters: map[string]int64{}, Discarded: map[string]int64{}},
		crc:   crc64.MakeTable(crc64.ECMA),
	}
}

// newConn returns a fresh connection id.
func (r *run) newConn() uint64 {
	r.nextID++
	r.stats.Connections++
	return r.nextID
}

// check returns the error that ends the import (a sink's, the
// context's), and reports progress now and then. Importers call it once
// per entry.
func (r *run) check() error {
	if r.err == nil && r.stats.Entries&1023 == 0 {
		r.err = r.ctx.Err()
		r.progress(false)
	}
	return r.err
}

func (r *run) warn(msg string) { r.warnings = append(r.warnings, msg) }

func (r *run) progress(final bool) {
	if r.opts.Progress == nil {
		return
	}
	if now := time.Now(); final || now.Sub(r.lastRep) >= r.opts.ProgressEvery {
		r.lastRep = now
		r.opts.Progress(r.stats.clone())
	}
}

// emit hands e, on connection c (nil: a connection of its own), to the
// reorder stage, which writes it once no earlier request can follow.
func (r *run) emit(e *tape.Exchange, c *tableConn) {
	if r.err != nil {
		return
	}
	if c == nil {
		// Alone on its connection: its number is 0 whatever comes.
		r.write(&held{e: *e})
		return
	}
	r.order.push(e, c)
	for r.order.due(r.opts.MaxPendingSize) {
		r.write(r.order.pop())
	}
}

// drain writes everything the reorder stage holds.
func (r *run) drain() {
	for r.order.len() > 0 {
		r.write(r.order.pop())
	}
}

// write numbers the exchange on its connection, redacts, writes and
// counts it. A sink error stops the import.
func (r *run) write(h *held) {
	e := &h.e
	if h.conn != nil {
		e.Seq = h.conn.seq
		h.conn.seq++
	}
	if e.Proto == tape.HTTP2 {
		e.Stream = 2*e.Seq + 1 // the ids a client opening streams in this order uses
	}
	if r.err != nil {
		return
	}
	r.red.Exchange(e) // sets tape.Redacted when it replaced anything
	if err := e.Validate(); err != nil {
		// Beyond what a tape record holds: the input's fault, counted.
		r.stats.discard("request_too_large")
		return
	}
	if e.Flags&tape.Redacted != 0 {
		r.stats.Redacted++
	}
	if err := r.sink.Write(e); err != nil {
		r.err = err // a full disk: the import ends
		return
	}
	r.stats.Exchanges++
	if e.HasResponse() {
		r.stats.Responses++
	} else {
		r.stats.NoResponse++
	}
	if e.Flags&tape.ReqBodyTruncated != 0 {
		r.stats.BodiesTruncated++
	}
}

// reorderSpan is how far, in recorded time, an input may run out of order
// (a request logged after a later one on its connection, as GoReplay and
// load balancers do) and still get its place: exchanges wait this long
// behind the latest request seen, then are written in order of their
// start, which numbers each connection's requests in the order they began.
const reorderSpan = int64(10 * time.Second)

// held is an exchange waiting in the reorder stage.
type held struct {
	e    tape.Exchange
	conn *tableConn
	n    int64 // arrival, to keep equal starts in input order
	size int64
}

// reorder is a heap of exchanges by request start.
type reorder struct {
	h      []*held
	bytes  int64
	latest int64
	n      int64
}

func (o *reorder) len() int { return len(o.h) }

func (o *reorder) less(i, j int) bool {
	a, b := o.h[i], o.h[j]
	return a.e.ReqStart < b.e.ReqStart || (a.e.ReqStart == b.e.ReqStart && a.n < b.n)
}

func (o *reorder) push(e *tape.Exchange, c *tableConn) {
	size := int64(len(e.ReqBody)+len(e.Target)) + 128
	for _, f := range e.ReqHeader {
		size += int64(len(f.Name) + len(f.Value) + 32)
	}
	for _, f := range e.RespHeader {
		size += int64(len(f.Name) + len(f.Value) + 32)
	}
	o.n++
	o.h = append(o.h, &held{e: *e, conn: c, n: o.n, size: size})
	o.bytes += size
	o.latest = max(o.latest, e.ReqStart)
	for i := len(o.h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !o.less(i, parent) {
			break
		}
		o.h[i], o.h[parent] = o.h[parent], o.h[i]
		i = parent
	}
}

// due reports whether the earliest exchange should be written: it is
// reorderSpan behind the latest, or the stage holds too much.
func (o *reorder) due(maxBytes int64) bool {
	return len(o.h) > 0 && (o.h[0].e.ReqStart < o.latest-reorderSpan || o.bytes > maxBytes || len(o.h) > 1<<20)
}

func (o *reorder) pop() *held {
	top := o.h[0]
	last := len(o.h) - 1
	o.h[0] = o.h[last]
	o.h[last] = nil
	o.h = o.h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(o.h) && o.less(l, m) {
			m = l
		}
		if r < len(o.h) && o.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		o.h[i], o.h[m] = o.h[m], o.h[i]
		i = m
	}
	o.bytes -= top.size
	return top
}

// body keeps the first max bytes of a request body and counts the rest.
type body struct {
	max  int64
	data []byte
	n    int64
}

func (b *body) write(p []byte) {
	if keep := b.max - int64(len(b.data)); keep > 0 {
		b.data = append(b.data, p[:min(int64(len(p)), keep)]...)
	}
	b.n += int64(len(p))
}

// set stores the body of e: the prefix, the real length (at least what
// was seen) and the truncation flag.
func (b *body) set(e *tape.Exchange, declared int64) {
	e.ReqBody = b.data
	e.ReqBodyLen = max(b.n, declared)
	if e.ReqBodyLen > int64(len(e.ReqBody)) {
		e.Flags |= tape.ReqBodyTruncated
	}
}

// connTable groups exchanges into connections by a key (a client address,
// a HAR connection id) and numbers them in order. Keys idle for connIdle
// of recorded time are forgotten, so the table stays bounded.
type connTable[K comparable] struct {
	r     *run
	conns map[K]*tableConn
	ops   int
}

type tableConn struct {
	id   uint64
	seq  uint32 // the next request's number, given as they are written
	last int64
}

func newConnTable[K comparable](r *run) *connTable[K] {
	return &connTable[K]{r: r, conns: make(map[K]*tableConn)}
}

// assign returns the connection of a request made at ts on the connection
// known as k. The request's number on it is given when it is written,
// in order of start.
func (t *connTable[K]) assign(k K, ts int64) *tableConn {
	if t.ops++; t.ops&0xffff == 0 {
		for key, c := range t.conns {
			if ts-c.last > int64(connIdle) {
				delete(t.conns, key)
			}
		}
	}
	c := t.conns[k]
	if c == nil || ts-c.last > int64(connIdle) {
		c = &tableConn{id: t.r.newConn()}
		t.conns[k] = c
	}
	c.last = max(c.last, ts)
	t.r.stats.Grouped++
	return c
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// lines reads r line by line, each at most max bytes (without the line
// ending). A longer line is reported with long set and its content cut.
type lines struct {
	br   *bufio.Reader
	buf  []byte
	max  int
	long bool
}

func newLines(r io.Reader, max int) *lines {
	return &lines{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its LF (a CR is kept), or io.EOF.
func (l *lines) next() ([]byte, error) {
	l.buf, l.long = l.buf[:0], false
	for {
		b, err := l.br.ReadSlice('\n')
		if len(l.buf)+len(b) > l.max+1 {
			l.long = true
			b = b[:max(0, min(len(b), l.max+1-len(l.buf)))]
		}
		l.buf = append(l.buf, b...)
		switch {
		case err == nil:
			return trimLF(l.buf), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(l.buf) > 0:
			return l.buf, nil
		default:
			return nil, err
		}
	}
}

func trimLF(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// sortedKeys lists a map's keys in order, for stable notes.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
