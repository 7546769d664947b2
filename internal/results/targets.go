package results

import (
	"fmt"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// TargetResult is the share of a step that one target received, when a
// run sent to several (replay --target-map): where the requests went.
type TargetResult struct {
	// Name is the --target-map name that chose the target, Target its URL.
	Name       string      `json:"name"`
	Target     string      `json:"target"`
	Sent       int64       `json:"sent"`
	Completed  int64       `json:"completed"`
	Errors     int64       `json:"errors"`
	Mismatches int64       `json:"mismatches"`
	NotSent    int64       `json:"not_sent"` // due in the measured period, not sent, for any reason
	ErrorRate  float64     `json:"error_rate"`
	LatencyMS  Percentiles `json:"latency_ms"`
	Histogram  string      `json:"histogram"` // latency, encoded as Encode does
}

// summarizeTargets sets each target's error rate and percentiles from its
// counters and histogram.
func summarizeTargets(st *Step) error {
	for i := range st.Targets {
		t := &st.Targets[i]
		h, err := Decode(t.Histogram)
		if err != nil {
			return fmt.Errorf("target %s: %w", t.Target, err)
		}
		t.ErrorRate = Fraction(t.Errors, t.Sent)
		t.LatencyMS = Summary(h)
	}
	return nil
}

// targetSums adds up the targets of the parts of a merge, in the order
// they first appear.
type targetSums struct {
	order []string
	sums  map[string]*targetSum
}

type targetSum struct {
	TargetResult
	hist *hdr.Histogram
}

func (ts *targetSums) add(parts []TargetResult) error {
	if ts.sums == nil {
		ts.sums = map[string]*targetSum{}
	}
	for _, t := range parts {
		k := t.Name + "\x00" + t.Target
		s := ts.sums[k]
		if s == nil {
			s = &targetSum{TargetResult: TargetResult{Name: t.Name, Target: t.Target}, hist: NewHist()}
			ts.sums[k] = s
			ts.order = append(ts.order, k)
		}
		s.Sent += t.Sent
		s.Completed += t.Completed
		s.Errors += t.Errors
		s.Mismatches += t.Mismatches
		s.NotSent += t.NotSent
		if err := DecodeInto(s.hist, t.Histogram); err != nil {
			return fmt.Errorf("target %s: %w", t.Target, err)
		}
	}
	return nil
}

// results encodes the sums, in order.
func (ts *targetSums) results() []TargetResult {
	var out []TargetResult
	for _, k := range ts.order {
		s := ts.sums[k]
		s.Histogram = Encode(s.hist)
		out = append(out, s.TargetResult)
	}
	return out
}
