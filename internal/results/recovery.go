package results

import (
	"fmt"
	"time"
)

// Recovered judges a recovery step: the first window of length w (whole
// seconds of its timeline, from the start of the step) over which every
// whole-step SLO holds, and whether the SLOs also hold over the last
// window of the step, so that a target that came back and fell over again
// is not called recovered. It returns the time from the start of the step
// to the end of the first good window, and false when there was none.
func Recovered(st *Step, slos []SLO, w time.Duration) (time.Duration, bool, error) {
	secs := int64(w / time.Second)
	if secs < 1 {
		secs = 1
	}
	end := int64(st.SettleS+st.DurationS+0.5) - 1 // last second of the step
	good := func(from int64) (bool, error) {
		h := NewTimelineHist()
		var sent, errs int64
		for i := range st.Timeline {
			s := &st.Timeline[i]
			if s.T < from || s.T >= from+secs {
				continue
			}
			sent += s.Sent
			errs += s.Errors
			if s.Histogram != "" {
				sh, err := Decode(s.Histogram)
				if err != nil {
					return false, fmt.Errorf("timeline second %d: %w", s.T, err)
				}
				h.Merge(sh)
			}
		}
		if sent == 0 {
			return false, nil // nothing was due: nothing shows the target is well
		}
		lat := Summary(h)
		for _, s := range slos {
			if s.Route != "" {
				continue
			}
			if s.check(lat, sent, sent-errs, errs, 0) != "" {
				return false, nil
			}
		}
		return true, nil
	}
	first := int64(-1)
	for t := int64(0); t+secs-1 <= end; t++ {
		ok, err := good(t)
		if err != nil {
			return 0, false, err
		}
		if ok {
			first = t
			break
		}
	}
	if first < 0 {
		return 0, false, nil
	}
	last, err := good(max(end-secs+1, first))
	if err != nil || !last {
		return 0, false, err
	}
	return time.Duration(first+secs) * time.Second, true, nil
}
