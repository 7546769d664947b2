package replay

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AbortRule is the emergency stop: when more than Fraction of the requests
// that finished over the trailing Window failed, stop sending at once.
// errors>50%/5s stops when, of the requests that finished in the last five
// seconds (at least 10 of them), more than half failed: one bad second in
// a healthy five does not stop the run, and neither does a run whose
// overall error rate is high while its last five seconds are not.
type AbortRule struct {
	Text     string
	Fraction float64
	Window   time.Duration
	Off      bool
}

// DefaultAbort is on unless turned off.
const DefaultAbort = "errors>50%/5s"

// ParseAbort parses errors>PCT/WINDOW, or off.
func ParseAbort(s string) (AbortRule, error) {
	if s == "off" || s == "none" {
		return AbortRule{Text: "off", Off: true}, nil
	}
	bad := fmt.Errorf("abort rule %q: use errors>PCT/WINDOW (errors>50%%/5s) or off", s)
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "errors>")
	if !ok {
		return AbortRule{}, bad
	}
	pct, win, ok := strings.Cut(rest, "/")
	if !ok {
		return AbortRule{}, bad
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(pct, "%"), 64)
	if err != nil || f <= 0 || f >= 100 {
		return AbortRule{}, bad
	}
	w, err := time.ParseDuration(win)
	if err != nil || w < 500*time.Millisecond || w > 10*time.Minute {
		return AbortRule{}, bad
	}
	return AbortRule{Text: s, Fraction: f / 100, Window: w}, nil
}

// abortBucket is the granularity of the sliding window.
const abortBucket = 100 * time.Millisecond

// minAbortSample keeps a handful of failures in a quiet window from
// stopping the run.
const minAbortSample = 10

// abortWindow counts finished requests and failures in 100 ms buckets and
// is checked over exactly the window the rule names. Early in a run the
// window holds only the time since the start, so a target that fails
// everything from the first request is stopped once minAbortSample
// requests have finished.
type abortWindow struct {
	rule  AbortRule
	total []int64
	fails []int64
	head  int64 // bucket index of the newest bucket
}

func newAbortWindow(r AbortRule) *abortWindow {
	n := int(r.Window / abortBucket)
	if n < 1 {
		n = 1
	}
	return &abortWindow{rule: r, total: make([]int64, n), fails: make([]int64, n), head: -1}
}

func (w *abortWindow) advance(bucket int64) {
	n := int64(len(w.total))
	if w.head < 0 {
		w.head = bucket
		return
	}
	for b := w.head + 1; b <= bucket && b-w.head <= n; b++ {
		w.total[b%n], w.fails[b%n] = 0, 0
	}
	if bucket > w.head {
		w.head = bucket
	}
}

// add counts one finished request at replay-clock offset t.
func (w *abortWindow) add(t int64, failed bool) {
	b := t / int64(abortBucket)
	w.advance(b)
	if b <= w.head-int64(len(w.total)) {
		return // older than the window
	}
	i := b % int64(len(w.total))
	w.total[i]++
	if failed {
		w.fails[i]++
	}
}

// check returns a reason to stop at offset now, or "".
func (w *abortWindow) check(now int64) string {
	if w.rule.Off {
		return ""
	}
	w.advance(now / int64(abortBucket))
	var total, fails int64
	for i := range w.total {
		total += w.total[i]
		fails += w.fails[i]
	}
	if total >= minAbortSample && float64(fails) > w.rule.Fraction*float64(total) {
		return fmt.Sprintf("%d of %d requests failed over the last %v (bound %s)",
			fails, total, w.rule.Window, w.rule.Text)
	}
	return ""
}
