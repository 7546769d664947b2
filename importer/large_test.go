package importer

import (
	"context"

	"io"
	"runtime"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/importgen"
	"github.com/herd-replay/herd/tape"
)

// importGenerated imports size bytes of a generated input into a tape
// written to io.Discard and returns the counters and the peak live heap,
// sampled (after a collection) every sampleEvery.
func importGenerated(tb testing.TB, format string, size int64, sampleEvery time.Duration) (Stats, uint64) {
	tb.Helper()
	src, err := importgen.Reader(format, size)
	if err != nil {
		tb.Fatal(err)
	}
	f, srcs, err := DetectAll([]Source{{Name: format, R: src}})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := tape.NewWriter(io.Discard, tape.Meta{}, tape.WriterOptions{FlushInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	var peak uint64
	var ms runtime.MemStats
	sample := func(Stats) {
		if sampleEvery > 0 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	st, _, err := Run(context.Background(), f, srcs, Options{Progress: sample, ProgressEvery: sampleEvery, MaxPendingSize: 4 << 20}, w)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return st, peak
}

// TestLargeInputBoundedMemory imports inputs twice the heap bound and
// checks the live heap never exceeds it: the importers stream, and hold
// at most MaxPendingSize (4 MiB here) for pairing and reordering.
// (bench/import.sh shows the same for 1 GB with the herd binary and the
// default 64 MiB.)
func TestLargeInputBoundedMemory(t *testing.T) {
	size := int64(48 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	const bound = 28 << 20
	for _, format := range importgen.Formats {
		t.Run(format, func(t *testing.T) {
			st, peak := importGenerated(t, format, size, 20*time.Millisecond)
			if st.Bytes < size {
				t.Fatalf("read %d bytes, generated at least %d", st.Bytes, size)
			}
			if st.Exchanges == 0 || st.Malformed() != 0 {
				t.Fatalf("%d exchanges, discarded %v", st.Exchanges, st.Discarded)
			}
			t.Logf("%s: %d MB, %d exchanges, peak live heap %.1f MiB", format, st.Bytes>>20, st.Exchanges, float64(peak)/(1<<20))
			if peak > bound {
				t.Errorf("peak live heap %.1f MiB importing %d MiB, bound %d MiB", float64(peak)/(1<<20), size>>20, bound>>20)
			}
		})
	}
}

// BenchmarkImport measures each importer's throughput (input MB/s) and
// reports the peak heap in use (not collected first: what the process
// needs) as peak-heap-MiB.
func BenchmarkImport(b *testing.B) {
	for _, format := range importgen.Formats {
		b.Run(format, func(b *testing.B) {
			const size = 64 << 20
			b.SetBytes(size)
			var peak uint64
			for b.Loop() {
				_, p := importGenerated(b, format, size, 0)
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
