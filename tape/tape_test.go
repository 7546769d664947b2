package tape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomExchange builds an exchange exercising every field, including the
// edge values (empty strings, no response, IPv6, huge lengths).
func randomExchange(rng *rand.Rand, base int64) Exchange {
	word := func(n int) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	addr := func() netip.AddrPort {
		switch rng.IntN(3) {
		case 0:
			return netip.AddrPort{}
		case 1:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(256)), 0, 1}), uint16(rng.IntN(65536)))
		}
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.IntN(256))
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(rng.IntN(65536)))
	}
	fields := func() []Field {
		n := rng.IntN(6)
		if n == 0 {
			return nil
		}
		fs := make([]Field, n)
		for i := range fs {
			fs[i] = Field{Name: word(12), Value: word(40)}
		}
		return fs
	}
	e := Exchange{
		ConnID:    rng.Uint64(),
		Seq:       rng.Uint32(),
		Client:    addr(),
		Server:    addr(),
		ReqStart:  base + rng.Int64N(10e9) - 5e9,
		Method:    word(8),
		Target:    word(100),
		Proto:     word(8),
		ReqHeader: fields(),
		Flags:     Flags(rng.Uint32()) & knownFlags,
	}
	e.ReqEnd = e.ReqStart + rng.Int64N(1e9)
	if rng.IntN(4) > 0 {
		e.ReqBody = []byte(word(300))
		if len(e.ReqBody) == 0 {
			e.ReqBody = nil
		}
	}
	e.ReqBodyLen = int64(len(e.ReqBody)) + rng.Int64N(3)*rng.Int64N(1<<40)
	if e.Flags&NoResponse == 0 {
		e.RespStart = e.ReqStart + rng.Int64N(2e9) - 1e9 // may precede the request end
		e.RespEnd = e.RespStart + rng.Int64N(1e9)
		e.Status = rng.IntN(1000)
		e.RespProto = word(8)
		e.RespHeader = fields()
		e.RespBodyLen = rng.Int64N(1 << 50)
		e.RespBodyHash = rng.Uint64()
		e.RespTrailer = fields()
	}
	if rng.IntN(3) == 0 {
		e.Proto, e.Stream = HTTP2, uint32(rng.IntN(1<<31))
		e.ReqTrailer = fields()
	}
	return e
}

func randomExchanges(seed uint64, n int) []Exchange {
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	out := make([]Exchange, n)
	for i := range out {
		out[i] = randomExchange(rng, base)
	}
	return out
}

func testMeta() Meta {
	return Meta{
		HerdVersion: "test",
		Created:     time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Source:      Source{Kind: "synthetic", Ports: []int{80}},
		Redaction:   Redaction{Enabled: true, Headers: []string{"authorization"}},
		Notes:       []string{"made by a test"},
	}
}

// encode writes exchanges to an in-memory tape, cutting a chunk every
// perChunk records.
func encode(t testing.TB, exs []Exchange, perChunk int, stats *Stats) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testMeta(), WriterOptions{ChunkRecords: perChunk, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range exs {
		if err := w.Write(&exs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if stats != nil {
		w.SetStats(*stats)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads every record with Next, collecting the errors it returns
// along the way, until io.EOF or a TruncatedError.
func readAll(t testing.TB, b []byte) ([]Exchange, []error, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	var out []Exchange
	var damage []error
	for {
		e, err := r.Next(context.Background())
		if err == io.EOF {
			return out, damage, nil
		}
		var te *TruncatedError
		if errors.As(err, &te) {
			return out, damage, err
		}
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Next: untyped error %v", err)
			}
			damage = append(damage, err)
			if len(damage) > 1000 {
				t.Fatal("Next keeps returning errors")
			}
			continue
		}
		out = append(out, *e)
	}
}

// normalize makes an exchange comparable after a round trip: absent
// responses carry no times, and empty slices read back as nil.
func normalize(e Exchange) Exchange {
	if e.Flags&NoResponse != 0 {
		e.RespStart, e.RespEnd = 0, 0
	}
	if len(e.ReqBody) == 0 {
		e.ReqBody = nil
	}
	return e
}

func TestRoundTripProperty(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		exs := randomExchanges(seed, 1+int(seed)*37)
		stats := &Stats{Counters: map[string]int64{"packets": int64(seed)}, Discarded: map[string]int64{"orphan_response": 2}}
		b := encode(t, exs, 1+int(seed%7)*11, stats)
		got, damage, err := readAll(t, b)
		if err != nil || len(damage) > 0 {
			t.Fatalf("seed %d: err %v damage %v", seed, err, damage)
		}
		if len(got) != len(exs) {
			t.Fatalf("seed %d: got %d records, want %d", seed, len(got), len(exs))
		}
		for i := range exs {
			if want := normalize(exs[i]); !reflect.DeepEqual(normalize(got[i]), want) {
				t.Fatalf("seed %d record %d:\n got %+v\nwant %+v", seed, i, got[i], want)
			}
		}
		r, _ := NewReader(bytes.NewReader(b), int64(len(b)))
		if !r.Indexed() {
			t.Fatalf("seed %d: clean tape has no index", seed)
		}
		if st, ok := r.Stats(); !ok || !reflect.DeepEqual(st, *stats) {
			t.Fatalf("seed %d: stats %+v, want %+v", seed, st, *stats)
		}
		if m := r.Meta(); m.Source.Kind != "synthetic" || m.FormatVersion != MaxVersion || !m.Created.Equal(testMeta().Created) {
			t.Fatalf("seed %d: meta %+v", seed, m)
		}
	}
}

func TestIndexMatchesScan(t *testing.T) {
	exs := randomExchanges(7, 500)
	b := encode(t, exs, 64, nil)
	indexed, _ := NewReader(bytes.NewReader(b), int64(len(b)))
	// Cutting off the trailer forces a scan of the same blocks.
	scanned, _ := NewReader(bytes.NewReader(b[:len(b)-1]), int64(len(b)-1))
	if !indexed.Indexed() || scanned.Indexed() {
		t.Fatalf("indexed %v, scanned %v", indexed.Indexed(), scanned.Indexed())
	}
	ctx := context.Background()
	ci, _ := indexed.Chunks(ctx)
	cs, _ := scanned.Chunks(ctx)
	if !reflect.DeepEqual(ci, cs) {
		t.Fatalf("chunks differ:\nindex %v\nscan  %v", ci, cs)
	}
	ri, _ := indexed.Rates(ctx)
	rs, _ := scanned.Rates(ctx)
	if !reflect.DeepEqual(ri, rs) || ri.Total() != int64(len(exs)) {
		t.Fatalf("rates differ or total %d != %d", ri.Total(), len(exs))
	}
	if a, b := ri.Busiest(3), rs.Busiest(3); a != b {
		t.Fatalf("busiest differs: %+v vs %+v", a, b)
	}
}

func TestWindowReadsOnlyThatWindow(t *testing.T) {
	exs := randomExchanges(3, 2000)
	b := encode(t, exs, 50, nil)
	r, _ := NewReader(bytes.NewReader(b), int64(len(b)))
	from := exs[0].ReqStart - 1e9
	to := from + 2e9
	want := 0
	for _, e := range exs {
		if e.ReqStart >= from && e.ReqStart < to {
			want++
		}
	}
	got := 0
	err := r.Window(context.Background(), from, to, func(e *Exchange) error {
		if e.ReqStart < from || e.ReqStart >= to {
			t.Fatalf("record at %d outside [%d,%d)", e.ReqStart, from, to)
		}
		got++
		return nil
	})
	if err != nil || got != want || want == 0 {
		t.Fatalf("window: got %d want %d err %v", got, want, err)
	}
}

// TestTruncatedAtEveryOffset cuts a small tape at every byte and checks that
// both ways of reading it (Next, and All through Chunks and ReadChunk, which
// inspect and replay use) return exactly the records of the chunks that are
// complete, then report a TruncatedError naming the offset of the torn block
// (or nothing when the cut falls on a block boundary).
func TestTruncatedAtEveryOffset(t *testing.T) {
	exs := randomExchanges(11, 40)
	const perChunk = 7
	b := encode(t, exs, perChunk, &Stats{Counters: map[string]int64{"packets": 1}})
	full, _ := NewReader(bytes.NewReader(b), int64(len(b)))
	chunks, _ := full.Chunks(context.Background())
	starts := blockStarts(t, b)
	for cut := 0; cut < len(b); cut++ {
		got, damage, err := readAll(t, b[:cut])
		if cut < fileHeaderSize {
			if err == nil {
				t.Fatalf("cut %d: opened a tape shorter than its header", cut)
			}
			continue
		}
		if len(damage) > 0 {
			t.Fatalf("cut %d: truncation reported as corruption: %v", cut, damage)
		}
		complete := 0
		for _, c := range chunks {
			if c.Offset+blockHeaderSize+payloadLen(t, b, c.Offset) <= int64(cut) {
				complete += c.Count
			}
		}
		if len(got) != complete {
			t.Fatalf("cut %d: got %d records, want %d", cut, len(got), complete)
		}
		for i := range got {
			if !reflect.DeepEqual(normalize(got[i]), normalize(exs[i])) {
				t.Fatalf("cut %d: record %d differs", cut, i)
			}
		}
		torn := int64(-1) // the block the cut falls inside, if any
		for _, st := range starts {
			if st < int64(cut) {
				torn = st
			} else if st == int64(cut) {
				torn = -1
			}
		}
		var te *TruncatedError
		switch {
		case torn < 0 && err != nil:
			t.Fatalf("cut %d on a block boundary: %v", cut, err)
		case torn >= 0 && (!errors.As(err, &te) || te.Offset != torn):
			t.Fatalf("cut %d: got %v, want a TruncatedError at %d", cut, err, torn)
		}
		// All: the same records, and the same torn block in Damage.
		r, _ := NewReader(bytes.NewReader(b[:cut]), int64(cut))
		n := 0
		if err := r.All(context.Background(), func(*Exchange) error { n++; return nil }); err != nil {
			t.Fatalf("cut %d: All: %v", cut, err)
		}
		if n != complete {
			t.Fatalf("cut %d: All read %d records, want %d", cut, n, complete)
		}
		if d := r.Damage(); torn >= 0 && (len(d) != 1 || !errors.As(d[0], &te) || te.Offset != torn) {
			t.Fatalf("cut %d: All's damage %v, want a TruncatedError at %d", cut, d, torn)
		}
	}
}

// blockStarts lists the offsets where the blocks and the trailer of a
// clean tape start, and its end.
func blockStarts(t testing.TB, b []byte) []int64 {
	var out []int64
	off := int64(fileHeaderSize)
	for ; off < int64(len(b))-trailerSize; off += blockHeaderSize + payloadLen(t, b, off) {
		out = append(out, off)
	}
	return append(out, off, int64(len(b)))
}

func payloadLen(t testing.TB, b []byte, off int64) int64 {
	h, reason := parseBlockHeader(b[off : off+blockHeaderSize])
	if reason != "" {
		t.Fatalf("block at %d: %s", off, reason)
	}
	return int64(h.payloadLen)
}

// TestCorruptionIsConfined flips bytes all over a tape: each damaged chunk
// gives a CorruptError, the reader never panics, and the records of every
// other chunk still read back intact, by Next and by All.
func TestCorruptionIsConfined(t *testing.T) {
	exs := randomExchanges(5, 60)
	const perChunk = 10
	b := encode(t, exs, perChunk, nil)
	full, _ := NewReader(bytes.NewReader(b), int64(len(b)))
	chunks, _ := full.Chunks(context.Background())
	for _, c := range chunks {
		for _, at := range []int64{c.Offset + 2, c.Offset + 13, c.Offset + blockHeaderSize + 3, c.Offset + blockHeaderSize + payloadLen(t, b, c.Offset) - 1} {
			bad := bytes.Clone(b)
			bad[at] ^= 0x40
			got, damage, err := readAll(t, bad)
			if err != nil {
				t.Fatalf("flip at %d: %v", at, err)
			}
			if len(damage) == 0 {
				t.Fatalf("flip at %d: no CorruptError", at)
			}
			var ce *CorruptError
			if !errors.As(damage[0], &ce) || ce.Offset != c.Offset {
				t.Fatalf("flip at %d: error %v, want one at %d", at, damage[0], c.Offset)
			}
			if want := len(exs) - c.Count; len(got) != want {
				t.Fatalf("flip at %d: got %d records, want %d", at, len(got), want)
			}
			// The index may still point at the damaged chunk, or the file
			// is scanned: either way All skips it and reports it.
			r, _ := NewReader(bytes.NewReader(bad), int64(len(bad)))
			n := 0
			r.All(context.Background(), func(*Exchange) error { n++; return nil })
			d := r.Damage()
			if n != len(exs)-c.Count || len(d) == 0 || !errors.As(d[0], &ce) || ce.Offset != c.Offset {
				t.Fatalf("flip at %d: All read %d records (want %d), damage %v", at, n, len(exs)-c.Count, d)
			}
		}
	}
	// Damage to META is reported, and every record still reads.
	bad := bytes.Clone(b)
	bad[fileHeaderSize+blockHeaderSize+2] ^= 1
	got, damage, err := readAll(t, bad)
	if err != nil || len(damage) != 1 || len(got) != len(exs) {
		t.Fatalf("META flip: %d records, damage %v, err %v", len(got), damage, err)
	}
}

func TestOpenRejects(t *testing.T) {
	b := encode(t, randomExchanges(1, 3), 10, nil)
	future := bytes.Clone(b)
	future[8], future[10] = 9, 9
	copy(future[12:16], le32(crc(future[:12])))
	cases := []struct {
		name string
		b    []byte
		want any
	}{
		{"not a tape", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrNotTape},
		{"empty", nil, new(*TruncatedError)},
		{"future version", future, new(*UnsupportedVersionError)},
		{"bad header crc", append([]byte{}, append(b[:12:12], 0, 0, 0, 0)...), new(*CorruptError)},
	}
	for _, c := range cases {
		_, err := NewReader(bytes.NewReader(c.b), int64(len(c.b)))
		switch want := c.want.(type) {
		case error:
			if !errors.Is(err, want) {
				t.Errorf("%s: got %v, want %v", c.name, err, want)
			}
		default:
			if err == nil || !errors.As(err, want) {
				t.Errorf("%s: got %v, want %T", c.name, err, want)
			}
		}
	}
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

func TestCreateWritesPartialThenRenames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.tape")
	w, err := Create(path, testMeta(), WriterOptions{ChunkRecords: 2, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	exs := randomExchanges(2, 5)
	for i := range exs {
		if err := w.Write(&exs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("final name exists before Close: %v", err)
	}
	// A crash now leaves the partial file with the two complete chunks.
	r, err := Open(path + PartialSuffix)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next(context.Background())
		if err != nil {
			if err != io.EOF {
				t.Fatalf("partial tape: %v", err)
			}
			break
		}
		n++
	}
	r.Close()
	if n != 4 {
		t.Fatalf("partial tape: %d records, want 4", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := os.Stat(path + PartialSuffix); !os.IsNotExist(err) {
		t.Fatalf("partial file left after Close")
	}
}

func TestFlushIntervalCutsChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tape")
	w, err := Create(path, testMeta(), WriterOptions{FlushInterval: 20 * time.Millisecond, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	exs := randomExchanges(4, 1)
	if err := w.Write(&exs[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := Open(path + PartialSuffix)
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := r.Chunks(context.Background())
		r.Close()
		if len(cs) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the record was never flushed to a chunk")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWriteRejectsOutOfBounds(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, testMeta(), WriterOptions{FlushInterval: -1})
	defer w.Close()
	bad := []Exchange{
		{Method: string(make([]byte, MaxMethod+1))},
		{Status: 1000},
		{ReqBody: []byte("abc"), ReqBodyLen: 1},
		{ReqStart: 10, ReqEnd: 5},
		{Flags: 1 << 20},
	}
	for i := range bad {
		if err := w.Write(&bad[i]); err == nil {
			t.Errorf("case %d: accepted", i)
		}
	}
}

func TestBusiest(t *testing.T) {
	r := Rates{Seconds: []int64{10, 11, 12, 20, 21, 50}, Counts: []int64{1, 5, 1, 4, 4, 9}}
	cases := []struct {
		w    int64
		want Window
	}{
		{1, Window{Start: 50, Seconds: 1, Count: 9}},
		{2, Window{Start: 50, Seconds: 2, Count: 9}},
		{3, Window{Start: 50, Seconds: 3, Count: 9}},
		{10, Window{Start: 11, Seconds: 10, Count: 10}},
		{11, Window{Start: 11, Seconds: 11, Count: 14}},
		{100, Window{Start: 10, Seconds: 100, Count: 24}},
	}
	for _, c := range cases {
		if got := r.Busiest(c.w); got != c.want {
			t.Errorf("Busiest(%d) = %+v, want %+v", c.w, got, c.want)
		}
	}
	if got := (Rates{}).Busiest(5); got.Count != 0 {
		t.Errorf("empty: %+v", got)
	}
}

func ExampleWriteFile() {
	path := filepath.Join(os.TempDir(), "example.tape")
	defer os.Remove(path)
	exs := []Exchange{{Method: "GET", Target: "/", Proto: "HTTP/1.1", Status: 200, ReqStart: 1e18, ReqEnd: 1e18}}
	if err := WriteFile(path, Meta{}, WriterOptions{NoSync: true}, exs); err != nil {
		panic(err)
	}
	r, _ := Open(path)
	defer r.Close()
	e, _ := r.Next(context.Background())
	fmt.Println(e.Method, e.Target, e.Status)
	// Output: GET / 200
}

func TestBusiestActive(t *testing.T) {
	// Two bursts a day apart: 3 s of 10 req/s, then 2 s of 50 req/s.
	r := Rates{Seconds: []int64{100, 101, 102, 86500, 86501}, Counts: []int64{10, 10, 10, 50, 50}}
	if g := r.Gaps(60); len(g) != 1 || g[0].Start != 103 || g[0].Seconds != 86500-103 {
		t.Fatalf("gaps %+v", g)
	}
	// Over wall-clock time a 60 s window holds one burst; over active time
	// with the gap kept at 60 s it still does; with a 1 s bound, both.
	if w := r.BusiestActive(60, 60); w.Start != 86500 || w.Count != 100 {
		t.Errorf("60 s, bound 60 s: %+v", w)
	}
	if w := r.BusiestActive(10, 1); w.Start != 100 || w.Count != 130 {
		t.Errorf("10 s, bound 1 s: %+v", w)
	}
	if w := r.BusiestActive(10, 0); w.Count != 100 {
		t.Errorf("10 s, no bound: %+v", w)
	}
	c, back := r.Compact(2)
	if c.Span() != 3+2+2 {
		t.Errorf("compacted span %d, want 7", c.Span())
	}
	for i, s := range c.Seconds {
		if back(s) != r.Seconds[i] {
			t.Errorf("second %d maps back to %d, want %d", s, back(s), r.Seconds[i])
		}
	}
}

// TestNoReplaceKeepsAFileThatAppeared: a file created at the tape's name
// while it is written is kept, and the tape stays NAME.partial.
func TestNoReplaceKeepsAFileThatAppeared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.tape")
	w, err := Create(path, testMeta(), WriterOptions{NoReplace: true, FlushInterval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	exs := randomExchanges(1, 3)
	for i := range exs {
		if err := w.Write(&exs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("close: %v, want the existing file kept", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatalf("the file that appeared was replaced: %q", b)
	}
	if _, err := Open(path + PartialSuffix); err != nil {
		t.Fatalf("the tape is not readable as .partial: %v", err)
	}
	// Without the file in the way, the tape gets its name.
	other := filepath.Join(t.TempDir(), "u.tape")
	w, _ = Create(other, testMeta(), WriterOptions{NoReplace: true, FlushInterval: -1, NoSync: true})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other + PartialSuffix); !os.IsNotExist(err) {
		t.Fatalf("the .partial is left: %v", err)
	}
	if _, err := Open(other); err != nil {
		t.Fatal(err)
	}
}
