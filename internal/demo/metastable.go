package demo

import (
	"fmt"
	"time"

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
// window's rate by clients that retry with policy and give up after
// timeout, stays broken once it broke: its analytic condition, written
// down in docs/demo.md. capacityScale is its capacity in multiples of the
// window's rate; the break was breakScale for breakFor.
//
// As it was, the service has no timeout and runs every request it
// accepted, even one whose client gave up. Two things must hold for it to
// stay broken:
//
//   - the trigger: the break queued more work than the clients wait for.
//     At breakScale the queue grows by breakScale - capacityScale of the
//     window's rate, so after breakFor a request waits
//     (breakScale - capacityScale) × breakFor / capacityScale; once that
//     passes the timeout, every attempt times out and is retried;
//   - the sustaining effect: then each request costs 1+N attempts of work,
//     and the queue never drains while k × (1+N) > capacityScale
//     (offered × amplification > capacity).
//
// With the fix, the service refuses a request it cannot start in time,
// before doing its work: a failed attempt costs nothing and the work it
// admits never exceeds its capacity, so it cannot stay broken.
func Metastable(capacityScale, k float64, policy replay.RetryPolicy, timeouts bool, breakScale float64, breakFor, timeout time.Duration) Prediction {
	p := Prediction{Amplification: 1}
	if timeouts || !policy.On() {
		return p
	}
	p.Amplification = float64(1 + policy.Attempts)
	p.Wait = time.Duration(max(breakScale-capacityScale, 0) * float64(breakFor) / capacityScale)
	p.Triggered = p.Wait > timeout
	p.Sustained = k*p.Amplification > capacityScale
	p.Metastable = p.Triggered && p.Sustained
	return p
}

// Prediction is the analytic outcome of a break of the demo service.
type Prediction struct {
	Wait          time.Duration // queue wait the break left behind
	Triggered     bool          // the wait passed the clients' timeout
	Amplification float64       // attempts per request once every attempt times out
	Sustained     bool          // offered × amplification > capacity
	Metastable    bool
}

// MetastableCheck words the analytic prediction next to what the ramp's
// recovery check measured.
func MetastableCheck(capacityScale float64, fixed bool, policy replay.RetryPolicy, timeout time.Duration, f *results.File) string {
	r := f.Recovery
	k, breakScale := 1.0, 0.0
	if r != nil {
		k = r.Scale
	}
	var breakFor time.Duration
	if bp := f.BreakingPoint; bp != nil {
		breakScale = bp.Scale
		breakFor = time.Duration(f.Params.StepS * float64(time.Second))
	}
	pr := Metastable(capacityScale, k, policy, fixed, breakScale, breakFor, timeout)
	predicted := fmt.Sprintf("analytic: the service serves %.2fx the window's rate; ", capacityScale)
	switch {
	case fixed:
		predicted += "refused attempts cost no work, so it cannot stay broken: recovery predicted"
	case !pr.Triggered:
		predicted += fmt.Sprintf("the break at %gx for %v left a queue of %v, under the clients' %v timeout: recovery predicted",
			breakScale, breakFor, pr.Wait.Round(10*time.Millisecond), timeout)
	default:
		predicted += fmt.Sprintf("the break at %gx for %v left a queue of %v, past the clients' %v timeout, so every attempt times out: each request costs %g attempts, %gx at %gx, ",
			breakScale, breakFor, pr.Wait.Round(10*time.Millisecond), timeout, pr.Amplification, k*pr.Amplification, k)
		if pr.Sustained {
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
	if r != nil && r.Note == "" && r.Recovered == !pr.Metastable {
		agree = "; they agree"
	} else if r != nil && r.Note == "" {
		agree = "; they DISAGREE"
	}
	return predicted + "; " + measured + agree
}
