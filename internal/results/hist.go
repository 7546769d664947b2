package results

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
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

// maxEncoded bounds an encoded histogram, as a results file is untrusted
// input. herd's largest possible one, every one of the 23,552 buckets of
// the 3-digit geometry holding a 9-byte count, is under 300 KB of base64.
const maxEncoded = 1 << 20

// Decode reverses Encode. An empty string is an empty histogram. Only
// herd's geometries are accepted (1 µs to 1 h at 3 or 2 significant
// digits): a histogram of another shape cannot be merged with herd's
// without loss, and a crafted header could ask for a huge one.
func Decode(s string) (*hdr.Histogram, error) {
	if s == "" {
		return NewHist(), nil
	}
	if len(s) > maxEncoded {
		return nil, fmt.Errorf("decode histogram: %d bytes, more than the %d a herd histogram can take", len(s), maxEncoded)
	}
	if err := checkHeader(s); err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	if lo, hi, d := h.LowestTrackableValue(), h.HighestTrackableValue(), h.SignificantFigures(); lo != HistLowest || hi != HistHighest || (d != HistDigits && d != TimelineDigits) {
		return nil, fmt.Errorf("decode histogram: range %d..%d µs at %d significant digits; herd writes %d..%d µs at %d or %d",
			lo, hi, d, HistLowest, HistHighest, HistDigits, TimelineDigits)
	}
	return h, nil
}

// checkHeader reads the outer header of a V2 compressed histogram (cookie
// and compressed length, 8 bytes of the base64 text's first 12) so that a
// string that is not one fails before anything is inflated.
func checkHeader(s string) error {
	if len(s) < 12 {
		return errors.New("too short")
	}
	b, err := base64.StdEncoding.DecodeString(s[:12])
	if err != nil {
		return fmt.Errorf("not base64: %w", err)
	}
	if cookie := int32(binary.BigEndian.Uint32(b)) &^ 0xf0; cookie != hdr.V2CompressedEncodingCookieBase {
		return fmt.Errorf("cookie %#x is not a V2 compressed histogram", uint32(cookie))
	}
	return nil
}

// DecodeInto merges the histogram encoded in s into dst, which must not
// lose any of it: dst has herd's range and at least the digits of s.
func DecodeInto(dst *hdr.Histogram, s string) error {
	h, err := Decode(s)
	if err != nil {
		return err
	}
	if h.SignificantFigures() > dst.SignificantFigures() && h.TotalCount() > 0 {
		return fmt.Errorf("merge histogram: %d significant digits into %d would lose precision", h.SignificantFigures(), dst.SignificantFigures())
	}
	if dropped := dst.Merge(h); dropped != 0 {
		return fmt.Errorf("merge histogram: %d values dropped", dropped)
	}
	return nil
}

// Summary reads the percentiles of h, in milliseconds.
func Summary(h *hdr.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{None: true}
	}
	ms := func(us int64) float64 { return Round3(float64(us) / 1000) }
	return Percentiles{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P95:  ms(h.ValueAtQuantile(95)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
		Mean: Round3(h.Mean() / 1000),
	}
}

// Round3 rounds x to 3 decimals, for the numbers people read in results.
func Round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// Rate divides n by seconds, 0 for an empty period.
func Rate(n int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return Round3(float64(n) / seconds)
}

// Fraction is n/d, 0 when d is 0, to six decimals.
func Fraction(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(d)*1e6) / 1e6
}
