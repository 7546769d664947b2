package replay

import (
	"bufio"
	"context"
	"fmt"
	"testing"
	"time"
)

// TestTimelineDue: each timeline second counts the requests the schedule
// offered in it, sent or not, so the report can draw the offered load
// beside what the target achieved. With room to send everything, due is
// sent; when herd may not send (its in-flight bound is full), due keeps
// the schedule and sent shows the shortfall, which the server confirms.
func TestTimelineDue(t *testing.T) {
	path := testTape(t, 20, 6, 30*time.Millisecond, 100*time.Millisecond)
	for _, c := range []struct {
		name  string
		delay time.Duration
		o     Options
		short bool // some requests are not sent
	}{
		{"room", 0, Options{}, false},
		{"inflight-bound", 150 * time.Millisecond, Options{Pacing: Strict, MaxInflight: 2, Timeout: 200 * time.Millisecond}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newServer(t, func(w *bufio.Writer, target string, n int) bool {
				time.Sleep(c.delay)
				fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				return true
			})
			p := loadPlan(t, path, srv.url(), "all")
			o := c.o
			o.Target, o.Schedule, o.Abort = srv.url(), NewSchedule(Clone, 1, 1, p.Length, 0), AbortRule{Off: true}
			st, err := Run(context.Background(), p, o)
			if err != nil {
				t.Fatal(err)
			}
			var due, sent int64
			for _, s := range st.Timeline {
				due += s.Due
				sent += s.Sent
				if s.Sent > s.Due {
					t.Errorf("second %d: sent %d of %d due", s.T, s.Sent, s.Due)
				}
			}
			if due != st.Planned || sent != st.Sent || int64(len(srv.arrivals())) != st.Sent {
				t.Errorf("timeline due %d sent %d; step planned %d sent %d; the server got %d", due, sent, st.Planned, st.Sent, len(srv.arrivals()))
			}
			if short := sent < due; short != c.short {
				t.Errorf("sent %d of %d due, a shortfall: %v, want %v (not sent: %v)", sent, due, short, c.short, st.NotSent)
			}
		})
	}
}
