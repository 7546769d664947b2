// Package pcapgen writes synthetic TCP conversations as pcap files: the
// edge-case captures of the capture tests, fuzz seeds, and the large
// keep-alive capture of the benchmarks. It builds link, IP and TCP headers
// by hand (with correct checksums) so that every packet is exactly what a
// test asks for: retransmitted, reordered, lost, tagged, truncated.
package pcapgen

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

// Link describes the framing of every packet of a file.
type Link struct {
	Type layers.LinkType
	// VLANs are 802.1Q/802.1ad tags, outermost first (Ethernet only); an
	// outer tag of a stack uses 802.1ad (0x88a8).
	VLANs []uint16
	// NullAF is the address family for NULL/LOOP links of IPv6 packets
	// (24, 28 or 30); IPv4 uses 2.
	NullAF uint32
}

// Writer writes packets to a pcap file.
type Writer struct {
	pw      *pcapgo.Writer
	link    Link
	now     time.Time
	snaplen int
	buf     []byte
}

// NewWriter starts a classic pcap file (microsecond timestamps) at start
// time t0. snaplen 0 means 262144; a smaller one cuts packets as tcpdump -s
// would.
func NewWriter(w io.Writer, link Link, t0 time.Time, snaplen int) (*Writer, error) {
	if snaplen <= 0 {
		snaplen = 262144
	}
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(uint32(snaplen), link.Type); err != nil {
		return nil, err
	}
	return &Writer{pw: pw, link: link, now: t0, snaplen: snaplen}, nil
}

// Advance moves the clock of the next packets forward (or, with a
// negative d, back: a clock step on the capture host).
func (w *Writer) Advance(d time.Duration) { w.now = w.now.Add(d) }

// Now is the timestamp the next packet gets.
func (w *Writer) Now() time.Time { return w.now }

// Raw writes a frame as given (link header included).
func (w *Writer) Raw(frame []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: w.now, Length: len(frame), CaptureLength: min(len(frame), w.snaplen)}
	return w.pw.WritePacket(ci, frame[:ci.CaptureLength])
}

// Segment is one TCP segment.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Payload  []byte
}

// Write writes s, framed for the file's link type.
func (w *Writer) Write(s Segment) error {
	w.buf = AppendFrame(w.buf[:0], w.link, s)
	return w.Raw(w.buf)
}

// AppendFrame appends segment s, framed for link, to b.
func AppendFrame(b []byte, link Link, s Segment) []byte {
	v6 := s.Src.Addr().Is6() && !s.Src.Addr().Is4In6()
	ethType := uint16(0x0800)
	if v6 {
		ethType = 0x86dd
	}
	switch link.Type {
	case layers.LinkTypeEthernet:
		b = append(b, 0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01)
		for i, id := range link.VLANs {
			tpid := uint16(0x8100)
			if i == 0 && len(link.VLANs) > 1 {
				tpid = 0x88a8
			}
			b = binary.BigEndian.AppendUint16(b, tpid)
			b = binary.BigEndian.AppendUint16(b, id&0x0fff)
		}
		b = binary.BigEndian.AppendUint16(b, ethType)
	case layers.LinkTypeLinuxSLL2:
		b = binary.BigEndian.AppendUint16(b, ethType)
		b = binary.BigEndian.AppendUint16(b, 0)     // reserved
		b = binary.BigEndian.AppendUint32(b, 2)     // interface index
		b = binary.BigEndian.AppendUint16(b, 1)     // ARPHRD_ETHER
		b = append(b, 0, 6)                         // packet type, address length
		b = append(b, 0x02, 0, 0, 0, 0, 0x01, 0, 0) // address
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		af := uint32(2)
		if v6 {
			af = link.NullAF
		}
		if link.Type == layers.LinkTypeNull {
			b = binary.LittleEndian.AppendUint32(b, af)
		} else {
			b = binary.BigEndian.AppendUint32(b, af)
		}
	default: // raw IP
	}
	return appendIPTCP(b, s, v6)
}

// appendIPTCP appends the IP and TCP headers and the payload of s.
func appendIPTCP(b []byte, s Segment, v6 bool) []byte {
	tcpLen := 20 + len(s.Payload)
	ipStart := len(b)
	if v6 {
		b = append(b, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(tcpLen))
		b = append(b, 6, 64)
		a, d := s.Src.Addr().As16(), s.Dst.Addr().As16()
		b = append(b, a[:]...)
		b = append(b, d[:]...)
	} else {
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(20+tcpLen))
		b = append(b, 0, 0, 0x40, 0, 64, 6, 0, 0) // id, DF, ttl, proto, checksum
		a, d := s.Src.Addr().As4(), s.Dst.Addr().As4()
		b = append(b, a[:]...)
		b = append(b, d[:]...)
		binary.BigEndian.PutUint16(b[ipStart+10:], checksum(b[ipStart:ipStart+20], 0))
	}
	tcp := len(b)
	b = binary.BigEndian.AppendUint16(b, s.Src.Port())
	b = binary.BigEndian.AppendUint16(b, s.Dst.Port())
	b = binary.BigEndian.AppendUint32(b, s.Seq)
	b = binary.BigEndian.AppendUint32(b, s.Ack)
	b = append(b, 5<<4, s.Flags)
	b = binary.BigEndian.AppendUint16(b, 65535)
	b = append(b, 0, 0, 0, 0) // checksum, urgent
	b = append(b, s.Payload...)
	// Pseudo-header checksum.
	var sum uint32
	if v6 {
		sum = sumBytes(b[ipStart+8:ipStart+40], 0)
	} else {
		sum = sumBytes(b[ipStart+12:ipStart+20], 0)
	}
	sum += 6 + uint32(tcpLen)
	binary.BigEndian.PutUint16(b[tcp+16:], checksum(b[tcp:], sum))
	return b
}

func sumBytes(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func checksum(b []byte, sum uint32) uint16 {
	sum = sumBytes(b, sum)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Conn is one TCP connection being written. Client and server sequence
// numbers advance as data is sent.
type Conn struct {
	w        *Writer
	Cli, Srv netip.AddrPort
	CSeq     uint32 // next client sequence number
	SSeq     uint32 // next server sequence number
	MSS      int
	// Gap is the pause between packets.
	Gap time.Duration
}

// NewConn prepares a connection; cISN and sISN are the initial sequence
// numbers (the SYNs use them, data starts one after).
func (w *Writer) NewConn(cli, srv string, cISN, sISN uint32) *Conn {
	return &Conn{
		w:   w,
		Cli: netip.MustParseAddrPort(cli), Srv: netip.MustParseAddrPort(srv),
		CSeq: cISN, SSeq: sISN, MSS: 1448, Gap: 100 * time.Microsecond,
	}
}

func (c *Conn) seg(fromClient bool, seq uint32, flags uint8, payload []byte) Segment {
	if fromClient {
		return Segment{Src: c.Cli, Dst: c.Srv, Seq: seq, Ack: c.SSeq, Flags: flags, Payload: payload}
	}
	return Segment{Src: c.Srv, Dst: c.Cli, Seq: seq, Ack: c.CSeq, Flags: flags, Payload: payload}
}

// Put writes one segment at an explicit sequence number without moving
// the connection's counters (retransmissions, out-of-order segments).
func (c *Conn) Put(fromClient bool, seq uint32, flags uint8, payload []byte) error {
	c.w.Advance(c.Gap)
	return c.w.Write(c.seg(fromClient, seq, flags, payload))
}

// Handshake writes SYN, SYN-ACK, ACK.
func (c *Conn) Handshake() error {
	if err := c.Put(true, c.CSeq, SYN, nil); err != nil {
		return err
	}
	c.CSeq++
	if err := c.Put(false, c.SSeq, SYN|ACK, nil); err != nil {
		return err
	}
	c.SSeq++
	return c.Put(true, c.CSeq, ACK, nil)
}

// Send writes data from one side in MSS-sized segments, each acknowledged
// by the other side every second segment.
func (c *Conn) Send(fromClient bool, data []byte) error {
	n := 0
	for len(data) > 0 {
		k := min(len(data), c.MSS)
		seq := &c.SSeq
		if fromClient {
			seq = &c.CSeq
		}
		if err := c.Put(fromClient, *seq, ACK|PSH, data[:k]); err != nil {
			return err
		}
		*seq += uint32(k)
		data = data[k:]
		n++
		if n%2 == 0 || len(data) == 0 {
			if err := c.Put(!fromClient, c.seqOf(!fromClient), ACK, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// Skip advances one side's sequence number without writing: the bytes are
// lost to the capture.
func (c *Conn) Skip(fromClient bool, n int) {
	if fromClient {
		c.CSeq += uint32(n)
	} else {
		c.SSeq += uint32(n)
	}
}

func (c *Conn) seqOf(fromClient bool) uint32 {
	if fromClient {
		return c.CSeq
	}
	return c.SSeq
}

// Close writes the FIN exchange, client first.
func (c *Conn) Close() error {
	if err := c.Put(true, c.CSeq, FIN|ACK, nil); err != nil {
		return err
	}
	c.CSeq++
	if err := c.Put(false, c.SSeq, FIN|ACK, nil); err != nil {
		return err
	}
	c.SSeq++
	return c.Put(true, c.CSeq, ACK, nil)
}

// Request returns an HTTP/1.1 request with the given method, target,
// extra header lines and body (Content-Length is added for a body).
func Request(method, target string, headers []string, body []byte) []byte {
	b := fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: example.test\r\n", method, target)
	for _, h := range headers {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	if body != nil {
		b = fmt.Appendf(b, "Content-Length: %d\r\n", len(body))
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// Response returns an HTTP/1.1 response with a Content-Length body.
func Response(status int, headers []string, body []byte) []byte {
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n", status, statusText(status))
	for _, h := range headers {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	b = fmt.Appendf(b, "Content-Length: %d\r\n\r\n", len(body))
	return append(b, body...)
}

func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 304:
		return "Not Modified"
	case 404:
		return "Not Found"
	}
	return "Status"
}
