package replay

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestDispatcherWakesEveryone: many goroutines sleeping until scattered
// due times, some near each other (spin path), some far (timer path), some
// already past; all must wake, none early, and within a bound.
func TestDispatcherWakesEveryone(t *testing.T) {
	d := newDispatcher()
	defer d.close()
	const n = 2000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	start := nanotime()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ch := make(chan struct{}, 1)
			for k := 0; k < 5; k++ {
				due := start + int64(i%97)*int64(37*time.Microsecond)*int64(k+1) + int64(k)*int64(20*time.Millisecond)
				if err := d.sleepUntil(context.Background(), due, ch); err != nil {
					t.Error(err)
					return
				}
				now := nanotime()
				if now < due {
					t.Errorf("woke %v early", time.Duration(due-now))
				}
				mu.Lock()
				worst = max(worst, time.Duration(now-due))
				mu.Unlock()
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a sleeper was never woken")
	}
	t.Logf("worst wake-up lateness %v", worst)
}

// TestDispatcherCancel: a cancelled sleeper returns at once, and its
// channel is clean for the next sleep.
func TestDispatcherCancel(t *testing.T) {
	d := newDispatcher()
	defer d.close()
	ch := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := d.sleepUntil(ctx, nanotime()+int64(time.Hour), ch); err == nil {
		t.Fatal("cancelled sleep returned no error")
	}
	due := nanotime() + int64(30*time.Millisecond)
	if err := d.sleepUntil(context.Background(), due, ch); err != nil || nanotime() < due {
		t.Fatalf("the next sleep woke early or failed: %v", err)
	}
}

// earlyTimer fires as soon as it is armed: the worst a real timer can do
// is fire a hair early on the replay clock (the two clocks' offset is
// measured to within some nanoseconds). The dispatcher must re-arm rather
// than wait on a timer that already fired.
type earlyTimer struct {
	fire chan struct{}
	stop chan struct{}
	once sync.Once
}

func (e *earlyTimer) arm(int64) {
	select {
	case e.fire <- struct{}{}:
	default:
	}
}

func (e *earlyTimer) wait() bool {
	select {
	case <-e.fire:
		return true
	case <-e.stop:
		return false
	}
}

func (e *earlyTimer) close() { e.once.Do(func() { close(e.stop) }) }

func TestDispatcherEarlyTimer(t *testing.T) {
	d := newDispatcherWith(&earlyTimer{fire: make(chan struct{}, 1), stop: make(chan struct{})})
	defer d.close()
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 3; i++ {
			d.sleepUntil(context.Background(), nanotime()+int64(i)*int64(5*time.Millisecond), ch)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the dispatcher lost a wake-up after an early timer")
	}
}

// TestDispatcherCancelMany: thousands of sleepers cancelled at once, as an
// emergency stop does, all return promptly, and the survivors still wake.
func TestDispatcherCancelMany(t *testing.T) {
	d := newDispatcher()
	defer d.close()
	ctx, cancel := context.WithCancel(context.Background())
	const n = 10000
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := ctx
			if i%100 == 0 {
				c = context.Background() // survivors, due soon after the cancel
			}
			d.sleepUntil(c, nanotime()+int64(200*time.Millisecond)+int64(i)*int64(time.Microsecond), make(chan struct{}, 1))
		}(i)
	}
	time.Sleep(50 * time.Millisecond)
	begin := time.Now()
	cancel()
	wg.Wait()
	if el := time.Since(begin); el > 2*time.Second {
		t.Fatalf("cancelling %d sleepers took %v", n, el)
	}
	d.mu.Lock()
	left := len(d.q)
	d.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiters left in the heap", left)
	}
}
