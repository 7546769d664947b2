package replay

import (
	"testing"
	"time"
)

func TestParseRetryPolicy(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		in   string
		want RetryPolicy
		ok   bool
	}{
		{"none", RetryPolicy{}, true},
		{"fixed:3/200ms", RetryPolicy{Attempts: 3, Fixed: true, Base: 200 * ms, Max: 200 * ms}, true},
		{"exp:3/100ms/1s", RetryPolicy{Attempts: 3, Base: 100 * ms, Max: time.Second}, true},
		{"exp:4/50ms/2s/jitter", RetryPolicy{Attempts: 4, Base: 50 * ms, Max: 2 * time.Second, Jitter: true}, true},
		{"exp:3/100ms/1s+retry-after", RetryPolicy{Attempts: 3, Base: 100 * ms, Max: time.Second, RetryAfter: true}, true},
		{"fixed:0/1s", RetryPolicy{}, false},
		{"fixed:3", RetryPolicy{}, false},
		{"exp:3/1s/100ms", RetryPolicy{}, false},
		{"exp:3/100ms/1s/wobble", RetryPolicy{}, false},
		{"linear:3/1s", RetryPolicy{}, false},
		{"none+retry-after", RetryPolicy{}, false},
		{"fixed:21/1s", RetryPolicy{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRetryPolicy(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		got.Text = ""
		if tt.ok && got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	ms := time.Millisecond
	exp, _ := ParseRetryPolicy("exp:4/100ms/500ms")
	fixed, _ := ParseRetryPolicy("fixed:2/300ms")
	honour, _ := ParseRetryPolicy("fixed:2/300ms+retry-after")
	tests := []struct {
		name       string
		p          RetryPolicy
		retry      int
		retryAfter time.Duration
		want       time.Duration
		ok         bool
	}{
		{"exp first", exp, 1, 0, 100 * ms, true},
		{"exp doubles", exp, 2, 0, 200 * ms, true},
		{"exp doubles again", exp, 3, 0, 400 * ms, true},
		{"exp capped", exp, 4, 0, 500 * ms, true},
		{"exp gives up", exp, 5, 0, 0, false},
		{"fixed", fixed, 2, 0, 300 * ms, true},
		{"fixed gives up", fixed, 3, 0, 0, false},
		{"Retry-After ignored unless asked", fixed, 1, 2 * time.Second, 300 * ms, true},
		{"Retry-After honoured", honour, 1, 2 * time.Second, 2 * time.Second, true},
		{"Retry-After never shortens", honour, 1, 100 * ms, 300 * ms, true},
	}
	for _, tt := range tests {
		got, ok := tt.p.Delay(tt.retry, 7, tt.retryAfter)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: %v %v, want %v %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	// Jitter: within [0, wait], reproducible for a seed, varied across seeds.
	j, _ := ParseRetryPolicy("exp:3/100ms/1s/jitter")
	seen := map[time.Duration]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		d, ok := j.Delay(2, seed, 0)
		if !ok || d < 0 || d > 200*ms {
			t.Fatalf("seed %d: %v %v", seed, d, ok)
		}
		if d2, _ := j.Delay(2, seed, 0); d2 != d {
			t.Fatalf("seed %d: %v then %v", seed, d, d2)
		}
		seen[d.Round(10*ms)] = true
	}
	if len(seen) < 10 {
		t.Errorf("jitter took only %d distinct values", len(seen))
	}
}

func TestRetryTrigger(t *testing.T) {
	p, _ := ParseRetryPolicy("fixed:1/1s")
	for _, tt := range []struct {
		class  string
		status int
		want   string
		ok     bool
	}{
		{ClassClientTimeout, 0, TriggerClientTimeout, true},
		{ClassReset, 0, TriggerConnection, true},
		{ClassConnectRefused, 0, TriggerConnection, true},
		{ClassHTTP5xx, 503, Trigger5xx, true},
		{"", 429, Trigger429, true},
		{"", 404, "", false},
		{"", 200, "", false},
	} {
		if got, ok := p.Trigger(tt.class, tt.status); got != tt.want || ok != tt.ok {
			t.Errorf("%s %d: %q %v, want %q %v", tt.class, tt.status, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := (RetryPolicy{}).Trigger(ClassReset, 0); ok {
		t.Error("no policy retried")
	}
}
