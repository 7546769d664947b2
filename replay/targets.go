package replay

import (
	"fmt"
	"net/url"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herd-replay/herd/internal/results"
)

// targetClients makes a client per target of the plan (Plan.Targets), by
// Req.Target; cl, the client of Options.Target, serves a plan of one
// target and one made by hand, which names none. Only these targets are
// ever dialed.
func targetClients(p *Plan, o Options, cl *client) ([]*client, error) {
	if len(p.Targets) == 0 || len(p.Targets) == 1 && p.Targets[0].URL.String() == o.Target.String() {
		return []*client{cl}, nil
	}
	cls := make([]*client, len(p.Targets))
	for i, t := range p.Targets {
		if t.URL == nil {
			return nil, fmt.Errorf("target %d of the plan has no URL", i)
		}
		to := o
		to.Target = t.URL
		c, err := newClient(to)
		if err != nil {
			return nil, err
		}
		cls[i] = c
	}
	return cls, nil
}

// TargetURLs lists the plan's targets' URLs, by Req.Target.
func (p *Plan) TargetURLs() []*url.URL {
	us := make([]*url.URL, len(p.Targets))
	for i, t := range p.Targets {
		us[i] = t.URL
	}
	return us
}

// targetAgg counts one target's requests, for a run to several targets:
// the aggregator's share of targets.go, which owns it as it owns its
// other counters.
type targetAgg struct {
	sent, completed, errors, mismatches, notSent int64
	hist                                         *hdr.Histogram
}

// newTargetAggs returns the per-target counters of a run, or nil for a
// run to one target.
func newTargetAggs(p *Plan) []targetAgg {
	if len(p.Targets) < 2 {
		return nil
	}
	return make([]targetAgg, len(p.Targets))
}

// countTarget counts a request of the measured period by its target: not
// sent, or sent with its outcome (class "" for a usable response).
func countTarget(ts []targetAgg, r *result, class string, latency int64) {
	if ts == nil || int(r.target) >= len(ts) {
		return
	}
	t := &ts[r.target]
	switch {
	case r.notSent != "":
		t.notSent++
		return
	case class != "":
		t.errors++
	default:
		t.completed++
		if r.mismatch {
			t.mismatches++
		}
	}
	t.sent++
	if r.status != 0 {
		if t.hist == nil {
			t.hist = results.NewHist()
		}
		results.Record(t.hist, latency)
	}
}

// targetResults renders the per-target counters of a step.
func targetResults(p *Plan, ts []targetAgg) []results.TargetResult {
	if ts == nil {
		return nil
	}
	out := make([]results.TargetResult, len(ts))
	for i := range ts {
		t := &ts[i]
		h := t.hist
		if h == nil {
			h = results.NewHist()
		}
		out[i] = results.TargetResult{Name: p.Targets[i].Name, Target: p.Targets[i].URL.String(), Sent: t.sent,
			Completed: t.completed, Errors: t.errors, Mismatches: t.mismatches, NotSent: t.notSent, Histogram: results.Encode(h)}
	}
	return out
}

// client is the client of target i: cl when the run has one target (or
// the engine was made without the plan's).
func (e *engine) client(i int32) *client {
	if int(i) < len(e.cls) {
		return e.cls[i]
	}
	return e.cl
}
