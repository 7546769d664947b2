package importer

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/tapetest"
	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// expectation is one row of shared/testdata/imports/expected.tsv.
type expectation struct {
	file                          string
	requests, withResp, malformed int64 // withResp -1: not applicable
}

func readExpected(t *testing.T, dir string) []expectation {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []expectation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) < 4 {
			t.Fatalf("expected.tsv: short row %q", line)
		}
		num := func(s string) int64 {
			if s == "-" {
				return -1
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("expected.tsv: %q in row %q", s, line)
			}
			return n
		}
		out = append(out, expectation{c[0], num(c[1]), num(c[2]), num(c[3])})
	}
	if len(out) == 0 {
		t.Fatal("expected.tsv holds no rows")
	}
	return out
}

// importFile imports one file into a tape on disk and reads it back.
func importFile(t *testing.T, path string, opts Options) (Stats, Result, []tape.Exchange) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, srcs, err := DetectAll([]Source{{Name: path, R: f}})
	if err != nil {
		t.Fatalf("detect %s: %v", path, err)
	}
	out := filepath.Join(t.TempDir(), "out.tape")
	w, err := tape.Create(out, tape.Meta{Source: tape.Source{Kind: format.Kind()}}, tape.WriterOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st, res, err := Run(context.Background(), format, srcs, opts, w)
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	w.SetStats(st.Tape())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	exs, _ := tapetest.Read(t, out)
	return st, res, exs
}

// TestSharedExpected imports every shared file and compares the counts
// with expected.tsv, which two independent counting programs produced.
func TestSharedExpected(t *testing.T) {
	dir := testenv.SharedImports(t)
	want := map[string]Format{"har": HAR, "gor": GoReplay}
	for _, x := range readExpected(t, dir) {
		t.Run(x.file, func(t *testing.T) {
			st, _, exs := importFile(t, filepath.Join(dir, x.file), Options{})
			sub := strings.SplitN(x.file, "/", 2)[0]
			if f, ok := want[sub]; ok && st.Format != f {
				t.Errorf("format %v, want %v", st.Format, f)
			}
			if sub == "logs" && st.Format != CombinedLog && st.Format != ALBLog {
				t.Errorf("format %v, want an access log", st.Format)
			}
			if st.Exchanges != x.requests || int64(len(exs)) != x.requests {
				t.Errorf("requests: got %d (tape holds %d), want %d", st.Exchanges, len(exs), x.requests)
			}
			if x.withResp >= 0 && st.Responses != x.withResp {
				t.Errorf("with response: got %d, want %d", st.Responses, x.withResp)
			}
			if got := st.Malformed(); got != x.malformed {
				t.Errorf("malformed: got %d (%v), want %d", got, st.Discarded, x.malformed)
			}
		})
	}
}

// TestGorConnections: GoReplay 1.3's ids carry the client's address, so
// the requests hey sent over 4 connections (SOURCES.md: hey -n 100 -c 4)
// come back as 4 connections in order; a pre-1.2 file's ids carry none,
// and every request has a connection of its own.
func TestGorConnections(t *testing.T) {
	dir := testenv.SharedImports(t)
	_, res, exs := importFile(t, filepath.Join(dir, "gor/goreplay-1.3-local-req-resp.gor"), Options{})
	byConn := map[uint64][]tape.Exchange{}
	for _, e := range exs {
		if e.Target == "/api/ping?from=hey" {
			byConn[e.ConnID] = append(byConn[e.ConnID], e)
		}
	}
	if len(byConn) != 4 {
		t.Fatalf("hey's GETs on %d connections, want 4", len(byConn))
	}
	total := 0
	for id, es := range byConn {
		total += len(es)
		sort.Slice(es, func(i, j int) bool { return es[i].Seq < es[j].Seq })
		for i := 1; i < len(es); i++ {
			if es[i].Seq <= es[i-1].Seq || es[i].ReqStart <= es[i-1].ReqStart {
				t.Errorf("connection %d: request seq %d at %d not after seq %d at %d", id, es[i].Seq, es[i].ReqStart, es[i-1].Seq, es[i-1].ReqStart)
			}
			if es[i].Client != es[0].Client {
				t.Errorf("connection %d: clients %v and %v", id, es[0].Client, es[i].Client)
			}
		}
	}
	if total != 100 {
		t.Fatalf("%d of hey's 100 GETs", total)
	}
	if len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "client address") {
		t.Errorf("notes %q do not say how connections were formed", res.Notes)
	}

	st, res, exs := importFile(t, filepath.Join(dir, "gor/gor-pre-1.2-browser-session-req-only.gor"), Options{})
	conns := map[uint64]bool{}
	for _, e := range exs {
		conns[e.ConnID] = true
	}
	if len(conns) != len(exs) || st.Grouped != 0 || len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "no client address") {
		t.Fatalf("%d exchanges on %d connections, grouped %d, notes %q", len(exs), len(conns), st.Grouped, res.Notes)
	}
}
