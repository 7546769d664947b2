package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Packet is one captured frame. Data is valid until the next call to the
// Source that returned it.
type Packet struct {
	Data   []byte
	Time   time.Time
	Length int // length on the wire; more than len(Data) when the snap length cut it
	Link   layers.LinkType
}

// Source delivers packets in capture order. Next returns io.EOF after the
// last packet. A Source that can also wait (a live interface) returns
// ErrNoPacket when nothing arrived within its poll interval, so the caller
// can check for cancellation and advance its clock.
type Source interface {
	Next(p *Packet) error
	Close() error
}

// ErrNoPacket is returned by a live Source when its poll interval passed
// without a packet.
var ErrNoPacket = errors.New("no packet within the poll interval")

// Dropper is implemented by sources that can lose packets before herd sees
// them (the kernel's ring buffer of a live capture).
type Dropper interface {
	// Drops returns the packets dropped so far.
	Drops() (int64, error)
}

// Format is a capture file format, detected from its first bytes.
type Format int

// Capture file formats.
const (
	FormatUnknown Format = iota
	FormatPcap           // classic libpcap, micro- or nanosecond, either byte order
	FormatPcapNG
)

func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapNG:
		return "pcapng"
	}
	return "unknown"
}

// Classic pcap magic numbers as they appear in the first four bytes.
var (
	magicPcapUsLE = []byte{0xd4, 0xc3, 0xb2, 0xa1}
	magicPcapUsBE = []byte{0xa1, 0xb2, 0xc3, 0xd4}
	magicPcapNsLE = []byte{0x4d, 0x3c, 0xb2, 0xa1}
	magicPcapNsBE = []byte{0xa1, 0xb2, 0x3c, 0x4d}
	magicPcapNG   = []byte{0x0a, 0x0d, 0x0d, 0x0a}
	magicGzip     = []byte{0x1f, 0x8b}
)

// DetectFormat names the capture format of a file from its first bytes
// (at least 4), and whether they are gzip-compressed (then the format is
// that of the decompressed bytes, which head does not show: FormatUnknown).
func DetectFormat(head []byte) (f Format, gzipped bool) {
	if bytes.HasPrefix(head, magicGzip) {
		return FormatUnknown, true
	}
	if len(head) < 4 {
		return FormatUnknown, false
	}
	switch m := head[:4]; {
	case bytes.Equal(m, magicPcapUsLE), bytes.Equal(m, magicPcapUsBE),
		bytes.Equal(m, magicPcapNsLE), bytes.Equal(m, magicPcapNsBE):
		return FormatPcap, false
	case bytes.Equal(m, magicPcapNG):
		return FormatPcapNG, false
	}
	return FormatUnknown, false
}

// FormatError means a file is not a capture herd can read.
type FormatError struct {
	Path string
	Head []byte // its first bytes
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s is not a pcap or pcapng file (starts with % x)", e.Path, e.Head)
}

// UnsupportedLinkError names a link type herd cannot decode.
type UnsupportedLinkError struct {
	Link layers.LinkType
}

func (e *UnsupportedLinkError) Error() string {
	return fmt.Sprintf("unsupported link type %d (%s): herd reads Ethernet (with any VLAN tags), Linux cooked v1/v2, BSD NULL/LOOP and raw IP", int(e.Link), e.Link)
}

// readBufferSize is the read-ahead of a file source; large reads keep
// system calls off the per-packet path.
const readBufferSize = 1 << 20

// fileSource reads one capture file.
type fileSource struct {
	f    io.Closer
	gz   *gzip.Reader
	pcap *pcapgo.Reader
	ng   *pcapgo.NgReader
	link layers.LinkType
}

// OpenFile opens a pcap or pcapng file, plain or gzip-compressed, detecting
// the format from its magic bytes (never its name).
func OpenFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	s, err := newFileSource(path, f, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// NewReader reads a capture from r (standard input, a pipe from tcpdump -w
// -); name is used in messages. Closing the Source does not close r.
func NewReader(name string, r io.Reader) (Source, error) {
	return newFileSource(name, r, io.NopCloser(nil))
}

func newFileSource(path string, r io.Reader, c io.Closer) (*fileSource, error) {
	s := &fileSource{f: c}
	br := bufio.NewReaderSize(r, readBufferSize)
	head, _ := br.Peek(4)
	format, gzipped := DetectFormat(head)
	if gzipped {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read %s: gzip: %w", path, err)
		}
		s.gz = gz
		br = bufio.NewReaderSize(gz, readBufferSize)
		head, _ = br.Peek(4)
		format, _ = DetectFormat(head)
	}
	var err error
	switch format {
	case FormatPcap:
		s.pcap, err = pcapgo.NewReader(br)
		if err == nil {
			s.link = s.pcap.LinkType()
			if !supportedLink(s.link) {
				return nil, fmt.Errorf("read %s: %w", path, &UnsupportedLinkError{Link: s.link})
			}
		}
	case FormatPcapNG:
		s.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
	default:
		return nil, &FormatError{Path: path, Head: append([]byte(nil), head...)}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s header: %w", path, err)
	}
	return s, nil
}

func (s *fileSource) Next(p *Packet) error {
	if s.pcap != nil {
		data, ci, err := s.pcap.ZeroCopyReadPacketData()
		if err != nil {
			return readErr(err)
		}
		p.Data, p.Time, p.Length, p.Link = data, ci.Timestamp, ci.Length, s.link
		return nil
	}
	data, ci, err := s.ng.ZeroCopyReadPacketData()
	if err != nil {
		return readErr(err)
	}
	p.Data, p.Time, p.Length = data, ci.Timestamp, ci.Length
	p.Link = s.link
	if len(ci.AncillaryData) > 0 {
		if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			p.Link = lt
		}
	}
	return nil
}

// ErrTruncatedFile is returned (wrapped) by a file Source whose file ends
// inside a packet record: a capture killed while writing, a copy cut short.
// Every packet before the cut was delivered; the next call to Next goes on
// with the next file, if any.
var ErrTruncatedFile = errors.New("capture file ends inside a packet record")

// readErr maps the end of a file to io.EOF and a file cut inside a record
// to ErrTruncatedFile.
func readErr(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ErrTruncatedFile
	case errors.Is(err, io.EOF):
		return io.EOF
	}
	return err
}

func (s *fileSource) Close() error {
	if s.gz != nil {
		s.gz.Close()
	}
	return s.f.Close()
}

// multiSource reads several files back to back as one capture, so a
// connection that spans rotated files (tcpdump -C, -G) stays one connection.
type multiSource struct {
	paths []string
	cur   Source // nil between two files
	next  int    // index in paths of the file to open after cur
}

// OpenFiles opens capture files to be read one after the other, in the
// order given, as one capture. Each file is opened when the previous one
// is exhausted; its format is detected on its own.
func OpenFiles(paths []string) (Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("no capture files")
	}
	// Open the first file now, so that a bad path or format is reported
	// before anything is written.
	s, err := OpenFile(paths[0])
	if err != nil {
		return nil, err
	}
	return &multiSource{paths: paths, cur: s, next: 1}, nil
}

func (m *multiSource) Next(p *Packet) error {
	for {
		if m.cur == nil {
			if m.next == len(m.paths) {
				return io.EOF
			}
			s, err := OpenFile(m.paths[m.next])
			if err != nil {
				return err
			}
			m.cur = s
			m.next++
		}
		err := m.cur.Next(p)
		if err == nil {
			return nil
		}
		eof := errors.Is(err, io.EOF)
		if eof || errors.Is(err, ErrTruncatedFile) {
			// Done with this file. A cut is reported; the next call goes
			// on with the next file.
			m.cur.Close()
			m.cur = nil
		}
		if !eof {
			return fmt.Errorf("read %s: %w", m.paths[m.next-1], err)
		}
	}
}

// Close closes the current file; Next returns io.EOF after it.
func (m *multiSource) Close() error {
	m.next = len(m.paths)
	if m.cur != nil {
		err := m.cur.Close()
		m.cur = nil
		return err
	}
	return nil
}
