package results

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/herd-replay/herd/internal/golden"
)

// TestStepHists: each entry of Hists points at the histogram its name is
// the key of in the results file, and at the percentiles written beside
// it (NAME_ms), so code that goes through the table cannot pair one
// histogram with another's figures.
func TestStepHists(t *testing.T) {
	var st Step
	hs := st.Hists()
	for i, x := range hs {
		*x.Encoded = x.Name
		*x.Percentiles = Percentiles{P50: float64(i + 1)}
	}
	b, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Histograms map[string]any `json:"histograms"`
	}
	var pcts map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pcts); err != nil {
		t.Fatal(err)
	}
	if len(got.Histograms) != len(hs) {
		t.Errorf("Hists lists %d histograms, the file has %d", len(hs), len(got.Histograms))
	}
	for i, x := range hs {
		if got.Histograms[x.Name] != x.Name {
			t.Errorf("%s: histograms.%s is %v", x.Name, x.Name, got.Histograms[x.Name])
		}
		var p Percentiles
		if err := json.Unmarshal(pcts[x.Name+"_ms"], &p); err != nil || p.P50 != float64(i+1) {
			t.Errorf("%s: %s_ms is %s, want p50 %d", x.Name, x.Name, pcts[x.Name+"_ms"], i+1)
		}
	}
}

// TestHistogramCounts holds the runs replay wrote to what readers count
// on (the OpenMetrics counts): latency, service and TTFB are recorded
// together, for every request that got a response; the two lags for every
// request sent.
func TestHistogramCounts(t *testing.T) {
	for _, p := range golden.Glob(t, "../../testdata/results/*.json") {
		f, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Steps {
			st := &f.Steps[i]
			counts := map[string]int64{}
			for _, x := range st.Hists() {
				h, err := Decode(*x.Encoded)
				if err != nil {
					t.Fatal(err)
				}
				counts[x.Name] = h.TotalCount()
			}
			if counts["service"] != counts["latency"] || counts["ttfb"] != counts["latency"] ||
				counts["schedule_lag"] != st.Sent || counts["dispatch_lag"] != st.Sent {
				t.Errorf("%s step %d: counts %v; want latency, service and ttfb equal, and both lags %d (sent)",
					filepath.Base(p), i+1, counts, st.Sent)
			}
		}
	}
}
