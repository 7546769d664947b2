package results

import (
	"bytes"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herd-replay/herd/internal/golden"
)

// FuzzReadResults feeds untrusted bytes to the results reader and to all
// that is then done with a file: decoding every histogram, recomputing the
// steps, merging, evaluating and analysing. Nothing may panic, and merging
// a file with a copy of itself doubles it. The seed corpus
// (testdata/fuzz/FuzzReadResults) holds edge cases; the committed results
// of real runs are added here.
func FuzzReadResults(f *testing.F) {
	golden.Seed(f, "../../testdata/results/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := range r.Steps {
			st := &r.Steps[i]
			for _, x := range st.Hists() {
				if h, err := Decode(*x.Encoded); err == nil {
					Summary(h)
				}
			}
		}
		checkMergeTwice(t, r)
		slos, err := ParseSLOs(r.Params.SLOs)
		if err != nil {
			slos = nil
		}
		for i := range r.Steps {
			_ = Summarize(&r.Steps[i])
			Evaluate(&r.Steps[i], slos, r.Params.Saturation)
			for j := range r.Steps[i].Routes {
				RouteViolations(&r.Steps[i].Routes[j], slos)
			}
		}
		Analyze(r)
		var out bytes.Buffer
		if err := r.Write(&out); err != nil {
			t.Fatalf("write what was read: %v", err)
		}
	})
}

// checkMergeTwice merges r with a copy of itself, as two shards: every
// step's counters double, and each of its histograms holds every value
// twice, so its count doubles while its median, maximum and mean stay
// (the other percentiles may move by one rank) and the merged figures
// are read from the merged histogram.
func checkMergeTwice(t *testing.T, r *File) {
	t.Helper()
	a, b := *r, *r
	a.Params.Shard, b.Params.Shard = "0/2", "1/2"
	m, err := Merge(&a, &b)
	if err != nil {
		return
	}
	if len(m.Steps) != len(r.Steps) {
		t.Fatalf("merged %d steps into %d", len(r.Steps), len(m.Steps))
	}
	for i := range r.Steps {
		st, ms := &r.Steps[i], &m.Steps[i]
		if ms.Sent != 2*st.Sent || ms.Errors != 2*st.Errors || ms.Planned != 2*st.Planned || ms.Good != 2*st.Good {
			t.Fatalf("step %d: merged sent %d, errors %d, planned %d, good %d; want twice %d, %d, %d, %d",
				i+1, ms.Sent, ms.Errors, ms.Planned, ms.Good, st.Sent, st.Errors, st.Planned, st.Good)
		}
		mh := ms.Hists()
		for k, x := range st.Hists() {
			// The original as merge reads it: at herd's full precision.
			once := NewHist()
			if DecodeInto(once, *x.Encoded) != nil || !countable(once) {
				continue
			}
			twice, err := Decode(*mh[k].Encoded)
			if err != nil {
				t.Fatalf("step %d %s: the merged histogram does not decode: %v", i+1, x.Name, err)
			}
			p1, p2 := Summary(once), Summary(twice)
			if twice.TotalCount() != 2*once.TotalCount() || p2.P50 != p1.P50 || p2.Max != p1.Max || p2.Mean != p1.Mean {
				t.Fatalf("step %d %s: merged with itself, %d values, p50 %v, max %v, mean %v; want %d, %v, %v, %v",
					i+1, x.Name, twice.TotalCount(), p2.P50, p2.Max, p2.Mean, 2*once.TotalCount(), p1.P50, p1.Max, p1.Mean)
			}
			if *mh[k].Percentiles != p2 {
				t.Fatalf("step %d %s: merged figures %+v, its histogram's %+v", i+1, x.Name, *mh[k].Percentiles, p2)
			}
		}
	}
}

// countable reports whether h's counts can double without overflow or
// loss in a float64 (a crafted histogram can hold anything).
func countable(h *hdr.Histogram) bool {
	const most = 1 << 40
	var n int64
	for _, b := range h.Distribution() {
		if b.Count < 0 || b.Count > most {
			return false
		}
		if n += b.Count; n > most {
			return false
		}
	}
	return true
}
