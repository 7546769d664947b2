package replay

import (
	"context"
	"fmt"
	"net/url"
)

// Engine selects how a run sends its requests. Both engines send the same
// requests at the same times and count them by the same rules (outcome.go,
// the aggregator); they differ in cost.
type Engine int

const (
	// EngineAuto runs the event loops where they apply (Linux, a plain
	// http target) and the goroutine engine elsewhere.
	EngineAuto Engine = iota
	// EngineLoop runs a few event loops (one per core herd may use), each
	// owning its connections: no goroutine per connection, non-blocking
	// sockets on epoll. Linux only, plain HTTP/1.x only.
	EngineLoop
	// EngineGoroutine runs a goroutine per replayed connection on Go's
	// network poller: every platform, TLS included.
	EngineGoroutine
)

func (k Engine) String() string {
	switch k {
	case EngineLoop:
		return "loop"
	case EngineGoroutine:
		return "goroutine"
	}
	return "auto"
}

// ParseEngine parses auto, loop or goroutine.
func ParseEngine(s string) (Engine, error) {
	switch s {
	case "auto", "":
		return EngineAuto, nil
	case "loop":
		return EngineLoop, nil
	case "goroutine":
		return EngineGoroutine, nil
	}
	return 0, fmt.Errorf("engine %q: use auto, loop or goroutine", s)
}

// loopApplies says whether the event loops can replay plan p against
// target with protocol, and if not why: they speak plain HTTP/1.x, on
// Linux. A nil plan is not looked at.
func loopApplies(target *url.URL, protocol Protocol, p *Plan) (bool, string) {
	switch {
	case !loopSupported:
		return false, "the event loops run on Linux only"
	case target == nil || target.Scheme != "http":
		return false, "the event loops speak plain HTTP/1.x; TLS targets run on the goroutine engine"
	case protocol == ProtoH2 || protocol == ProtoH2C:
		return false, "the event loops speak HTTP/1.x; HTTP/2 runs on the goroutine engine"
	case protocol == ProtoAuto && p != nil && p.recordedH2():
		return false, "the window has connections recorded as HTTP/2, which run on the goroutine engine"
	case p != nil && len(p.Targets) > 1:
		return false, "a plan of several targets (a target map) runs on the goroutine engine"
	}
	return true, ""
}

// recordedH2 reports whether any connection of the plan was recorded as
// HTTP/2.
func (p *Plan) recordedH2() bool {
	x := p.index()
	for i := int32(0); int(i) < x.len(); i++ {
		if x.flag(i)&connRecordedH2 != 0 {
			return true
		}
	}
	return false
}

// Resolve says which engine replays plan p against target with protocol:
// loop or goroutine, never auto.
func (k Engine) Resolve(target *url.URL, protocol Protocol, p *Plan) Engine {
	if k == EngineGoroutine {
		return k
	}
	if ok, _ := loopApplies(target, protocol, p); ok {
		return EngineLoop
	}
	return EngineGoroutine
}

// engine makes the run's engine: the event loops where they apply and
// were not declined, the goroutine engine otherwise. cls are the clients
// of the plan's targets (targets.go).
func (r *run) engine(cl *client, cls []*client) (stepEngine, error) {
	// Dials outlive a stop: the requests in flight finish.
	dialer := context.WithoutCancel(r.stop)
	ok, why := loopApplies(r.o.Target, r.o.Protocol, r.p)
	switch {
	case !ok:
	case r.live != nil:
		// A live step takes its connections as they are captured, a
		// goroutine each (live.go).
		ok, why = false, "a live replay runs on the goroutine engine"
	case len(cls) > 1:
		ok, why = false, "a plan of several targets (a target map) runs on the goroutine engine"
	case r.h2.any(r.p):
		ok, why = false, "connections of the window go over HTTP/2, which runs on the goroutine engine"
	}
	switch {
	case r.o.Engine == EngineLoop && !ok:
		return nil, &OptionError{Option: "engine", Err: fmt.Errorf("engine loop: %s", why)}
	case r.o.Engine != EngineGoroutine && ok:
		return newLoopEngine(r, cl)
	}
	return newEngine(r, cl, cls, dialer), nil
}
