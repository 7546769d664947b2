package results

import (
	"fmt"
	"math"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms record microseconds from 1 µs to one hour with three
// significant digits; values above are clamped to the top.
const (
	HistLowest  = 1
	HistHighest = 3600 * 1_000_000
	HistDigits  = 3
	// TimelineDigits is the precision of per-second histograms, which are
	// many and only feed a chart.
	TimelineDigits = 2
)

// NewHist returns an empty latency histogram.
func NewHist() *hdr.Histogram { return hdr.New(HistLowest, HistHighest, HistDigits) }

// NewTimelineHist returns an empty per-second latency histogram.
func NewTimelineHist() *hdr.Histogram { return hdr.New(HistLowest, HistHighest, TimelineDigits) }

// Record adds a duration in nanoseconds, clamped to the histogram's range.
// hdrhistogram is not safe for concurrent use: each histogram has one
// owner, and owners' histograms are merged.
func Record(h *hdr.Histogram, ns int64) {
	us := ns / 1000
	switch {
	case us < HistLowest:
		us = HistLowest
	case us > HistHighest:
		us = HistHighest
	}
	h.RecordValue(us)
}

// Encode is hdrhistogram's V2 compressed encoding, base64 text.
func Encode(h *hdr.Histogram) string {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		// Only an unknown encoding version fails; the version is constant.
		panic(fmt.Sprintf("hdrhistogram encode: %v", err))
	}
	return string(b)
}

// Decode reverses Encode. An empty string is an empty histogram.
func Decode(s string) (*hdr.Histogram, error) {
	if s == "" {
		return NewHist(), nil
	}
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// Summary reads the percentiles of h, in milliseconds.
func Summary(h *hdr.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(us int64) float64 { return round3(float64(us) / 1000) }
	return Percentiles{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P95:  ms(h.ValueAtQuantile(95)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
		Mean: round3(h.Mean() / 1000),
	}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// Rate divides n by seconds, 0 for an empty period.
func Rate(n int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return round3(float64(n) / seconds)
}

// Fraction is n/d, 0 when d is 0, to six decimals.
func Fraction(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(d)*1e6) / 1e6
}
