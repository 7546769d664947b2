package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"golang.org/x/net/http2"
)

// h2Engine is the engine's HTTP/2 side: which replayed connections go
// over HTTP/2, the client that opens them, and what they add to the
// step's counts.
type h2Engine struct {
	cl *h2Client
	// all: every connection (--protocol h2 or h2c, or auto with a TLS
	// target that chose h2); recorded: those recorded as HTTP/2 (auto,
	// cleartext target).
	all, recorded bool
	resent        atomic.Int64
	slotWaits     atomic.Int64
}

// newH2Engine decides what goes over HTTP/2; nil when nothing does. With
// --protocol auto on a TLS target, one connection asks the target by ALPN
// first (its session then resumes on the run's first connection).
func newH2Engine(ctx context.Context, o Options, cl *client) (*h2Engine, error) {
	if o.Protocol == ProtoH1 {
		return nil, nil
	}
	h := &h2Engine{cl: &h2Client{addr: cl.addr}}
	h.cl.dialer.KeepAlive = 30 * time.Second
	if cl.tls == nil {
		h.all = o.Protocol == ProtoH2 || o.Protocol == ProtoH2C
		h.recorded = true
		return h, nil
	}
	if o.Protocol == ProtoH2C {
		return nil, errors.New("protocol h2c is HTTP/2 without TLS: the target is https (use h2)")
	}
	h.cl.tls = cl.tls.Clone()
	h.cl.tls.NextProtos = []string{http2.NextProtoTLS}
	switch o.Protocol {
	case ProtoH2:
		h.all = true
	case ProtoAuto:
		h.all = probeALPN(ctx, cl, o.Timeout) == http2.NextProtoTLS
	}
	if !h.all {
		return nil, nil
	}
	return h, nil
}

// probeALPN asks the target which protocol it prefers; "" when the
// handshake fails (the run's own connections then report why).
func probeALPN(ctx context.Context, cl *client, timeout time.Duration) string {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := cl.dialer.DialContext(dctx, "tcp", cl.addr)
	if err != nil {
		return ""
	}
	defer nc.Close()
	cfg := cl.tls.Clone()
	cfg.NextProtos = []string{http2.NextProtoTLS, "http/1.1"}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		return ""
	}
	return tc.ConnectionState().NegotiatedProtocol
}

// usesFlags reports whether a recorded connection with flags f (its
// plan's connRecordedH2, connAllH2) is replayed over HTTP/2.
func (h *h2Engine) usesFlags(f uint8) bool {
	return h != nil && (h.all || h.recorded && f&connRecordedH2 != 0) && f&connAllH2 != 0
}

// any reports whether any connection of plan p goes over HTTP/2.
func (h *h2Engine) any(p *Plan) bool {
	if h == nil {
		return false
	}
	x := p.index()
	for i := int32(0); int(i) < x.len(); i++ {
		if h.usesFlags(x.flag(i)) {
			return true
		}
	}
	return false
}

// runH2VConn replays one connection over HTTP/2, its requests taken from
// its connection pass as the driver reads them.
func (e *engine) runH2VConn(vc VConn, cp *connPass, consumer int, index int32) {
	defer func() {
		cp.mu.Lock()
		cp.detach(consumer)
		cp.mu.Unlock()
	}()
	ch := make(chan struct{}, 1)
	s := &h2Session{cl: e.h2.cl, env: h2Env{
		timeout: e.o.Timeout, pacing: e.o.Pacing, stop: e.stop, dial: e.dialer,
		sleepUntil: func(due int64) error { return e.disp.sleepUntil(e.stop, due, ch) },
		acquireInflight: func(deadline int64) bool {
			if !e.acquire(e.inflight, deadline) {
				return false
			}
			e.inFlight.Add(1)
			return true
		},
		releaseInflight: func() {
			e.inFlight.Add(-1)
			<-e.inflight
		},
		acquireConn: func(deadline int64) bool { return e.acquire(e.connSlots, deadline) },
		releaseConn: func() { <-e.connSlots },
		report:      e.reportH2,
		// Every attempt asks the cap, retries included, as on HTTP/1.x.
		admit: func() bool { return e.cap == nil || e.cap.allow(nanotime()) },
	}}
	if e.o.emulating() {
		s.env.emu = &h2Emulation{
			retry: e.o.Retry, clientTimeout: e.o.ClientTimeout, seed: e.o.Schedule.Seed, budget: e.budget,
			// Each request waiting to retry waits on a channel of its own.
			sleepUntil: func(due int64) error { return e.disp.sleepUntil(e.stop, due, make(chan struct{}, 1)) },
		}
	}
	s.runFrom(func() *h2Job {
		r, i, ok := e.next(cp, consumer)
		if !ok {
			return nil
		}
		rel := e.s.Due(r.Offset, vc.Shift)
		if rel >= e.s.Duration {
			return nil
		}
		return &h2Job{r: r, due: e.t0 + int64(rel), id: reqID{vconn: index, req: i}, finished: make(chan struct{})}
	})
}

// reportH2 hands a stream's result to the aggregator.
func (e *engine) reportH2(o h2Outcome) {
	if o.retries > 0 {
		e.h2.resent.Add(int64(o.retries))
	}
	if o.slotWait > 0 {
		e.h2.slotWaits.Add(1)
	}
	if o.res.notSent == "" && !o.res.outcomeOnly {
		e.sends.Add(1)
		// A stream that was opened had its request written; one that
		// failed before (a dial, a TLS handshake) did not.
		o.res.written = o.sentStream
		o.res.retried = o.retries > 0
		if o.res.class != "" {
			o.res.fail = &failure{err: o.err, written: o.sentStream, got: o.got, bytes: o.res.bytes, status: int(o.res.status)}
		}
	}
	o.res.connect = o.connect
	e.report(o.res)
}

// notes adds the HTTP/2 counts to a step.
func (h *h2Engine) notes(st *results.Step) {
	if h == nil {
		return
	}
	st.HTTP2 = &results.HTTP2{Resent: h.resent.Load(), SlotWaits: h.slotWaits.Load()}
	if n := st.HTTP2.Resent; n > 0 {
		st.Generator.Notes = append(st.Generator.Notes, fmt.Sprintf("%d HTTP/2 streams refused unprocessed by a GOAWAY were sent again on a new connection", n))
	}
	if n := st.HTTP2.SlotWaits; n > 0 {
		st.Generator.Notes = append(st.Generator.Notes, fmt.Sprintf("%d requests waited for an HTTP/2 stream slot (the target's SETTINGS_MAX_CONCURRENT_STREAMS); the wait is in their lag and latency", n))
	}
}
