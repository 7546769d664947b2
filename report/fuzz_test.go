package report

import (
	"bytes"
	"io"
	"testing"

	goldenfile "github.com/herd-replay/herd/internal/golden"
	"github.com/herd-replay/herd/internal/results"
)

// FuzzRender renders untrusted results files in every format and compares
// them with themselves and with a real run: whatever the file holds, no
// renderer may panic. Seeds: testdata/fuzz/FuzzRender and the real runs.
func FuzzRender(f *testing.F) {
	seeds := goldenfile.Seed(f, "../testdata/results/*.json")
	real, err := results.Read(bytes.NewReader(seeds[0]))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := results.Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, format := range Formats {
			_ = Write(io.Discard, r, format)
		}
		for _, pair := range [][2]*results.File{{r, r}, {real, r}, {r, real}} {
			c := Compare(pair[0], pair[1], DefaultCompareOptions())
			if err := c.WriteText(io.Discard); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteJUnit(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
	})
}
