package replay

import (
	"fmt"
	"math"
	"sync/atomic"
)

// rateCap is the hard cap of Options.MaxRate on the requests sent per
// second, on top of the schedule: an engine asks it just before it sends
// (every attempt, retries included, since each reaches the target), and a
// request it refuses is not sent (not_sent "max_rate"). It is the generic
// cell rate algorithm, a token bucket kept as one time: the bucket refills
// at the rate and holds at most capBurst requests, so over any span of L
// seconds at most rate×L + burst requests pass. One atomic word, so any
// number of goroutines or event loops share it without a lock.
type rateCap struct {
	interval int64        // ns per request at the rate
	tau      int64        // ns of credit the burst allows
	tat      atomic.Int64 // the bucket's theoretical arrival time, replay clock
}

// capBurst is how many requests the cap lets through at once: a tenth of a
// second's worth, and at least ten (or a second's worth, when that is
// fewer), so that the small bursts of recorded traffic (a page and its
// assets) pass under a cap their rate respects.
func capBurst(rate float64) int64 {
	return max(int64(math.Ceil(rate/10)), min(int64(math.Ceil(rate)), 10), 1)
}

// newRateCap returns the cap of rate requests per second, or nil for no
// cap (rate 0).
func newRateCap(rate float64) *rateCap {
	if rate <= 0 {
		return nil
	}
	interval := int64(math.Max(1, 1e9/rate))
	return &rateCap{interval: interval, tau: (capBurst(rate) - 1) * interval}
}

// allow takes a request's place under the cap at now (replay clock), or
// refuses it.
func (c *rateCap) allow(now int64) bool {
	for {
		tat := c.tat.Load()
		next, ok := gcra(tat, now, c.interval, c.tau)
		if !ok {
			return false
		}
		if c.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// gcra decides one request at now given the theoretical arrival time tat:
// whether it conforms (it is not more than tau ahead of the rate), and the
// next tat if it is sent. A pure function, so the cap's arithmetic is
// tested with tables.
func gcra(tat, now, interval, tau int64) (int64, bool) {
	tat = max(tat, now)
	if tat-now > tau {
		return tat, false
	}
	return tat + interval, true
}

// fitRate keeps a ramp under the rate cap: its last multiple becomes the
// highest step whose mean rate the cap allows, and a ramp whose first step
// is already above the cap is refused. A step above the cap would not be
// sent as planned, and a target judged on what was left would be judged
// on a load the step did not offer.
func (o *RampOptions) fitRate(p *Plan) error {
	if o.MaxRate <= 0 {
		return nil
	}
	rate := p.Rate()
	if rate*o.From > o.MaxRate {
		return &OptionError{Option: "max_rate", Err: fmt.Errorf("at %gx, the first step, the plan offers %.1f req/s on average, above the cap of %g req/s",
			o.From, rate*o.From, o.MaxRate), Hint: "raise the rate cap, or start the ramp lower"}
	}
	top := o.From
	for _, k := range o.Scales() {
		if rate*k <= o.MaxRate {
			top = k
		}
	}
	o.To = min(o.To, top)
	return nil
}
