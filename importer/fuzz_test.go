package importer

import (
	"bytes"
	"context"
	"testing"

	"github.com/herd-replay/herd/tape"
)

// checkSink checks every exchange against the tape's bounds and
// invariants, as tape.Writer would, and counts them.
type checkSink struct {
	t *testing.T
	n int64
}

func (s *checkSink) Write(e *tape.Exchange) error {
	s.n++
	if err := e.Validate(); err != nil {
		s.t.Fatalf("exchange %d/%d fails the tape's bounds: %v", e.ConnID, e.Seq, err)
	}
	if e.HasResponse() && (e.RespStart < e.ReqStart || e.RespEnd < e.RespStart) {
		s.t.Fatalf("exchange %d/%d: response times %d..%d before the request at %d", e.ConnID, e.Seq, e.RespStart, e.RespEnd, e.ReqStart)
	}
	if e.Method == "" {
		s.t.Fatalf("exchange %d/%d without a method", e.ConnID, e.Seq)
	}
	return nil
}

// fuzzImport runs one importer over data and checks that what it counts
// adds up: every exchange written was counted, and none came from nothing.
func fuzzImport(t *testing.T, f Format, data []byte) {
	sink := &checkSink{t: t}
	st, _, err := Run(context.Background(), f, []Source{{Name: "fuzz", R: bytes.NewReader(data)}}, Options{MaxBody: 64}, sink)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if st.Exchanges != sink.n {
		t.Fatalf("counted %d exchanges, wrote %d", st.Exchanges, sink.n)
	}
	if st.Exchanges != st.Responses+st.NoResponse {
		t.Fatalf("%d exchanges but %d with and %d without a response", st.Exchanges, st.Responses, st.NoResponse)
	}
	if f != GoReplay && st.Exchanges+st.Malformed() > st.Entries {
		t.Fatalf("%d exchanges and %d malformed from %d entries", st.Exchanges, st.Malformed(), st.Entries)
	}
}

func FuzzGor(f *testing.F) {
	f.Add([]byte("1 b070483a7f0000011258f248 1796133688327559749 0\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\n" + gorSep + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzImport(t, GoReplay, data) })
}

func FuzzHAR(f *testing.F) {
	f.Add([]byte(`{"log":{"entries":[{"startedDateTime":"2023-03-30T00:00:54.250Z","time":1,"request":{"method":"GET","url":"http://a/b","headers":[]},"response":{"status":200,"headers":[],"content":{"size":0}}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzImport(t, HAR, data) })
}

func FuzzCLF(f *testing.F) {
	f.Add([]byte(`127.0.0.1 - - [01/Dec/2026:14:01:28 +0000] "GET / HTTP/1.1" 200 3 "-" "curl" 0.001` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzImport(t, CombinedLog, data) })
}

func FuzzALB(f *testing.F) {
	f.Add([]byte(`http 2018-07-02T22:23:00.186641Z app/lb/1 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn "Root=1" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-"` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzImport(t, ALBLog, data) })
}

// FuzzDetect: detection never panics, and a format it names imports.
func FuzzDetect(f *testing.F) {
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		format, r, err := Detect(bytes.NewReader(data))
		if err != nil {
			return
		}
		st, _, err := Run(context.Background(), format, []Source{{Name: "fuzz", R: r}}, Options{}, &checkSink{t: t})
		if err != nil {
			t.Fatalf("%v detected, import failed: %v", format, err)
		}
		_ = st
	})
}
