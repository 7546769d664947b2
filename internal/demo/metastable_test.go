package demo

import (
	"testing"
	"time"

	"github.com/herd-replay/herd/replay"
)

func TestMetastableCondition(t *testing.T) {
	asItWas, _ := replay.ParseRetryPolicy(ClientsAsTheyWere)
	fixed, _ := replay.ParseRetryPolicy(ClientsFixed)
	tests := []struct {
		name       string
		capacity   float64
		policy     replay.RetryPolicy
		timeouts   bool
		breakScale float64
		breakFor   time.Duration
		want       bool
		wait       time.Duration
	}{
		{"the demo: a 10 s break at 4x queues 1.76 s, past the 1 s timeout; 4 attempts at 1x exceed 3.4x", 3.4, asItWas, false, 4, 10 * time.Second, true, 1764705882},
		{"a 5 s break queues 0.88 s: no trigger", 3.4, asItWas, false, 4, 5 * time.Second, false, 882352941},
		{"a service of 4.5x absorbs 4 attempts per request at 1x", 4.5, asItWas, false, 6, 10 * time.Second, false, 3333333333},
		{"the fix: refusals cost no work", 3.4, fixed, true, 4, 10 * time.Second, false, 0},
		{"no retries: nothing sustains it", 3.4, replay.RetryPolicy{}, false, 4, 10 * time.Second, false, 0},
	}
	for _, tt := range tests {
		p := Metastable(tt.capacity, 1, tt.policy, tt.timeouts, tt.breakScale, tt.breakFor, time.Second)
		if p.Metastable != tt.want || p.Wait.Round(time.Millisecond) != tt.wait.Round(time.Millisecond) {
			t.Errorf("%s: %+v, want metastable %v and a wait of %v", tt.name, p, tt.want, tt.wait)
		}
	}
}
