package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/tape"
)

func TestDetectFormat(t *testing.T) {
	for _, c := range []struct {
		head   []byte
		format Format
		gz     bool
	}{
		{[]byte{0xd4, 0xc3, 0xb2, 0xa1}, FormatPcap, false},
		{[]byte{0xa1, 0xb2, 0xc3, 0xd4}, FormatPcap, false},
		{[]byte{0x4d, 0x3c, 0xb2, 0xa1}, FormatPcap, false},
		{[]byte{0xa1, 0xb2, 0x3c, 0x4d}, FormatPcap, false},
		{[]byte{0x0a, 0x0d, 0x0d, 0x0a}, FormatPcapNG, false},
		{[]byte{0x1f, 0x8b, 0x08, 0x00}, FormatUnknown, true},
		{[]byte("GET "), FormatUnknown, false},
		{[]byte{0xd4}, FormatUnknown, false},
	} {
		f, gz := DetectFormat(c.head)
		if f != c.format || gz != c.gz {
			t.Errorf("DetectFormat(% x) = %v, %v; want %v, %v", c.head, f, gz, c.format, c.gz)
		}
	}
}

func readAll(t *testing.T, name string, data []byte) ([]tape.Exchange, Stats, error) {
	t.Helper()
	src, err := NewReader(name, bytes.NewReader(data))
	if err != nil {
		return nil, Stats{}, err
	}
	defer src.Close()
	var sink memSink
	st, err := Run(t.Context(), src, Options{}, &sink, nil)
	return sink.ex, st, err
}

// bigEndian rewrites a little-endian microsecond pcap in big-endian byte
// order, headers and record headers alike.
func bigEndian(le []byte) []byte {
	be := append([]byte(nil), le...)
	swap32 := func(b []byte) { binary.BigEndian.PutUint32(b, binary.LittleEndian.Uint32(b)) }
	swap16 := func(b []byte) { binary.BigEndian.PutUint16(b, binary.LittleEndian.Uint16(b)) }
	swap32(be[0:])
	swap16(be[4:])
	swap16(be[6:])
	for _, o := range []int{8, 12, 16, 20} {
		swap32(be[o:])
	}
	for off := 24; off+16 <= len(be); {
		n := int(binary.LittleEndian.Uint32(le[off+8:]))
		for i := range 4 {
			swap32(be[off+4*i:])
		}
		off += 16 + n
	}
	return be
}

// TestFileVariants reads one capture as plain, gzip-compressed, big-endian
// and cut short: the same exchanges (all but the cut one) come out.
func TestFileVariants(t *testing.T) {
	plain, err := os.ReadFile(filepath.Join("testdata", "edge", "pipelining.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := readAll(t, "plain", plain)
	if err != nil || len(want) != 6 {
		t.Fatalf("plain: %d exchanges, %v", len(want), err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	for name, data := range map[string][]byte{"gzip": gz.Bytes(), "big-endian": bigEndian(plain)} {
		got, _, err := readAll(t, name, data)
		if err != nil || len(got) != len(want) || got[5].ReqStart != want[5].ReqStart || got[5].RespBodyHash != want[5].RespBodyHash {
			t.Errorf("%s: %d exchanges, %v", name, len(got), err)
		}
	}
	// Cut inside the last record: everything before it is read, and the
	// cut is counted.
	got, st, err := readAll(t, "cut", plain[:len(plain)-10])
	if err != nil || st.TruncatedFiles != 1 || len(got) != 6 {
		t.Errorf("cut file: %d exchanges, truncated %d, %v", len(got), st.TruncatedFiles, err)
	}
}

// ngBlock appends a pcapng block of type typ with body (padded to 4).
func ngBlock(b []byte, typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, n)
}

// TestPcapNGInterfaces writes a pcapng by hand whose two interfaces have
// different link types and timestamp resolutions (if_tsresol 6 and 9),
// with one connection split across them, and reads it as one connection.
func TestPcapNGInterfaces(t *testing.T) {
	var b []byte
	shb := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	shb = append(shb, 1, 0, 0, 0)
	shb = binary.LittleEndian.AppendUint64(shb, ^uint64(0))
	b = ngBlock(b, 0x0a0d0d0a, shb)
	idb := func(link layers.LinkType, resol byte) []byte {
		body := binary.LittleEndian.AppendUint16(nil, uint16(link))
		body = append(body, 0, 0)
		body = binary.LittleEndian.AppendUint32(body, 65535)
		body = append(body, 9, 0, 1, 0, resol, 0, 0, 0) // if_tsresol
		return append(body, 0, 0, 0, 0)                 // opt_endofopt
	}
	b = ngBlock(b, 1, idb(layers.LinkTypeEthernet, 6)) // interface 0: microseconds
	b = ngBlock(b, 1, idb(layers.LinkTypeRaw, 9))      // interface 1: nanoseconds
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	epb := func(iface uint32, ts uint64, frame []byte) {
		body := binary.LittleEndian.AppendUint32(nil, iface)
		body = binary.LittleEndian.AppendUint32(body, uint32(ts>>32))
		body = binary.LittleEndian.AppendUint32(body, uint32(ts))
		body = binary.LittleEndian.AppendUint32(body, uint32(len(frame)))
		body = binary.LittleEndian.AppendUint32(body, uint32(len(frame)))
		body = append(body, frame...)
		b = ngBlock(b, 6, body)
	}
	us := func(d time.Duration) uint64 { return uint64(base.Add(d).UnixMicro()) }
	ns := func(d time.Duration) uint64 { return uint64(base.Add(d).UnixNano()) }
	cli, srv := netip.MustParseAddrPort("192.0.2.1:50000"), netip.MustParseAddrPort("192.0.2.2:80")
	eth, rawLink := pcapgen.Link{Type: layers.LinkTypeEthernet}, pcapgen.Link{Type: layers.LinkTypeRaw}
	req := pcapgen.Request("GET", "/split", nil, nil)
	resp := pcapgen.Response(200, nil, []byte("across two interfaces"))
	epb(0, us(0), pcapgen.AppendFrame(nil, eth, pcapgen.Segment{Src: cli, Dst: srv, Seq: 100, Flags: pcapgen.SYN}))
	epb(1, ns(1001), pcapgen.AppendFrame(nil, rawLink, pcapgen.Segment{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: pcapgen.SYN | pcapgen.ACK}))
	epb(0, us(2*time.Millisecond), pcapgen.AppendFrame(nil, eth, pcapgen.Segment{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: pcapgen.ACK | pcapgen.PSH, Payload: req}))
	epb(1, ns(2*time.Millisecond+1234567), pcapgen.AppendFrame(nil, rawLink, pcapgen.Segment{Src: srv, Dst: cli, Seq: 901, Ack: 101 + uint32(len(req)), Flags: pcapgen.ACK | pcapgen.PSH | pcapgen.FIN, Payload: resp}))
	epb(0, us(5*time.Millisecond), pcapgen.AppendFrame(nil, eth, pcapgen.Segment{Src: cli, Dst: srv, Seq: 101 + uint32(len(req)), Flags: pcapgen.ACK | pcapgen.FIN}))

	if f, _ := DetectFormat(b); f != FormatPcapNG {
		t.Fatalf("format %v", f)
	}
	ex, st, err := readAll(t, "ng", b)
	if err != nil || len(ex) != 1 || st.TCPConnections != 1 {
		t.Fatalf("%d exchanges on %d connections, %v", len(ex), st.TCPConnections, err)
	}
	e := ex[0]
	if e.Status != 200 || e.RespBodyLen != int64(len("across two interfaces")) || e.Client != cli {
		t.Errorf("got %+v", e)
	}
	if e.ReqStart != base.Add(2*time.Millisecond).UnixNano() || e.RespStart != base.Add(2*time.Millisecond+1234567).UnixNano() {
		t.Errorf("request at %d, response at %d: per-interface resolutions not applied", e.ReqStart-base.UnixNano(), e.RespStart-base.UnixNano())
	}
}

func TestUnsupportedLink(t *testing.T) {
	var b bytes.Buffer
	pw := pcapgo.NewWriter(&b)
	pw.WriteFileHeader(65535, layers.LinkType(147))
	_, _, err := readAll(t, "user0", b.Bytes())
	var ule *UnsupportedLinkError
	if !errors.As(err, &ule) || !strings.Contains(err.Error(), "unsupported link type 147") {
		t.Errorf("got %v, want an unsupported link type error naming 147", err)
	}
	_, _, err = readAll(t, "text", []byte("GET / HTTP/1.1\r\n\r\n"))
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Errorf("got %v, want a FormatError", err)
	}
}

// writePcap writes a capture generated by write to a file in dir, its
// first packet at start, and returns its path.
func writePcap(t *testing.T, dir, name string, start time.Time, write func(w *pcapgen.Writer) error) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, genPcap(t, ethernet, start, 0, write), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// exchangeOn writes one exchange on its own connection from cli.
func exchangeOn(cli, target string) func(w *pcapgen.Writer) error {
	return func(w *pcapgen.Writer) error {
		return simple(w, cli, "10.0.0.2:80", pcapgen.Request("GET", target, nil, nil), pcapgen.Response(200, nil, []byte(target)))
	}
}

func targets(ex []tape.Exchange) string {
	var b strings.Builder
	for _, e := range ex {
		b.WriteString(e.Target)
	}
	return b.String()
}

// TestOpenFiles reads several files, in the order given, as one capture.
func TestOpenFiles(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	var packets int64
	for i, target := range []string{"/a", "/b", "/c"} {
		p := writePcap(t, dir, fmt.Sprintf("%d.pcap", i), t0.Add(time.Duration(i)*time.Second), exchangeOn(fmt.Sprintf("10.0.0.1:%d", 40000+i), target))
		_, st := captureFile(t, p, Options{})
		paths, packets = append(paths, p), packets+st.Packets
	}
	ex, st := captureFiles(t, paths, Options{})
	if got := targets(ex); got != "/a/b/c" || st.TCPConnections != 3 || st.Responses != 3 {
		t.Errorf("got %q from %d connections, %d responses; want /a/b/c from 3, 3", got, st.TCPConnections, st.Responses)
	}
	if st.Packets != packets {
		t.Errorf("%d packets read, the files hold %d", st.Packets, packets)
	}
	// A later file is opened when it is reached: a missing one is an
	// error of Next, after the files before it.
	src, err := OpenFiles([]string{paths[0], filepath.Join(dir, "missing.pcap")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var sink memSink
	if st, err := Run(t.Context(), src, Options{}, &sink, nil); !errors.Is(err, os.ErrNotExist) || len(sink.ex) != 1 {
		t.Errorf("then a missing file: %d exchanges (stats %+v), %v; want 1 and the missing file", len(sink.ex), st, err)
	}
	if _, err := OpenFiles([]string{filepath.Join(dir, "missing.pcap"), paths[0]}); err == nil {
		t.Error("a missing first file was not reported by OpenFiles")
	}
}

// TestOpenFilesTruncated: a file cut inside a packet record is reported,
// with its name, and reading goes on with the next file.
func TestOpenFilesTruncated(t *testing.T) {
	dir := t.TempDir()
	cut := writePcap(t, dir, "cut.pcap", t0, func(w *pcapgen.Writer) error {
		if err := exchangeOn("10.0.0.1:40000", "/a")(w); err != nil {
			return err
		}
		return exchangeOn("10.0.0.1:40001", "/b")(w)
	})
	data, err := os.ReadFile(cut)
	if err != nil {
		t.Fatal(err)
	}
	// Inside the last record: the final ACK of /b's connection.
	if err := os.WriteFile(cut, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	whole := writePcap(t, dir, "whole.pcap", t0.Add(time.Second), exchangeOn("10.0.0.1:40002", "/c"))

	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{cut, whole}, "/a/b/c"},
		{[]string{whole, cut}, "/c/a/b"},
	} {
		// What the source says: one error naming the cut file, then the
		// packets after it, then the end.
		src, err := OpenFiles(c.paths)
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		var errs []error
		after := 0
		for {
			err := src.Next(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if len(errs) > 0 {
				after++
			}
		}
		src.Close()
		if len(errs) != 1 || !errors.Is(errs[0], ErrTruncatedFile) || !strings.Contains(errs[0].Error(), cut) {
			t.Errorf("%v: errors %v, want one ErrTruncatedFile naming %s", c.paths, errs, cut)
		}
		if c.paths[0] == cut && after == 0 {
			t.Errorf("%v: no packet read after the cut file", c.paths)
		}
		// What the capture makes of it: every exchange, the cut counted.
		ex, st := captureFiles(t, c.paths, Options{})
		if got := targets(ex); got != c.want || st.TruncatedFiles != 1 {
			t.Errorf("%v: got %q, %d truncated files; want %q, 1", c.paths, got, st.TruncatedFiles, c.want)
		}
	}
}

// TestOpenFilesConnectionAcrossFiles: a connection that a rotation split
// in two (request in one file, response in the next) is one connection,
// its request paired with its response, as if the files were one.
func TestOpenFilesConnectionAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	const cli, srv = "10.0.0.1:40000", "10.0.0.2:80"
	var cseq, sseq uint32
	first := writePcap(t, dir, "1.pcap", t0, func(w *pcapgen.Writer) error {
		c := w.NewConn(cli, srv, 1000, 5000)
		if err := c.Handshake(); err != nil {
			return err
		}
		err := c.Send(true, pcapgen.Request("POST", "/split", nil, body(3000, 'q')))
		cseq, sseq = c.CSeq, c.SSeq
		return err
	})
	second := writePcap(t, dir, "2.pcap", t0.Add(time.Second), func(w *pcapgen.Writer) error {
		c := w.NewConn(cli, srv, cseq, sseq)
		if err := c.Send(false, pcapgen.Response(200, nil, body(5000, 'r'))); err != nil {
			return err
		}
		return c.Close()
	})
	ex, st := captureFiles(t, []string{first, second}, Options{})
	if len(ex) != 1 || st.TCPConnections != 1 || st.OrphanResponses != 0 {
		t.Fatalf("%d exchanges on %d connections, %d orphan responses; want 1 on 1, none", len(ex), st.TCPConnections, st.OrphanResponses)
	}
	e := ex[0]
	if e.Target != "/split" || e.Flags != 0 || e.ReqBodyLen != 3000 || e.RespBodyLen != 5000 || e.RespBodyHash != crc(body(5000, 'r')) {
		t.Errorf("got %s flags %b, bodies %d and %d", e.Target, e.Flags, e.ReqBodyLen, e.RespBodyLen)
	}
	// Read apart, the files lose the pairing: that is what OpenFiles is for.
	if ex, _ := captureFile(t, first, Options{}); len(ex) != 1 || ex[0].HasResponse() {
		t.Errorf("first file alone: %d exchanges, want its request without response", len(ex))
	}
	if _, st := captureFile(t, second, Options{}); st.OrphanResponses != 1 {
		t.Errorf("second file alone: %d orphan responses, want 1", st.OrphanResponses)
	}
}
