package capture

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// benchCapture runs whole captures of data (a pcap in memory) into a tape
// written to io.Discard, reporting MB/s of pcap and packets/s.
func benchCapture(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var packets int64
	for b.Loop() {
		src, err := NewReader("bench", bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		w, err := tape.NewWriter(io.Discard, tape.Meta{}, tape.WriterOptions{FlushInterval: -1, NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		st, err := Run(context.Background(), src, Options{}, w, nil)
		if err != nil {
			b.Fatal(err)
		}
		w.Close()
		packets = st.Packets
	}
	b.ReportMetric(float64(packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkCaptureShared is the largest shared capture (real browsing).
func BenchmarkCaptureShared(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(testenv.SharedPcaps(b), "http-browsing-338req-large.pcap"))
	if err != nil {
		b.Fatal(err)
	}
	benchCapture(b, data)
}

// BenchmarkCaptureKeepAlive is 64 MiB of generated keep-alive HTTP, the
// same traffic as bench/capture.sh's 512 MiB file.
func BenchmarkCaptureKeepAlive(b *testing.B) {
	var buf bytes.Buffer
	if err := pcapgen.KeepAlive(&buf, 64<<20, 64, 200); err != nil {
		b.Fatal(err)
	}
	benchCapture(b, buf.Bytes())
}

func BenchmarkDecodeLink(b *testing.B) {
	s := pcapgen.Segment{Src: netip.MustParseAddrPort("10.0.0.1:1234"), Dst: netip.MustParseAddrPort("10.0.0.2:80"), Seq: 1, Flags: pcapgen.ACK, Payload: make([]byte, 1448)}
	pkt := pcapgen.AppendFrame(nil, pcapgen.Link{Type: layers.LinkTypeEthernet, VLANs: []uint16{10}}, s)
	var f frame
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if decodeLink(layers.LinkTypeEthernet, pkt, &f) != decodedTCP {
			b.Fatal("not TCP")
		}
	}
}

func BenchmarkParseHead(b *testing.B) {
	raw := pcapgen.Request("GET", "/api/items/42?view=full", []string{"Accept: application/json", "User-Agent: bench/1.0", "Cookie: session=1", "Accept-Encoding: gzip"}, nil)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if h := parseHead(raw, head{request: true}); h.method != "GET" {
			b.Fatal("bad head")
		}
	}
}
