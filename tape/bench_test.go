package tape_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/herd-replay/herd/internal/demo"
	"github.com/herd-replay/herd/tape"
)

var (
	benchOnce  sync.Once
	benchExs   []tape.Exchange
	benchTape  []byte
	benchBytes int64 // request and response bytes the records describe (headers and request bodies)
)

func benchData(b *testing.B) {
	benchOnce.Do(func() {
		benchExs = demo.Traffic(demo.SampleTraffic())
		var buf bytes.Buffer
		w, err := tape.NewWriter(&buf, tape.Meta{}, tape.WriterOptions{FlushInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchExs {
			e := &benchExs[i]
			w.Write(e)
			benchBytes += int64(len(e.Method)+len(e.Target)+len(e.ReqBody)) + fieldBytes(e.ReqHeader) + fieldBytes(e.RespHeader)
		}
		w.Close()
		benchTape = buf.Bytes()
	})
}

func fieldBytes(fs []tape.Field) int64 {
	var n int64
	for _, f := range fs {
		n += int64(len(f.Name) + len(f.Value) + 4)
	}
	return n
}

// BenchmarkEncode reports MB/s of HTTP message bytes (lines, headers,
// stored bodies) turned into tape, and records/s.
func BenchmarkEncode(b *testing.B) {
	benchData(b)
	b.SetBytes(benchBytes)
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		w, _ := tape.NewWriter(&buf, tape.Meta{}, tape.WriterOptions{FlushInterval: -1})
		for i := range benchExs {
			if err := w.Write(&benchExs[i]); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
	}
	b.ReportMetric(float64(len(benchExs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(benchBytes)/float64(len(benchTape)), "ratio")
}

// BenchmarkDecode reads every record sequentially.
func BenchmarkDecode(b *testing.B) {
	benchData(b)
	b.SetBytes(benchBytes)
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		r, err := tape.NewReader(bytes.NewReader(benchTape), int64(len(benchTape)))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(benchExs) {
			b.Fatalf("read %d of %d", n, len(benchExs))
		}
	}
	b.ReportMetric(float64(len(benchExs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPeakWindow finds the busiest 60 s from the index, as replay
// --window peak:60s does before reading only that window's chunks.
func BenchmarkPeakWindow(b *testing.B) {
	benchData(b)
	ctx := context.Background()
	for b.Loop() {
		r, _ := tape.NewReader(bytes.NewReader(benchTape), int64(len(benchTape)))
		rates, err := r.Rates(ctx)
		if err != nil {
			b.Fatal(err)
		}
		w := rates.Busiest(60)
		n := 0
		r.Window(ctx, w.Start*1e9, (w.Start+60)*1e9, func(*tape.Exchange) error { n++; return nil })
		if int64(n) != w.Count {
			b.Fatalf("window holds %d, counted %d", n, w.Count)
		}
	}
}
