package replay

import (
	"container/heap"
	"context"
	"runtime"
	"sync"
	"time"
)

// The replay clock is monotonic nanoseconds since clockEpoch. Go's
// monotonic clock and the one the Linux dispatcher arms timers on are the
// same (CLOCK_MONOTONIC), so a due time converts to a kernel deadline
// exactly.
var clockEpoch = time.Now()

func nanotime() int64 { return int64(time.Since(clockEpoch)) }

// dispatcher wakes goroutines at due times. Go's timers wake late by up to
// a millisecond or more (the runtime polls with millisecond timeouts), which
// alone would put every request half a millisecond behind schedule; on
// Linux the dispatcher instead arms one timerfd, which the runtime's poller
// wakes on with microsecond precision, for the earliest due time of a heap
// of waiters.
type dispatcher struct {
	mu       sync.Mutex
	q        waitHeap
	armed    int64 // time the timer is armed for; 0 when disarmed
	sleeping bool  // the dispatcher waits on the timer, not spinning
	timer    precisionTimer
	done     chan struct{}
}

// spinWindow: a due time this close is waited for by yielding, not by the
// timer. Under load the next due time is usually this close, and each
// timer re-arm is a syscall that reprograms a hardware timer (costly, in a
// virtual machine especially): measured at 15% of herd's CPU at 20k
// requests a second before this.
const spinWindow = int64(50 * time.Microsecond)

type waiter struct {
	due   int64
	ch    chan struct{}
	index int // in the heap; -1 once popped
}

// waitHeap keeps each waiter's index, so that a cancelled one is removed
// in O(log n): an emergency stop cancels every sleeping connection at once.
type waitHeap []*waiter

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*h = old[:len(old)-1]
	return w
}

// precisionTimer fires once at an absolute time of the replay clock, and
// can be re-armed from any goroutine.
type precisionTimer interface {
	arm(due int64)
	wait() bool // blocks until the timer fires; false once closed
	close()
}

func newDispatcher() *dispatcher { return newDispatcherWith(newPrecisionTimer()) }

func newDispatcherWith(t precisionTimer) *dispatcher {
	d := &dispatcher{timer: t, done: make(chan struct{})}
	go d.run()
	return d
}

// sleepUntil blocks until due (replay clock) or until ctx is done. ch is
// the caller's own channel with a buffer of one, reused across calls.
func (d *dispatcher) sleepUntil(ctx context.Context, due int64, ch chan struct{}) error {
	if due <= nanotime() {
		return ctx.Err()
	}
	w := &waiter{due: due, ch: ch}
	d.mu.Lock()
	heap.Push(&d.q, w)
	// A spinning dispatcher sees the new waiter on its next turn; a
	// sleeping one must wake in time for it.
	if wake := due - spinWindow; d.sleeping && (d.armed == 0 || wake < d.armed) {
		d.armed = max(wake, 1)
		d.timer.arm(d.armed)
	}
	d.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		d.remove(w)
		return ctx.Err()
	}
}

// remove takes a cancelled waiter out of the heap, and drains its channel
// if the dispatcher signalled it meanwhile, so the channel can be reused.
func (d *dispatcher) remove(w *waiter) {
	d.mu.Lock()
	if w.index >= 0 {
		heap.Remove(&d.q, w.index)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	select {
	case <-w.ch:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		now := nanotime()
		d.mu.Lock()
		for len(d.q) > 0 && d.q[0].due <= now {
			w := heap.Pop(&d.q).(*waiter)
			w.ch <- struct{}{} // buffered, one waiter per channel: never blocks
		}
		if len(d.q) > 0 && d.q[0].due-now <= spinWindow {
			d.mu.Unlock()
			runtime.Gosched() // lets the goroutines just woken run
			continue
		}
		switch {
		case len(d.q) == 0:
			d.armed = 0 // a waiter arms the timer when it comes
		case d.armed == 0 || d.armed != d.q[0].due-spinWindow:
			d.armed = d.q[0].due - spinWindow
			d.timer.arm(d.armed)
		}
		d.sleeping = true
		d.mu.Unlock()
		ok := d.timer.wait()
		d.mu.Lock()
		// The timer has fired: nothing is armed now, even if a waiter armed
		// it again meanwhile (its expiry may be the one just read). Waking
		// a hair before the target, as the clocks' offset allows, must
		// re-arm rather than wait on a timer that already fired.
		d.sleeping, d.armed = false, 0
		d.mu.Unlock()
		if !ok {
			return
		}
	}
}

func (d *dispatcher) close() {
	d.timer.close()
	<-d.done
}

// goTimer is the portable precisionTimer: Go's own timer.
type goTimer struct {
	t    *time.Timer
	fire chan struct{}
	stop chan struct{}
	once sync.Once
}

func newGoTimer() *goTimer {
	g := &goTimer{fire: make(chan struct{}, 1), stop: make(chan struct{})}
	g.t = time.AfterFunc(time.Hour, func() {
		select {
		case g.fire <- struct{}{}:
		default:
		}
	})
	g.t.Stop()
	return g
}

func (g *goTimer) arm(due int64) { g.t.Reset(time.Duration(due - nanotime())) }

func (g *goTimer) wait() bool {
	select {
	case <-g.fire:
		return true
	case <-g.stop:
		return false
	}
}

func (g *goTimer) close() { g.once.Do(func() { g.t.Stop(); close(g.stop) }) }
