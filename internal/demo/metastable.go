package demo

import (
	"fmt"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
)

// The demo's clients in the retry story (herd demo --retries).
const (
	// ClientsAsTheyWere gave up after their timeout and retried at once,
	// three times.
	ClientsAsTheyWere = "fixed:3/10ms"
	// ClientsFixed back off exponentially with full jitter (and run under
	// a retry budget).
	ClientsFixed = "exp:3/100ms/2s/jitter"
)

// Metastable says whether the demo service, replayed at k times the
// window's rate by clients that retry with policy, stays broken once it
// broke: its analytic condition, documented in docs/demo.md.
//
// As it was, the service has no timeout and runs every request it
// accepted, even one whose client gave up. Once its queue holds more than
// the clients' timeout, every attempt times out and is retried until the
// client gives up: each request costs 1+N attempts of work. The queue then
// grows, and never drains, while k × (1+N) exceeds the capacity in
// multiples of the window's rate: offered × amplification > capacity.
// With the fix, the service refuses a request it cannot start in time
// (before doing its work), so a failed attempt costs nothing and the work
// it admits never exceeds its capacity: it cannot be metastable.
func Metastable(capacityScale, k float64, policy replay.RetryPolicy, timeouts bool) (bool, float64) {
	if timeouts || !policy.On() {
		return false, 1
	}
	amp := float64(1 + policy.Attempts)
	return k*amp > capacityScale, amp
}

// MetastableCheck words the analytic prediction next to what the ramp's
// recovery check measured.
func MetastableCheck(capacityScale float64, fixed bool, policy replay.RetryPolicy, f *results.File) string {
	r := f.Recovery
	k := 1.0
	if r != nil {
		k = r.Scale
	}
	meta, amp := Metastable(capacityScale, k, policy, fixed)
	predicted := fmt.Sprintf("analytic: the service serves %.2fx the window's rate; ", capacityScale)
	if fixed {
		predicted += "refused attempts cost no work, so it cannot stay broken: recovery predicted"
	} else {
		predicted += fmt.Sprintf("once every attempt times out, each request costs %g attempts, %gx at %gx, ", amp, k*amp, k)
		if meta {
			predicted += fmt.Sprintf("above %.2fx: metastable (no recovery) predicted", capacityScale)
		} else {
			predicted += fmt.Sprintf("below %.2fx: recovery predicted", capacityScale)
		}
	}
	measured := "measured: no recovery check ran (the service did not break)"
	switch {
	case r == nil:
	case r.Recovered:
		measured = fmt.Sprintf("measured: recovered in %gs (amplification %.2fx)", *r.TimeToRecoverS, r.Amplification)
	default:
		measured = fmt.Sprintf("measured: did NOT recover in %gs (amplification %.2fx)", r.DurationS, r.Amplification)
	}
	agree := ""
	if r != nil && r.Note == "" && r.Recovered == !meta {
		agree = "; they agree"
	} else if r != nil && r.Note == "" {
		agree = "; they DISAGREE"
	}
	return predicted + "; " + measured + agree
}
