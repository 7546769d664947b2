package results

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadResults feeds untrusted bytes to the results reader and to all
// that is then done with a file: decoding every histogram, recomputing the
// steps, merging, evaluating and analysing. Nothing may panic. The seed
// corpus (testdata/fuzz/FuzzReadResults) holds edge cases; the committed
// results of real runs are added here.
func FuzzReadResults(f *testing.F) {
	paths, _ := filepath.Glob("../../testdata/results/*.json")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
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
		if m, err := Merge(r, r); err == nil && len(m.Steps) != len(r.Steps) {
			t.Fatalf("merged %d steps into %d", len(r.Steps), len(m.Steps))
		}
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
