package replay

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WindowSpec selects the part of a tape to replay.
type WindowSpec struct {
	Text string
	Kind string        // "all", "peak" or "range"
	Dur  time.Duration // peak: window length
	// range: From and To are offsets from the tape's first request when
	// Abs is false, else Unix nanoseconds.
	From, To int64
	Abs      bool
}

// ParseWindow parses all, peak:DUR or FROM-TO, where FROM and TO are both
// offsets from the tape's first request (5m-6m, 300-360) or both RFC 3339
// times (2026-11-16T11:55:00Z-2026-11-16T11:56:00Z).
func ParseWindow(s string) (WindowSpec, error) {
	w := WindowSpec{Text: s}
	switch {
	case s == "" || s == "all":
		w.Kind, w.Text = "all", "all"
		return w, nil
	case strings.HasPrefix(s, "peak:"):
		d, err := parseSeconds(strings.TrimPrefix(s, "peak:"))
		if err != nil || d < time.Second || d%time.Second != 0 {
			return w, fmt.Errorf("window %q: peak:DUR needs a whole number of seconds, at least 1s (peak:60s)", s)
		}
		w.Kind, w.Dur = "peak", d
		return w, nil
	}
	// The dash separating FROM and TO may also appear inside RFC 3339
	// dates, so try every split.
	for i := 1; i < len(s)-1; i++ {
		if s[i] != '-' {
			continue
		}
		a, b := s[:i], s[i+1:]
		if fa, err1 := parseSeconds(a); err1 == nil {
			if fb, err2 := parseSeconds(b); err2 == nil && fb > fa && fa >= 0 {
				w.Kind, w.From, w.To = "range", int64(fa), int64(fb)
				return w, nil
			}
		}
		ta, err1 := time.Parse(time.RFC3339Nano, a)
		tb, err2 := time.Parse(time.RFC3339Nano, b)
		if err1 == nil && err2 == nil && tb.After(ta) {
			w.Kind, w.From, w.To, w.Abs = "range", ta.UnixNano(), tb.UnixNano(), true
			return w, nil
		}
	}
	return w, fmt.Errorf("window %q: use all, peak:DUR (peak:60s) or FROM-TO (5m-6m, or two RFC 3339 times)", s)
}

// parseSeconds reads a duration ("90s", "5m") or a plain number of seconds.
func parseSeconds(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(f * float64(time.Second)), nil
}
