package replay

import (
	"bufio"
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestOnAbort: the emergency stop calls Options.OnAbort once, with the
// reason the step records, before Run has waited for the requests in
// flight (a coordinated ramp tells the other shards then).
func TestOnAbort(t *testing.T) {
	handle := func(w *bufio.Writer, _ string, _ int) bool {
		w.WriteString("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
		return true
	}
	srv := newServer(t, handle)
	p := loadPlan(t, testTape(t, 50, 40, 20*time.Millisecond, 100*time.Millisecond), srv.url(), "all")
	rule, _ := ParseAbort("errors>50%/1s")
	var calls atomic.Int32
	var reason atomic.Value
	var at atomic.Int64
	st, err := Run(context.Background(), p, Options{Target: srv.url(), Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Abort: rule,
		OnAbort: func(why string) { calls.Add(1); reason.Store(why); at.Store(time.Now().UnixNano()) }})
	if err != nil {
		t.Fatal(err)
	}
	returned := time.Now().UnixNano()
	if !st.Aborted || calls.Load() != 1 || reason.Load() != st.AbortReason {
		t.Fatalf("aborted %v (%q); OnAbort called %d times with %v", st.Aborted, st.AbortReason, calls.Load(), reason.Load())
	}
	if at.Load() > returned {
		t.Error("OnAbort was called after Run returned")
	}
}
