package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
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
