package replay

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// RetryPolicy is how the recorded clients are emulated when the target
// fails them: after a failure that triggers a retry, the same request is
// sent again, as a new attempt on a fresh connection, after a delay.
// The zero value is no retry: the tape's requests exactly as recorded.
type RetryPolicy struct {
	Text string
	// Attempts is the most retries after the first attempt.
	Attempts int
	// Fixed: every retry waits Base. Otherwise the wait doubles from
	// Base up to Max (exponential backoff).
	Fixed     bool
	Base, Max time.Duration
	// Jitter draws each wait uniformly from [0, wait] ("full jitter"),
	// seeded per request so that runs are reproducible.
	Jitter bool
	// RetryAfter honours a Retry-After header of a 429 or 503: the wait is
	// at least what the target asked for.
	RetryAfter bool
}

// Retry triggers: what made a client retry, as counted in the results.
const (
	TriggerClientTimeout = "client_timeout"
	TriggerConnection    = "connection_error"
	Trigger5xx           = "http_5xx"
	Trigger429           = "http_429"
)

// Error classes of client emulation.
const (
	// ClassGaveUp: every attempt of a request failed; the client gave up.
	ClassGaveUp = "gave_up"
	// ClassClientTimeout: the emulated client stopped waiting for a
	// response (its timeout, shorter than herd's own) and closed the
	// connection, as real clients do.
	ClassClientTimeout = "client_timeout"
)

// On reports whether the policy retries at all.
func (p RetryPolicy) On() bool { return p.Attempts > 0 }

// ParseRetryPolicy parses none, fixed:N/DELAY or exp:N/BASE/MAX[/jitter],
// each optionally followed by +retry-after.
func ParseRetryPolicy(s string) (RetryPolicy, error) {
	p := RetryPolicy{Text: s}
	bad := fmt.Errorf("retry policy %q: use none, fixed:N/DELAY (fixed:3/200ms) or exp:N/BASE/MAX[/jitter] (exp:3/100ms/2s/jitter), optionally +retry-after", s)
	rest := strings.TrimSpace(s)
	if r, ok := strings.CutSuffix(rest, "+retry-after"); ok {
		p.RetryAfter, rest = true, r
	}
	if rest == "none" || rest == "" {
		if p.RetryAfter {
			return RetryPolicy{}, bad
		}
		return RetryPolicy{Text: "none"}, nil
	}
	kind, args, ok := strings.Cut(rest, ":")
	if !ok {
		return RetryPolicy{}, bad
	}
	parts := strings.Split(args, "/")
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < 1 || n > 20 {
		return RetryPolicy{}, fmt.Errorf("%w (attempts: 1 to 20)", bad)
	}
	p.Attempts = n
	dur := func(s string) (time.Duration, bool) {
		d, err := time.ParseDuration(s)
		return d, err == nil && d >= 0 && d <= 10*time.Minute
	}
	switch kind {
	case "fixed":
		if len(parts) != 2 {
			return RetryPolicy{}, bad
		}
		d, ok := dur(parts[1])
		if !ok {
			return RetryPolicy{}, bad
		}
		p.Fixed, p.Base, p.Max = true, d, d
	case "exp":
		if len(parts) != 3 && len(parts) != 4 {
			return RetryPolicy{}, bad
		}
		b, ok1 := dur(parts[1])
		m, ok2 := dur(parts[2])
		if !ok1 || !ok2 || b <= 0 || m < b {
			return RetryPolicy{}, bad
		}
		p.Base, p.Max = b, m
		if len(parts) == 4 {
			if parts[3] != "jitter" {
				return RetryPolicy{}, bad
			}
			p.Jitter = true
		}
	default:
		return RetryPolicy{}, bad
	}
	return p, nil
}

// Delay is how long a client waits before retry number retry (1 for the
// first retry) of the request identified by seed, and false when it has
// no retry left and gives up. retryAfter is what the target asked for
// (0: nothing). A pure function: the same arguments give the same wait.
func (p RetryPolicy) Delay(retry int, seed uint64, retryAfter time.Duration) (time.Duration, bool) {
	if retry < 1 || retry > p.Attempts {
		return 0, false
	}
	d := p.Base
	if !p.Fixed {
		for i := 1; i < retry && d < p.Max; i++ {
			d *= 2
		}
		d = min(d, p.Max)
	}
	if p.Jitter {
		d = time.Duration(unit(mix(seed, uint64(retry), 0x6a6974746572)) * float64(d))
	}
	if p.RetryAfter && retryAfter > d {
		d = retryAfter
	}
	return d, true
}

// Trigger says whether a failed attempt makes the client retry, and why:
// its error class, or its status for a response.
func (p RetryPolicy) Trigger(class string, status int) (string, bool) {
	if !p.On() {
		return "", false
	}
	switch class {
	case ClassClientTimeout, ClassTimeout:
		return TriggerClientTimeout, true
	case ClassConnectRefused, ClassConnectTimeout, ClassConnectError, ClassReset, ClassClosed, ClassIO, ClassMalformed:
		return TriggerConnection, true
	}
	switch {
	case status == 429:
		return Trigger429, true
	case status >= 500:
		return Trigger5xx, true
	}
	return "", false
}

// parseRetryAfter reads a Retry-After value in seconds (the HTTP-date form
// is not honoured: a replay cannot trust the target's clock), bounded to a
// minute.
// retryBudget is a client-side retry budget, shared by every emulated
// client of a run: retries stay under a fraction of the first attempts,
// plus a floor of 10 so that a quiet start can retry at all. With a
// fraction of 0 there is no budget.
type retryBudget struct {
	frac           float64
	first, retries atomic.Int64
}

// firstAttempt counts a request's first attempt.
func (b *retryBudget) firstAttempt() {
	if b.frac > 0 {
		b.first.Add(1)
	}
}

// allow reports whether a retry may be sent, and counts it when it may.
func (b *retryBudget) allow() bool {
	if b.frac <= 0 {
		return true
	}
	if float64(b.retries.Load()) >= b.frac*float64(b.first.Load())+10 {
		return false
	}
	b.retries.Add(1)
	return true
}

// next decides what the emulated client does once attempt n (from 0) of
// a request ended with res: retry it (res is marked non-final, with what
// triggered the retry) after the returned wait, or not (res is marked given
// up when the policy or the budget had no retry left for a failure that
// would have been retried).
func (p RetryPolicy) next(res *result, n int, seed uint64, budget *retryBudget) (time.Duration, bool) {
	trigger, retry := p.Trigger(res.class, int(res.status))
	var wait time.Duration
	if retry {
		wait, retry = p.Delay(n+1, seed, res.retryAfter)
		res.gaveUp = !retry
	}
	if retry && !budget.allow() {
		retry, res.gaveUp = false, true
	}
	if retry {
		res.nonFinal, res.trigger = true, trigger
	}
	return wait, retry
}

func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, time.Minute)
}
