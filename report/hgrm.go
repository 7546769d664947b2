package report

import (
	"fmt"
	"io"
	"math"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herd-replay/herd/internal/results"
)

// hgrmTicks and hgrmScale are what HdrHistogram's tools use for a
// percentile file: five reporting ticks per half distance to 100%, and
// values recorded in microseconds printed in milliseconds.
const (
	hgrmTicks = 5
	hgrmScale = 1000.0
)

// WriteHgrm writes each step's latency distribution as HdrHistogram's
// percentile distribution text (Java's outputPercentileDistribution, the
// .hgrm format), which HdrHistogram's plotter reads: values in
// milliseconds. A file of one step is exactly that text; with several,
// each step's block is preceded by a '#' line naming it, which the
// plotter skips, but the plotter draws one series per file, so give it
// one step at a time (herd report --format hgrm --step K).
func WriteHgrm(w io.Writer, f *results.File) error {
	var b strings.Builder
	for i := range f.Steps {
		st := &f.Steps[i]
		h, err := results.Decode(st.Histograms.Latency)
		if err != nil {
			return fmt.Errorf("step %d (%gx): %w", i+1, st.Scale, err)
		}
		if len(f.Steps) > 1 {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "#[herd step %d: %s, latency from each request's due time, %s]\n", i+1, st.Label(), fmtDur(st.DurationS))
		}
		writePercentileDistribution(&b, h, hgrmTicks, hgrmScale)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writePercentileDistribution is HdrHistogram's outputPercentileDistribution
// (Java, plain text), column for column: the header, a line per percentile
// tick with the value scaled down by scale and as many decimals as the
// histogram has significant digits, a last line at 100% without the
// 1/(1-Percentile) column, and the mean, max, count and geometry footer.
func writePercentileDistribution(b *strings.Builder, h *hdr.Histogram, ticks int32, scale float64) {
	d := int(h.SignificantFigures())
	fmt.Fprintf(b, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	if h.TotalCount() > 0 {
		line := fmt.Sprintf("%%12.%df %%2.12f %%10d %%14.2f\n", d)
		last := fmt.Sprintf("%%12.%df %%2.12f %%10d\n", d)
		for _, br := range h.CumulativeDistributionWithTicks(ticks) {
			v, p := float64(br.ValueAt)/scale, br.Quantile/100
			if br.Quantile == 100 {
				fmt.Fprintf(b, last, v, p, br.Count)
			} else {
				fmt.Fprintf(b, line, v, p, br.Count, 1/(1-p))
			}
		}
	}
	buckets, subBuckets := geometry(h)
	fmt.Fprintf(b, "#[Mean    = %12.*f, StdDeviation   = %12.*f]\n", d, h.Mean()/scale, d, h.StdDev()/scale)
	fmt.Fprintf(b, "#[Max     = %12.*f, Total count    = %12d]\n", d, float64(h.Max())/scale, h.TotalCount())
	fmt.Fprintf(b, "#[Buckets = %12d, SubBuckets     = %12d]\n", buckets, subBuckets)
}

// geometry returns the bucket and sub-bucket counts of h, which the
// footer shows and hdrhistogram-go does not export: the smallest power of
// two with unit resolution up to 2×10^digits, and as many doublings of it
// as it takes to pass the highest trackable value.
func geometry(h *hdr.Histogram) (buckets, subBuckets int64) {
	magnitude := int(math.Ceil(math.Log2(2 * math.Pow10(int(h.SignificantFigures())))))
	subBuckets = int64(1) << max(magnitude, 1)
	unit := max(int(math.Floor(math.Log2(float64(h.LowestTrackableValue())))), 0)
	untrackable := subBuckets << unit
	buckets = 1
	for untrackable <= h.HighestTrackableValue() {
		if untrackable > math.MaxInt64/2 {
			return buckets + 1, subBuckets
		}
		untrackable <<= 1
		buckets++
	}
	return buckets, subBuckets
}
