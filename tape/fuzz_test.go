package tape

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and seed corpora")

// fuzzSeeds are small tapes and torn or damaged variants of them.
func fuzzSeeds(t testing.TB) [][]byte {
	clean := encode(t, randomExchanges(9, 12), 5, &Stats{Counters: map[string]int64{"packets": 3}})
	flipped := bytes.Clone(clean)
	flipped[len(flipped)/2] ^= 0xff
	return [][]byte{
		clean,
		clean[:len(clean)-trailerSize],
		clean[:len(clean)/2],
		flipped,
		encode(t, nil, 1, nil),
	}
}

// TestFuzzCorpus checks the committed seed corpora are there and are of
// the fuzzer's format; with -update it rewrites them from the current
// format.
func TestFuzzCorpus(t *testing.T) {
	if !*update {
		for _, name := range []string{"FuzzReader", "FuzzDecodeChunk"} {
			files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
			if len(files) < 4 {
				t.Errorf("%s: %d seeds committed (go test -update writes them)", name, len(files))
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil || !bytes.HasPrefix(b, []byte("go test fuzz v1\n[]byte(")) {
					t.Errorf("%s is not a []byte seed of the fuzzer: %v", f, err)
				}
			}
		}
		return
	}
	write := func(name string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzReader", fuzzSeeds(t))
	var chunks [][]byte
	for seed := uint64(1); seed <= 4; seed++ {
		chunks = append(chunks, rawChunk(randomExchanges(seed, int(seed)*2)))
	}
	write("FuzzDecodeChunk", chunks)
}

// rawChunk is the uncompressed payload of a chunk holding exs.
func rawChunk(exs []Exchange) []byte {
	var raw []byte
	if len(exs) == 0 {
		return raw
	}
	raw = binary.AppendVarint(raw, exs[0].ReqStart)
	for i := range exs {
		rec := appendRecord(nil, &exs[i], exs[0].ReqStart)
		raw = binary.AppendUvarint(raw, uint64(len(rec)))
		raw = append(raw, rec...)
	}
	return raw
}

// FuzzReader feeds arbitrary bytes to every reading path. It must never
// panic, never loop, and only return the documented error types.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		ctx := context.Background()
		for i := 0; ; i++ {
			if i > len(b)+10 {
				t.Fatal("Next does not terminate")
			}
			_, err := r.Next(ctx)
			var te *TruncatedError
			var ce *CorruptError
			if err == io.EOF || errors.As(err, &te) {
				break
			}
			if err != nil && !errors.As(err, &ce) {
				t.Fatalf("untyped error %v", err)
			}
		}
		chunks, err := r.Chunks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			r.ReadChunk(ctx, c)
		}
		if _, err := r.Rates(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeChunk reaches the record decoder directly, past the checksums
// and zstd that shield it in FuzzReader.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(rawChunk(randomExchanges(1, 3)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		payload := zstdEncoder().EncodeAll(raw, nil)
		for _, count := range []uint32{1, 2, 3, 7} {
			h := blockHeader{typ: typeChunk, rawLen: uint32(len(raw)), count: count, first: -1 << 62, last: 1 << 62}
			recs, err := decodeChunk(0, h, payload)
			if err == nil && len(recs) != int(count) {
				t.Fatalf("got %d records for count %d", len(recs), count)
			}
		}
	})
}
