package replay

import (
	"testing"
	"time"
)

// TestAbortWindowIsTheRulesWindow feeds finished requests second by second
// and checks when errors>50%/5s fires: over exactly the last five seconds,
// never on one bad second among healthy ones.
func TestAbortWindowIsTheRulesWindow(t *testing.T) {
	rule, err := ParseAbort("errors>50%/5s")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// per second: requests finished and how many failed
		seconds   [][2]int
		fireAfter int // index of the second after which it fires; -1 never
	}{
		{"healthy", [][2]int{{100, 0}, {100, 1}, {100, 0}, {100, 0}, {100, 0}, {100, 0}}, -1},
		{"one bad second among healthy ones", [][2]int{{100, 0}, {100, 0}, {100, 0}, {100, 0}, {100, 100}, {100, 0}, {100, 0}}, -1},
		// 44% overall but a stretch of five seconds above half: that stretch fires.
		{"a bad stretch", [][2]int{{100, 0}, {100, 0}, {100, 100}, {100, 100}, {100, 100}, {100, 0}}, 4},
		{"44% over every five seconds", [][2]int{{100, 44}, {100, 44}, {100, 44}, {100, 44}, {100, 44}, {100, 44}, {100, 44}}, -1},
		{"fails from the start", [][2]int{{20, 20}}, 0},
		{"too few to judge", [][2]int{{5, 5}, {0, 0}, {0, 0}}, -1},
		// Healthy, then the target fails everything: more than half of the
		// last five seconds after the third failing second.
		{"collapse", [][2]int{{100, 0}, {100, 0}, {100, 0}, {100, 0}, {100, 0}, {100, 100}, {100, 100}, {100, 100}}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newAbortWindow(rule)
			fired := -1
			for sec, c := range tt.seconds {
				// Spread the second's requests over its ten buckets.
				for i := 0; i < c[0]; i++ {
					at := int64(sec)*int64(time.Second) + int64(i)*int64(time.Second)/int64(c[0])
					w.add(at, i < c[1])
				}
				if why := w.check(int64(sec+1)*int64(time.Second) - 1); why != "" && fired < 0 {
					fired = sec
				}
			}
			if fired != tt.fireAfter {
				t.Fatalf("fired after second %d, want %d", fired, tt.fireAfter)
			}
		})
	}
}
