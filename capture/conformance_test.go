package capture

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConformance captures every shared real-world capture and compares
// the exchanges written with the hand-checked counts of expected.tsv.
func TestConformance(t *testing.T) {
	dir := sharedPcaps(t)
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 {
			t.Fatalf("expected.tsv: bad line %q", line)
		}
		want, err := strconv.Atoi(cols[1])
		if err != nil {
			t.Fatalf("expected.tsv: bad count in %q", line)
		}
		name := cols[0]
		n++
		t.Run(name, func(t *testing.T) {
			ex, st := captureFile(t, filepath.Join(dir, name), Options{})
			if len(ex) != want {
				t.Errorf("got %d exchanges, want %d (stats %+v)", len(ex), want, st)
			}
			if st.Exchanges != int64(len(ex)) {
				t.Errorf("Stats.Exchanges %d, exchanges written %d", st.Exchanges, len(ex))
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 25 {
		t.Errorf("expected.tsv lists %d captures, want 25", n)
	}
}
