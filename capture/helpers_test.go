package capture

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/tape"
)

// memSink collects exchanges, copying them (the engine reuses its own).
type memSink struct{ ex []tape.Exchange }

func (m *memSink) Write(e *tape.Exchange) error {
	c := *e
	c.ReqHeader = append([]tape.Field(nil), e.ReqHeader...)
	c.RespHeader = append([]tape.Field(nil), e.RespHeader...)
	c.ReqBody = append([]byte(nil), e.ReqBody...)
	m.ex = append(m.ex, c)
	return nil
}

// testConn makes an engine writing to sink and one live connection on it,
// from 10.0.0.1:40000 (half 0, the client) to 10.0.0.2:80, for tests that
// feed the parser directly.
func testConn(t testing.TB, opts Options, sink Sink) *conn {
	t.Helper()
	e, err := newEngine(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	var tcp layers.TCP
	tcp.SrcPort, tcp.DstPort = 40000, 80
	c := newConn(e, 1, gopacket.NewFlow(layers.EndpointIPv4, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}), &tcp)
	e.live[c] = struct{}{}
	return c
}

// captureFile runs a capture of path into memory.
func captureFile(t testing.TB, path string, opts Options) ([]tape.Exchange, Stats) {
	t.Helper()
	return captureFiles(t, []string{path}, opts)
}

// captureFiles runs a capture of files read as one (OpenFiles, as the
// CLI reads them) into memory.
func captureFiles(t testing.TB, paths []string, opts Options) ([]tape.Exchange, Stats) {
	t.Helper()
	src, err := OpenFiles(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var sink memSink
	st, err := Run(context.Background(), src, opts, &sink, nil)
	if err != nil {
		t.Fatalf("capture %s: %v", filepath.Base(paths[0]), err)
	}
	return sink.ex, st
}
