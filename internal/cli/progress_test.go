package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/replay"
)

// syncBuffer is a bytes.Buffer safe for mpb's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgressTerminal drives the bar path as a ramp does, concurrently
// with mpb's renderer, and must finish (mpb calls the decorators from its
// own goroutine while the view is updated from the replay's).
func TestProgressTerminal(t *testing.T) {
	var out syncBuffer
	v := newProgressView(IO{Err: &out, ErrTTY: true}, time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Ten steps planned, three run: a ramp that stops at a failure.
		v.Overall(0, 10, "from 1x")
		for step := 0; step < 3; step++ {
			v.Step("step")
			for i := 0; i < 50; i++ {
				v.Update(replay.Progress{Planned: 100, Sent: int64(2 * i), Elapsed: time.Duration(i) * time.Millisecond})
				time.Sleep(2 * time.Millisecond)
			}
			v.EndStep("pass")
			v.Overall(step+1, 10, "last: pass")
		}
		v.Close()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the progress view deadlocked")
	}
	if s := out.String(); !strings.Contains(s, "ramp") || !strings.Contains(s, "sent") {
		t.Fatalf("no bars drawn:\n%q", s)
	}
}

// TestProgressLog: without a terminal, status lines and outcomes.
func TestProgressLog(t *testing.T) {
	var out syncBuffer
	v := newProgressView(IO{Err: &out}, time.Millisecond)
	v.Overall(0, 1, "ignored")
	v.Step("2x")
	time.Sleep(2 * time.Millisecond)
	v.Update(replay.Progress{Planned: 10, Sent: 5})
	v.EndStep("pass (achieved 1.0 of 1.0 req/s)")
	v.Close()
	s := out.String()
	for _, want := range []string{"herd: 2x: starting", "herd: 2x: sent 5/10", "herd: 2x: pass"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
}
