package record

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/tape"
)

// Defaults of Options.
const (
	DefaultMaxBody         = 1 << 20
	DefaultDialTimeout     = 5 * time.Second
	DefaultResponseTimeout = 60 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultIOTimeout       = 60 * time.Second
	DefaultMaxConns        = 10_000
	DefaultMaxHeld         = 128 << 20
	DefaultShutdownGrace   = 5 * time.Second
)

// Options configure the proxy. The zero value, with an Upstream, serves
// clear-text HTTP/1.x and h2c with the defaults above and no redaction.
type Options struct {
	// Upstream is the service: http://host:port or https://host:port.
	// Requests keep their target; only scheme, host and port are used.
	Upstream *url.URL
	// TLS, when set, makes the proxy serve TLS, offering h2 and http/1.1
	// by ALPN. Without it the proxy serves clear text: HTTP/1.x, and
	// HTTP/2 to clients that start with its preface (prior knowledge).
	TLS *tls.Config
	// UpstreamTLS configures connections to an https upstream (nil: the
	// system's roots, the upstream's host name).
	UpstreamTLS *tls.Config

	// MaxBody is how many bytes of each request body are recorded; the
	// real length is recorded whatever it is. 0: DefaultMaxBody;
	// negative: none.
	MaxBody int64
	// Redact says which secrets are replaced in the tape (the upstream
	// gets every request as sent); the zero value applies the default
	// rules, as capture does.
	Redact redact.Options
	// NoForwardedFor leaves requests as they came. By default the proxy
	// appends the client's address to X-Forwarded-For, so the service
	// still sees who called it. The tape records the request as sent by
	// the client either way.
	NoForwardedFor bool

	DialTimeout     time.Duration // connecting to the upstream
	ResponseTimeout time.Duration // from the request sent to the response head
	IdleTimeout     time.Duration // a client connection between requests; an idle tunnel
	IOTimeout       time.Duration // a head or body that stalls this long, either way
	MaxConns        int           // client connections at a time; more wait to be accepted
	// MaxHeld bounds the bytes held for the tape: recorded body prefixes
	// and exchanges waiting to be written. Past it exchanges are
	// forwarded and not recorded (memory_limit, queue_full).
	MaxHeld int64
	// ShutdownGrace: when ctx ends, requests under way get this long to
	// finish before their connections are closed.
	ShutdownGrace time.Duration

	// Progress, if not nil, is called with the counters every
	// ProgressEvery (default 1s) and once at the end.
	Progress      func(Stats)
	ProgressEvery time.Duration
	// WriteError, if not nil, is called once, from the writer, with the
	// first error of the sink. The proxy goes on forwarding.
	WriteError func(error)
}

func (o *Options) defaults() error {
	if o.Upstream == nil || o.Upstream.Host == "" {
		return errors.New("no upstream")
	}
	if o.Upstream.Scheme != "http" && o.Upstream.Scheme != "https" {
		return fmt.Errorf("upstream %s: want http:// or https://", o.Upstream)
	}
	switch {
	case o.MaxBody == 0:
		o.MaxBody = DefaultMaxBody
	case o.MaxBody < 0:
		o.MaxBody = 0
	case o.MaxBody > tape.MaxStoredBody:
		return fmt.Errorf("body limit %d above the tape's %d", o.MaxBody, tape.MaxStoredBody)
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&o.DialTimeout, DefaultDialTimeout)
	set(&o.ResponseTimeout, DefaultResponseTimeout)
	set(&o.IdleTimeout, DefaultIdleTimeout)
	set(&o.IOTimeout, DefaultIOTimeout)
	set(&o.ShutdownGrace, DefaultShutdownGrace)
	set(&o.ProgressEvery, time.Second)
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxHeld <= 0 {
		o.MaxHeld = DefaultMaxHeld
	}
	if o.TLS != nil && len(o.TLS.NextProtos) == 0 {
		o.TLS = o.TLS.Clone()
		o.TLS.NextProtos = []string{"h2", "http/1.1"}
	}
	return nil
}

// proxy is one Run.
type proxy struct {
	ctx      context.Context
	opts     Options
	upstream string // host:port
	tlsUp    bool
	upTLS    *tls.Config
	dialer   net.Dialer
	h2       *h2Server
	red      *redact.Redactor
	c        counters
	held     atomic.Int64 // bytes held for the tape
	nextConn atomic.Uint64
	queue    chan *queued

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*tracked]struct{}
	wg      sync.WaitGroup // connection goroutines
}

// tracked is a client connection, so shutdown can find it.
type tracked struct {
	net.Conn
	idle atomic.Bool // waiting for a request (HTTP/1.x)
}

// queued is an exchange waiting for the writer, with the bytes it holds.
type queued struct {
	e    *tape.Exchange
	held int64
}

// Run serves the clients that ln accepts until ctx ends, then stops
// accepting, lets requests under way finish for ShutdownGrace, closes
// every connection, writes what the queue holds and returns the
// counters. ln is closed when Run returns. The sink is written from one
// goroutine; a tape.StatsSink gets the counters. A failing sink does not
// stop Run: exchanges are counted as tape_write_failed and forwarded.
func Run(ctx context.Context, ln net.Listener, opts Options, sink tape.Sink) (Stats, error) {
	if err := opts.defaults(); err != nil {
		ln.Close()
		return Stats{}, err
	}
	red, err := redact.New(opts.Redact)
	if err != nil {
		ln.Close()
		return Stats{}, err
	}
	p := &proxy{
		red:      red,
		ctx:      ctx,
		opts:     opts,
		upstream: hostPort(opts.Upstream),
		tlsUp:    opts.Upstream.Scheme == "https",
		dialer:   net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second},
		queue:    make(chan *queued, 1<<16),
		conns:    make(map[*tracked]struct{}),
	}
	if p.tlsUp {
		p.upTLS = &tls.Config{ServerName: opts.Upstream.Hostname(), NextProtos: []string{"http/1.1"}}
		if opts.UpstreamTLS != nil {
			p.upTLS = opts.UpstreamTLS.Clone()
			if p.upTLS.ServerName == "" {
				p.upTLS.ServerName = opts.Upstream.Hostname()
			}
			p.upTLS.NextProtos = []string{"http/1.1"}
		}
	}
	p.h2 = newH2Server(p)
	if ss, ok := sink.(tape.StatsSink); ok {
		ss.BindStats(func() tape.Stats { s := p.snapshot(); return s.Tape() })
	}

	writerDone := make(chan struct{})
	go p.writer(sink, writerDone)
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go p.progress(stopProgress, progressDone)

	acceptErr := p.accept(ln)
	p.shutdown()
	close(p.queue)
	<-writerDone
	close(stopProgress)
	<-progressDone
	st := p.snapshot()
	if opts.Progress != nil {
		opts.Progress(st)
	}
	if acceptErr != nil && ctx.Err() == nil {
		return st, acceptErr
	}
	return st, nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// accept runs until ctx ends or the listener fails.
func (p *proxy) accept(ln net.Listener) error {
	stop := context.AfterFunc(p.ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	slots := make(chan struct{}, p.opts.MaxConns)
	var delay time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-p.ctx.Done():
			return nil
		}
		c, err := ln.Accept()
		if err != nil {
			<-slots
			if p.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors and the like: back off, as
				// net/http does, rather than spin or give up.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		t := &tracked{Conn: c}
		if !p.track(t) {
			c.Close()
			<-slots
			return nil
		}
		p.c.connections.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-slots }()
			defer p.untrack(t)
			p.serve(t)
		}()
	}
}

func (p *proxy) track(t *tracked) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing.Load() {
		return false
	}
	p.conns[t] = struct{}{}
	p.wg.Add(1)
	return true
}

func (p *proxy) untrack(t *tracked) {
	p.mu.Lock()
	delete(p.conns, t)
	p.mu.Unlock()
	t.Close()
}

// setIdle marks an HTTP/1.x connection as waiting for a request, or not;
// it reports false when the proxy is closing, and the connection should
// end. Marking first and checking second, against shutdown's setting
// first and scanning second, means an idle connection either sees the
// shutdown or is woken by it.
func (p *proxy) setIdle(t *tracked, idle bool) bool {
	t.idle.Store(idle)
	return !p.closing.Load()
}

// shutdown wakes the idle connections so they end, gives the busy ones
// ShutdownGrace, then closes whatever is left and waits for every
// connection goroutine.
func (p *proxy) shutdown() {
	p.closing.Store(true)
	p.mu.Lock()
	for t := range p.conns {
		if t.idle.Load() {
			t.SetReadDeadline(time.Now())
		}
	}
	p.mu.Unlock()
	p.h2.shutdown()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(p.opts.ShutdownGrace):
	}
	p.mu.Lock()
	for t := range p.conns {
		t.Close()
	}
	p.mu.Unlock()
	<-done
}

// serve tells HTTP/2 from HTTP/1.x and serves the connection.
func (p *proxy) serve(t *tracked) {
	var c net.Conn = t
	if p.opts.TLS != nil {
		tc := tls.Server(t, p.opts.TLS)
		tc.SetDeadline(time.Now().Add(p.opts.IOTimeout))
		if err := tc.HandshakeContext(p.ctx); err != nil {
			p.c.tlsFailed.Add(1)
			return
		}
		tc.SetDeadline(time.Time{})
		p.c.tls.Add(1)
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			p.c.h2.Add(1)
			p.h2.serve(tc, t)
			return
		}
		c = tc
	}
	br := bufio.NewReaderSize(c, 8<<10)
	if p.opts.TLS == nil {
		h2, err := sniffPreface(c, br, p.opts.IdleTimeout)
		if err != nil {
			p.c.empty.Add(1)
			return
		}
		if h2 {
			p.c.h2.Add(1)
			p.h2.serve(&bufConn{Conn: c, r: br}, t)
			return
		}
	}
	p.c.h1.Add(1)
	newH1(p, t, c, br).run()
}

// The HTTP/2 client connection preface.
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffPreface reads as much of the start of the connection as it takes
// to tell an HTTP/2 preface from an HTTP/1.x request (one byte, for any
// request but PRI), without consuming it.
func sniffPreface(c net.Conn, br *bufio.Reader, idle time.Duration) (bool, error) {
	c.SetReadDeadline(time.Now().Add(idle))
	defer c.SetReadDeadline(time.Time{})
	for n := 1; ; {
		if _, err := br.Peek(n); err != nil {
			if n > 1 {
				return false, nil // a short request: HTTP/1.x will say what it is
			}
			return false, err
		}
		m := min(br.Buffered(), len(preface))
		if b, _ := br.Peek(m); string(b) != preface[:m] {
			return false, nil
		}
		if m == len(preface) {
			return true, nil
		}
		n = m + 1
	}
}

// bufConn is a connection whose first bytes were read into r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// addrs returns the client and local addresses of a connection.
func addrs(c net.Conn) (client, server netip.AddrPort) {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = a.AddrPort()
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		server = a.AddrPort()
	}
	return unmap(client), unmap(server)
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// snapshot is the counters so far, the redactor's included.
func (p *proxy) snapshot() Stats {
	s := p.c.snapshot()
	s.Redactions = p.red.Counters()
	return s
}

// take reserves n bytes for the tape; false when MaxHeld would be passed.
func (p *proxy) take(n int64) bool {
	if p.held.Add(n) > p.opts.MaxHeld {
		p.held.Add(-n)
		return false
	}
	return true
}

func (p *proxy) give(n int64) { p.held.Add(-n) }

// record hands a finished exchange to the writer, holding held bytes for
// it (its body prefix, already taken) plus its head. It never blocks.
func (p *proxy) record(e *tape.Exchange, held int64) {
	// The body's last byte is timed after its write returned, on another
	// goroutine than the response's first: the response may be seen
	// first. It cannot have begun before the request ended (but for an
	// early answer, which this rounds).
	if e.HasResponse() && e.ReqEnd > e.RespStart {
		e.ReqEnd = e.RespStart
	}
	if err := e.Validate(); err != nil {
		p.give(held)
		p.c.tooLarge.Add(1)
		return
	}
	head := int64(len(e.Target) + 64)
	for _, f := range e.ReqHeader {
		head += int64(len(f.Name) + len(f.Value) + 16)
	}
	for _, f := range e.RespHeader {
		head += int64(len(f.Name) + len(f.Value) + 16)
	}
	if !p.take(head) {
		p.give(held)
		p.c.queueFull.Add(1)
		return
	}
	select {
	case p.queue <- &queued{e: e, held: held + head}:
	default:
		p.give(held + head)
		p.c.queueFull.Add(1)
	}
}

// writer redacts and writes the queued exchanges, counting each.
func (p *proxy) writer(sink tape.Sink, done chan struct{}) {
	defer close(done)
	failed := false
	for q := range p.queue {
		e := q.e
		p.red.Exchange(e) // sets tape.Redacted when it replaced anything
		if err := sink.Write(e); err != nil {
			p.c.writeFailed.Add(1)
			if !failed && p.opts.WriteError != nil {
				p.opts.WriteError(err)
			}
			failed = true
		} else {
			p.c.exchanges.Add(1)
			switch {
			case e.Flags&tape.NoResponse != 0:
				p.c.noResponse.Add(1)
			case e.Flags&tape.RespIncomplete != 0:
				p.c.incomplete.Add(1)
			default:
				p.c.responses.Add(1)
			}
			if e.Flags&tape.ReqBodyTruncated != 0 {
				p.c.truncated.Add(1)
			}
			if e.Flags&tape.Redacted != 0 {
				p.c.redacted.Add(1)
			}
		}
		p.give(q.held)
	}
}

func (p *proxy) progress(stop, done chan struct{}) {
	defer close(done)
	if p.opts.Progress == nil {
		return
	}
	t := time.NewTicker(p.opts.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.opts.Progress(p.snapshot())
		}
	}
}

// hopByHop are the headers of one connection, never forwarded between
// HTTP/2 and HTTP/1.x.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer"}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range splitComma(v) {
			h.Del(name)
		}
	}
	for _, k := range hopByHop {
		h.Del(k)
	}
}

func splitComma(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
