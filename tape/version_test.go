package tape

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadableVersions(t *testing.T) {
	tests := []struct {
		v, compat, lo, hi uint16
		want              bool
	}{
		{1, 1, 1, 2, true},  // a version 1 tape, read by this herd
		{2, 2, 1, 2, true},  // what this herd writes
		{2, 2, 1, 1, false}, // ... which a version 1 herd refuses
		{3, 2, 1, 2, true},  // a later revision that version 2 readers may read
		{3, 3, 1, 2, false}, // one they may not
		{0, 0, 1, 2, false},
	}
	for _, tt := range tests {
		if got := readable(tt.v, tt.compat, tt.lo, tt.hi); got != tt.want {
			t.Errorf("readable(v%d compat %d, reader %d..%d) = %v, want %v", tt.v, tt.compat, tt.lo, tt.hi, got, tt.want)
		}
	}
}

// TestWritesVersion2Header checks the header a version 1 reader checks:
// version 2, readable only by version 2 readers, so an older herd refuses
// the tape with UnsupportedVersionError instead of replaying HTTP/2 streams
// as HTTP/1.x.
func TestWritesVersion2Header(t *testing.T) {
	b := encode(t, randomExchanges(3, 4), 2, nil)
	if v, compat := le16(b[8:]), le16(b[10:]); v != 2 || compat != 2 {
		t.Fatalf("header version %d compat %d, want 2 and 2", v, compat)
	}
	// The same file with the header rewritten as version 3, compat 3.
	c := bytes.Clone(b)
	c[8], c[10] = 3, 3
	copy(c[12:16], le32(crc(c[:12])))
	_, err := NewReader(bytes.NewReader(c), int64(len(c)))
	var ue *UnsupportedVersionError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("reading a version 3 tape: %v, want UnsupportedVersionError naming version 3", err)
	}
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

// TestReadsVersion1Tape reads a tape written in format version 1 before
// version 2 existed: the fuzz seed committed then, a clean tape of 12
// records.
func TestReadsVersion1Tape(t *testing.T) {
	raw, err := os.ReadFile("testdata/fuzz/FuzzReader/v1-seed-00")
	if err != nil {
		t.Fatal(err)
	}
	lit := strings.TrimSuffix(strings.TrimPrefix(string(raw), "go test fuzz v1\n[]byte("), ")\n")
	text, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(text)
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Meta(); m.FormatVersion != 1 || r.MetaErr() != nil || !r.Indexed() {
		t.Fatalf("meta %+v (err %v, indexed %v), want a clean format version 1 tape", m, r.MetaErr(), r.Indexed())
	}
	n := 0
	err = r.All(context.Background(), func(e *Exchange) error {
		n++
		if e.Stream != 0 || e.ReqTrailer != nil || e.RespTrailer != nil {
			t.Fatalf("version 1 record decoded with version 2 fields: %+v", e)
		}
		return nil
	})
	if err != nil || n != 12 || len(r.Damage()) != 0 {
		t.Fatalf("read %d records, err %v, damage %v; want 12", n, err, r.Damage())
	}
}

// TestDamagedMetaIsReported flips a byte in the META payload: the damage is
// reported by MetaErr, Damage and the summary, Meta is not presented as
// fact, and every record is still read.
func TestDamagedMetaIsReported(t *testing.T) {
	exs := randomExchanges(5, 40)
	b := encode(t, exs, 10, nil)
	b[fileHeaderSize+blockHeaderSize+3] ^= 0x55 // inside META's payload
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if r.MetaErr() == nil {
		t.Fatal("MetaErr is nil for a damaged META block")
	}
	if d := r.Damage(); len(d) != 1 || !strings.Contains(d[0].Error(), "metadata") {
		t.Fatalf("damage %v, want the metadata block named", d)
	}
	s, err := Summarize(context.Background(), r, 60)
	if err != nil {
		t.Fatal(err)
	}
	if s.MetaErr == nil || s.Requests != int64(len(exs)) {
		t.Fatalf("summary: meta err %v, %d requests; want the damage and %d", s.MetaErr, s.Requests, len(exs))
	}
}

// TestChunkBounds checks that chunks are cut by size and by recorded time,
// not only by count: a small capture written in a moment still spans
// several chunks, so one flipped byte cannot cost all of it.
func TestChunkBounds(t *testing.T) {
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	mk := func(n int, every time.Duration, body int) []Exchange {
		out := make([]Exchange, n)
		for i := range out {
			start := base + int64(i)*int64(every)
			out[i] = Exchange{ConnID: uint64(i % 7), Seq: uint32(i), ReqStart: start, ReqEnd: start,
				Method: "POST", Target: "/orders", Proto: HTTP11, ReqBody: bytes.Repeat([]byte{'x'}, body),
				ReqBodyLen: int64(body), Flags: NoResponse}
		}
		return out
	}
	chunks := func(exs []Exchange) int {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, testMeta(), WriterOptions{FlushInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		for i := range exs {
			if err := w.Write(&exs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := r.Chunks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	// 1000 requests of 1 KiB within one recorded second: about 1 MiB raw.
	if got := chunks(mk(1000, time.Millisecond, 1024)); got < 4 {
		t.Errorf("1 MiB of records in one second: %d chunks, want at least 4 (cut by size)", got)
	}
	// 100 tiny requests over 99 s of recording.
	if got := chunks(mk(100, time.Second, 0)); got < 9 {
		t.Errorf("100 requests over 99 s: %d chunks, want at least 9 (cut by recorded time)", got)
	}
}
