package capture

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/tape"
)

// TestBudget: the CPU budget halves the sampling rate while the capture
// uses more than it, never below MinSamplePct, and doubles it back, never
// above the configured rate, only after a calm stretch.
func TestBudget(t *testing.T) {
	b := newBudget(0.5, 40)
	t0 := time.Unix(0, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	cpu := time.Duration(0)
	step := func(s, cores float64) float64 {
		cpu += time.Duration(cores * 2 * float64(time.Second))
		pct, _ := b.observe(at(s), cpu)
		return pct
	}
	if pct, _ := b.observe(t0, 0); pct != 0 {
		t.Fatalf("first look changed the rate to %v", pct)
	}
	steps := []struct {
		s, cores, want float64 // want 0: unchanged
	}{
		{2, 0.4, 0},
		{4, 0.9, 20},
		{6, 0.8, 10},
		{8, 0.6, 5},
		{10, 0.6, 2.5},
		{12, 0.6, 1.25},
		{14, 0.6, 1},
		{16, 0.6, 0}, // at the floor
	}
	for _, c := range steps {
		if got := step(c.s, c.cores); got != c.want {
			t.Fatalf("at %gs, %g cores: rate %v, want %v", c.s, c.cores, got, c.want)
		}
	}
	// Calm: 15 periods under a third of the budget before each doubling.
	s := 16.0
	var raised []float64
	for range 15 * 8 {
		s += 2
		if pct := step(s, 0.1); pct != 0 {
			raised = append(raised, pct)
		}
	}
	if fmt.Sprint(raised) != "[2 4 8 16 32 40]" {
		t.Errorf("raised to %v, want [2 4 8 16 32 40]", raised)
	}
	// A busy period in between restarts the calm count.
	b = newBudget(0.5, 100)
	b.pct = 50
	cpu, s = 0, 0
	b.observe(at(0), 0)
	for i := range 14 {
		s += 2
		if pct := step(s, 0.1); pct != 0 {
			t.Fatalf("raised after %d calm periods", i+1)
		}
	}
	step(s+2, 0.3) // neither busy nor calm
	for i := range 14 {
		s += 2
		if pct := step(s+2, 0.1); pct != 0 {
			t.Fatalf("raised after %d calm periods following a busier one", i+1)
		}
	}
}

func exchangeAt(id uint64, ts int64) *tape.Exchange {
	return &tape.Exchange{ConnID: id, ReqStart: ts, ReqEnd: ts + 1, Method: "GET", Target: "/", Proto: "HTTP/1.1",
		Client: netip.MustParseAddrPort("10.0.0.1:1000"), Server: netip.MustParseAddrPort("10.0.0.2:80"), Flags: tape.NoResponse}
}

// TestRetention: --keep deletes the oldest files after each rotation,
// never the one being written; --keep-size bounds their bytes; every
// deletion is counted.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	rot, err := NewRotator(filepath.Join(dir, "a.tape"), tape.Meta{}, tape.WriterOptions{NoSync: true}, Rotation{Every: time.Second, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := rot.Write(exchangeAt(uint64(i+1), int64(i)*int64(time.Second)+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rot.Close(tape.Stats{}); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	for i := range left {
		left[i] = filepath.Base(left[i])
	}
	if fmt.Sprint(left) != "[a-0004.tape a-0005.tape]" || fmt.Sprint(rot.Files()) != fmt.Sprint([]string{filepath.Join(dir, "a-0004.tape"), filepath.Join(dir, "a-0005.tape")}) {
		t.Errorf("left %v, files %v", left, rot.Files())
	}
	if in := rot.Info(); in.Opened != 5 || in.Deleted != 3 {
		t.Errorf("info %+v", in)
	}

	// By size: each file here is a few hundred bytes; a bound of one and a
	// half files keeps the current one and deletes every closed one that
	// does not fit.
	dir = t.TempDir()
	probe, err := NewRotator(filepath.Join(dir, "p.tape"), tape.Meta{}, tape.WriterOptions{NoSync: true}, Rotation{Every: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	probe.Write(exchangeAt(1, 1))
	probe.Close(tape.Stats{})
	fi, err := os.Stat(filepath.Join(dir, "p-0001.tape"))
	if err != nil {
		t.Fatal(err)
	}
	one := fi.Size()
	rot, err = NewRotator(filepath.Join(dir, "b.tape"), tape.Meta{}, tape.WriterOptions{NoSync: true}, Rotation{Every: time.Second, KeepSize: one * 5 / 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		rot.Write(exchangeAt(uint64(i+1), int64(i)*int64(time.Second)+1))
	}
	rot.Close(tape.Stats{})
	files := rot.Files()
	if len(files) != 2 || !strings.HasSuffix(files[1], "b-0006.tape") {
		t.Errorf("kept %v; want the last two of 6 files of %d bytes under %d bytes", files, one, one*5/2)
	}
}

// TestSampleChangeStartsAFile: a change of the sampling rate closes the
// current file and starts one whose metadata states the new rate.
func TestSampleChangeStartsAFile(t *testing.T) {
	dir := t.TempDir()
	meta := tape.Meta{Source: tape.Source{Kind: "live", SamplePct: 50}}
	rot, err := NewRotator(filepath.Join(dir, "s.tape"), meta, tape.WriterOptions{NoSync: true}, Rotation{Every: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rot.Write(exchangeAt(1, 1))
	if err := rot.SetSamplePct(25, "the capture used 0.9 cores, above --max-cpu 0.5"); err != nil {
		t.Fatal(err)
	}
	rot.Write(exchangeAt(2, 2))
	rot.Close(tape.Stats{})
	for i, want := range []float64{50, 25} {
		r, err := tape.Open(rot.Files()[i])
		if err != nil {
			t.Fatal(err)
		}
		m := r.Meta()
		r.Close()
		if m.Source.SamplePct != want {
			t.Errorf("file %d states %v%%, want %v%%", i+1, m.Source.SamplePct, want)
		}
		if i == 1 && !strings.Contains(strings.Join(m.Notes, "\n"), "sampling set to 25% of connections: the capture used 0.9 cores") {
			t.Errorf("file 2 notes %q", m.Notes)
		}
	}
	unrotated, err := NewRotator(filepath.Join(dir, "u.tape"), meta, tape.WriterOptions{NoSync: true}, Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	defer unrotated.Close(tape.Stats{})
	if err := unrotated.SetSamplePct(25, "x"); err == nil {
		t.Error("a single file cannot change its rate")
	}
}
