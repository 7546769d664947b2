package replay

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPollerWakesAfterEarlyTimer: a timer that fires early (the offset
// between the replay clock and CLOCK_MONOTONIC misread by a preemption)
// wakes the loop before the time it waits for; the loop then waits again
// for that same time, and must be woken again. Before the fix the second
// wait did not arm the spent edge-triggered timer, and parked until some
// socket woke it: a step hung for minutes in CI.
func TestPollerWakesAfterEarlyTimer(t *testing.T) {
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	p.offset -= int64(2 * time.Millisecond) // every expiry 2 ms early
	events := make([]unix.EpollEvent, 8)
	until := nanotime() + int64(5*time.Millisecond)
	done := make(chan int, 1)
	go func() {
		// As the event loop does: wait again for the same time until it
		// has come. An early timer makes this spin for the error, no more.
		waits := 0
		for nanotime() < until && waits < 1e6 {
			p.wait(events, until)
			waits++
		}
		done <- waits
	}()
	select {
	case waits := <-done:
		if nanotime() < until {
			t.Fatalf("gave up after %d waits before the time came", waits)
		}
		t.Logf("%d waits", waits)
	case <-time.After(2 * time.Second):
		t.Fatal("not woken 2 s after the time waited for")
	}
}
