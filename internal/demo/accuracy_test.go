package demo

import (
	"context"
	"testing"
	"time"
)

// TestCapacityAccuracy ramps the demo service in three settings of slots,
// query time and route mix, and checks that the capacity herd measures is
// within 10% of the service's analytic capacity, and that the first
// failing step is not below 0.9 of it. bench/capacity prints the exact
// figures.
func TestCapacityAccuracy(t *testing.T) {
	for _, s := range AccuracySettings() {
		// This test is about measuring the target; a loaded test machine
		// must not end the ramp by making herd the limit.
		s.LagBound = time.Second
		m, err := Accuracy(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: truth %.3fx, measured %.3fx (%+.1f%%), first failure %.2fx", s.Name, m.Truth, m.Capacity, m.ErrPercent, m.FirstFail)
		if m.ErrPercent < -10 || m.ErrPercent > 10 {
			t.Errorf("%s: capacity %.3fx is %+.1f%% off the analytic %.3fx\n%s", s.Name, m.Capacity, m.ErrPercent, m.Truth, m.File.Verdict)
		}
		if m.FirstFail == 0 || m.FirstFail < 0.9*m.Truth {
			t.Errorf("%s: first failing step %.2fx, analytic capacity %.3fx\n%s", s.Name, m.FirstFail, m.Truth, m.File.Verdict)
		}
	}
}

// TestServiceCapacity checks the analytic formula against the service's
// own bookkeeping: a mix of one route at a known rate.
func TestServiceCapacity(t *testing.T) {
	svc := NewService(ServiceConfig{Slots: 4, Query: 2 * time.Millisecond, MaxWait: time.Second})
	// /api/users/:id runs 3 queries: 4 slots / (3 × 2 ms) = 666.7 req/s.
	if got := svc.Capacity(map[string]int64{"GET /api/users/:id": 10}); got < 666 || got > 667 {
		t.Fatalf("capacity %.1f, want 666.7", got)
	}
	// Half /login (30 queries) and half /api/session (1): mean 15.5.
	if got := svc.Capacity(map[string]int64{"POST /login": 5, "GET /api/session": 5}); got < 129 || got > 129.1 {
		t.Fatalf("capacity %.2f, want 129.03", got)
	}
	fixed := NewService(ServiceConfig{Slots: 4, Query: 2 * time.Millisecond, Fixed: true})
	if a, b := fixed.Capacity(map[string]int64{"POST /login": 1}), svc.Capacity(map[string]int64{"POST /login": 1}); a <= 5*b {
		t.Fatalf("the fix should cut /login's cost tenfold: %.1f vs %.1f", a, b)
	}
}

// TestAdmission: slots are first come, first served, and a request that
// would wait longer than MaxWait is refused at once, whatever its route.
func TestAdmission(t *testing.T) {
	svc := NewService(ServiceConfig{Slots: 1, Query: 10 * time.Millisecond, MaxWait: 60 * time.Millisecond})
	work := 30 * time.Millisecond
	for i := 0; i < 3; i++ {
		start, ok := svc.admit(0, work)
		if !ok || start != int64(i)*int64(work) {
			t.Fatalf("request %d: admitted %v at %v, want %v", i, ok, time.Duration(start), time.Duration(int64(i)*int64(work)))
		}
	}
	// The next would wait 90 ms, cheap or not.
	for _, w := range []time.Duration{work, time.Millisecond} {
		if _, ok := svc.admit(0, w); ok {
			t.Fatalf("a request of %v waiting 90 ms was admitted", w)
		}
	}
	// Later, the wait is shorter and it fits.
	if start, ok := svc.admit(int64(40*time.Millisecond), work); !ok || start != int64(90*time.Millisecond) {
		t.Fatalf("admitted %v at %v, want 90ms", ok, time.Duration(start))
	}
}
