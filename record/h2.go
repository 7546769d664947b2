package record

import (
	"context"
	"crypto/tls"
	"errors"
	"hash/crc64"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/herd-replay/herd/tape"
)

// h2Server serves HTTP/2 client connections with net/http's server (fed
// the connections the proxy accepted and told apart) and forwards each
// stream to the upstream through one shared http.Transport (HTTP/1.1 to
// an http:// upstream, HTTP/2 or 1.1 by ALPN to an https:// one): the
// streams of one client connection run at once, so they cannot be
// mirrored onto one HTTP/1.x connection.
type h2Server struct {
	p         *proxy
	srv       *http.Server
	ln        *connListener
	conns     sync.Map // net.Conn handed to srv → *h2conn
	transport *http.Transport
	bufs      sync.Pool
}

// h2conn is one HTTP/2 client connection: its tape connection, the order
// its streams started in, and its end.
type h2conn struct {
	id             uint64
	client, server netip.AddrPort
	scheme         string
	mu             sync.Mutex
	seq            uint32
	done           chan struct{}
	once           sync.Once
}

type connKey struct{}

func newH2Server(p *proxy) *h2Server {
	s := &h2Server{p: p, ln: newConnListener()}
	var protos http.Protocols
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	s.srv = &http.Server{
		Handler:     s,
		Protocols:   &protos,
		IdleTimeout: p.opts.IdleTimeout,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          250,
			MaxReceiveBufferPerConnection: 1 << 20,
			MaxReceiveBufferPerStream:     256 << 10,
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cs, _ := s.conns.Load(c)
			return context.WithValue(ctx, connKey{}, cs)
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				if cs, ok := s.conns.LoadAndDelete(c); ok {
					cs.(*h2conn).end()
				}
			}
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go s.srv.Serve(s.ln)
	var upTLS *tls.Config
	if p.upTLS != nil {
		upTLS = p.upTLS.Clone()
		upTLS.NextProtos = []string{"h2", "http/1.1"}
	}
	s.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := p.dialer.DialContext(ctx, network, addr)
			if err == nil {
				p.c.dials.Add(1)
			}
			return c, err
		},
		TLSClientConfig:       upTLS,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       p.opts.IdleTimeout,
		TLSHandshakeTimeout:   p.opts.DialTimeout,
		ResponseHeaderTimeout: p.opts.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	s.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	return s
}

func (cs *h2conn) end() { cs.once.Do(func() { close(cs.done) }) }

// serve serves one HTTP/2 connection (a *tls.Conn that negotiated h2, or
// a clear-text one that starts with the preface) until it ends.
func (s *h2Server) serve(c net.Conn, t *tracked) {
	cs := &h2conn{id: s.p.nextConn.Add(1), scheme: "http", done: make(chan struct{})}
	cs.client, cs.server = addrs(t.Conn)
	if s.p.opts.TLS != nil {
		cs.scheme = "https"
	}
	s.conns.Store(c, cs)
	if !s.ln.hand(c) {
		s.conns.Delete(c)
		return
	}
	<-cs.done
}

// shutdown sends GOAWAY on every HTTP/2 connection, so streams under way
// finish and no new one starts; Run's shutdown bounds the wait.
func (s *h2Server) shutdown() {
	go s.srv.Shutdown(context.Background())
	s.transport.CloseIdleConnections()
}

// connListener hands connections the proxy accepted to net/http's server.
type connListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *connListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{} }

// ServeHTTP proxies one stream.
func (s *h2Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := s.p
	p.c.requests.Add(1)
	cs, _ := r.Context().Value(connKey{}).(*h2conn)
	if cs == nil {
		http.Error(w, "herd record: unknown connection", http.StatusInternalServerError)
		return
	}
	// Streams are numbered in the order their handlers start, which is
	// the order the client opened them in as far as the proxy can see:
	// x/net/http2 does not expose the stream id, and a client opening
	// streams in this order uses 1, 3, 5 ...
	cs.mu.Lock()
	seq := cs.seq
	cs.seq++
	start := time.Now()
	cs.mu.Unlock()
	e := &tape.Exchange{
		ConnID: cs.id, Seq: seq, Stream: 2*seq + 1, Client: cs.client, Server: cs.server,
		ReqStart: start.UnixNano(), Method: r.Method, Target: r.RequestURI, Proto: tape.HTTP2,
		ReqHeader: h2Fields([]tape.Field{{Name: ":authority", Value: r.Host}, {Name: ":scheme", Value: cs.scheme}}, r.Header),
		Flags:     tape.NoResponse,
	}
	rb := &bodyRec{p: p, max: p.opts.MaxBody}
	discard := func(reason interface{ Add(int64) int64 }) {
		reason.Add(1)
		rb.release()
	}
	if r.Method == "CONNECT" {
		http.Error(w, "herd record does not tunnel CONNECT over HTTP/2", http.StatusMethodNotAllowed)
		discard(&p.c.malformed)
		return
	}

	out, body := s.outgoing(r, rb, cs)
	resp, err := s.transport.RoundTrip(out)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			// The client reset the stream or went away.
		case strings.Contains(err.Error(), "timeout awaiting response headers"):
			p.c.upTimeouts.Add(1)
			http.Error(w, "herd record: the upstream did not answer in time", http.StatusGatewayTimeout)
		default:
			p.c.upErrors.Add(1)
			http.Error(w, "herd record: the upstream failed: "+err.Error(), http.StatusBadGateway)
		}
		if body != nil && !body.done {
			if r.Context().Err() != nil {
				discard(&p.c.reqIncomplete)
			} else {
				discard(&p.c.upFailed)
			}
			return
		}
		e.ReqEnd = max(body.end(), e.ReqStart)
		s.finish(e, rb)
		return
	}
	defer resp.Body.Close()
	e.RespStart = time.Now().UnixNano()
	removeHopByHop(resp.Header)
	for k, vv := range resp.Header {
		w.Header()[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	e.Flags &^= tape.NoResponse
	e.Status, e.RespProto = resp.StatusCode, tape.HTTP2
	e.RespHeader = h2Fields(nil, resp.Header)

	rc := http.NewResponseController(w)
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	var crc uint64
	var n int64
	var cut bool
	for {
		k, rerr := resp.Body.Read(*bp)
		if k > 0 {
			crc = crc64.Update(crc, crcTable, (*bp)[:k])
			n += int64(k)
			if _, werr := w.Write((*bp)[:k]); werr != nil {
				cut = true
				break
			}
			if rc.Flush() != nil {
				cut = true
				break
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			cut = true
			break
		}
	}
	e.RespEnd = time.Now().UnixNano()
	e.RespBodyLen, e.RespBodyHash = n, crc
	p.c.respBytes.Add(n)
	if !cut {
		for k, vv := range resp.Trailer {
			w.Header()[http.TrailerPrefix+k] = vv
		}
		e.RespTrailer = h2Fields(nil, resp.Trailer)
	}
	if body != nil {
		if !body.done {
			discard(&p.c.reqIncomplete)
			if cut {
				panic(http.ErrAbortHandler)
			}
			return
		}
		e.ReqEnd = body.end()
		e.ReqTrailer = h2Fields(nil, r.Trailer)
	} else {
		e.ReqEnd = e.ReqStart
	}
	if cut {
		e.Flags |= tape.RespIncomplete
	}
	s.finish(e, rb)
	if cut {
		// Reset the stream: the client must not take a cut body for a
		// whole one.
		panic(http.ErrAbortHandler)
	}
}

func (s *h2Server) finish(e *tape.Exchange, rb *bodyRec) {
	if rb.over {
		s.p.c.memory.Add(1)
		rb.release()
		return
	}
	rb.set(e)
	s.p.record(e, rb.held)
}

// outgoing builds the request to the upstream: the same method, target,
// headers (less those of one connection), body and trailers.
func (s *h2Server) outgoing(r *http.Request, rb *bodyRec, cs *h2conn) (*http.Request, *recBody) {
	u := *s.p.opts.Upstream
	u.Path, u.RawPath, u.RawQuery, u.Opaque = "", "", "", ""
	if ru, err := url.ParseRequestURI(r.RequestURI); err == nil {
		u.Path, u.RawPath, u.RawQuery = ru.Path, ru.RawPath, ru.RawQuery
	}
	var body *recBody
	out := &http.Request{
		Method: r.Method, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: r.Header.Clone(), Host: r.Host, ContentLength: r.ContentLength, Trailer: r.Trailer,
	}
	if r.Body != nil && r.Body != http.NoBody {
		body = &recBody{r: r.Body, rb: rb}
		out.Body = body
	}
	removeHopByHop(out.Header)
	if !s.p.opts.NoForwardedFor && cs.client.IsValid() {
		ip := cs.client.Addr().String()
		if prior := out.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}
	return out.WithContext(r.Context()), body
}

// recBody records a request body as the transport reads it.
type recBody struct {
	r    io.ReadCloser
	rb   *bodyRec
	done bool  // read to its end
	at   int64 // when it ended
}

func (b *recBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.rb.write(p[:n])
	}
	if errors.Is(err, io.EOF) && !b.done {
		b.done, b.at = true, time.Now().UnixNano()
	}
	return n, err
}

func (b *recBody) Close() error { return b.r.Close() }

func (b *recBody) end() int64 {
	if b == nil {
		return 0
	}
	return b.at
}

// h2Fields appends a header map to first as tape fields: lower-case names
// (as HTTP/2 sends them), sorted, since the map kept no order.
func h2Fields(first []tape.Field, h http.Header) []tape.Field {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	out := first
	for _, k := range names {
		lk := strings.ToLower(k)
		for _, v := range h[k] {
			out = append(out, tape.Field{Name: lk, Value: v})
		}
	}
	return out
}
