package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// Format is an input format.
type Format int

// The formats herd imports.
const (
	Unknown     Format = iota
	GoReplay           // GoReplay .gor files
	HAR                // HTTP Archive 1.1 / 1.2
	CombinedLog        // NCSA combined log: nginx, Apache (extra fields after it allowed)
	ALBLog             // AWS Application Load Balancer access log
)

func (f Format) String() string {
	switch f {
	case GoReplay:
		return "a GoReplay file"
	case HAR:
		return "a HAR file"
	case CombinedLog:
		return "a combined access log"
	case ALBLog:
		return "an AWS ALB access log"
	}
	return "in an unknown format"
}

// Kind is the tape's Meta.Source.Kind for the format.
func (f Format) Kind() string {
	switch f {
	case GoReplay:
		return "gor"
	case HAR:
		return "har"
	case CombinedLog, ALBLog:
		return "access-log"
	}
	return ""
}

func (f Format) noBodies() bool { return f == CombinedLog || f == ALBLog }

// peekSize is how much of an input detection looks at.
const peekSize = 64 << 10

// ErrUnknownFormat is an input that is none of the formats.
var ErrUnknownFormat = errors.New("not a GoReplay .gor file, a HAR file, a combined access log (nginx, Apache) or an AWS ALB log")

// Detect reads the start of r and says what it holds. The reader it
// returns yields all of r's content from the start, decompressed when r is
// gzip-compressed.
func Detect(r io.Reader) (Format, io.Reader, error) {
	br := bufio.NewReaderSize(r, peekSize)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Unknown, nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, peekSize)
	}
	head, err := br.Peek(peekSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return Unknown, nil, err
	}
	f, err := detect(head)
	return f, br, err
}

// detect decides from the first bytes of an input.
func detect(b []byte) (Format, error) {
	start := b
	switch {
	case len(b) == 0:
		return Unknown, errors.New("empty input")
	case hasPrefixAny(b, "\xd4\xc3\xb2\xa1", "\xa1\xb2\xc3\xd4", "\x4d\x3c\xb2\xa1", "\xa1\xb2\x3c\x4d", "\x0a\x0d\x0d\x0a"):
		return Unknown, errors.New("a packet capture (pcap or pcapng): record it with herd capture --pcap")
	case bytes.HasPrefix(b, []byte("\x89HERD\r\n\x1a")):
		return Unknown, errors.New("already a herd tape")
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(t) > 0 && t[0] == '{' {
		return HAR, nil
	}
	// Line formats: the first complete lines decide; an input shorter
	// than the peek counts its last line as complete.
	complete := len(b) < peekSize
	for i := 0; i < 64 && len(b) > 0; i++ {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 && !complete {
			break
		}
		line := b
		if nl >= 0 {
			line, b = b[:nl], b[nl+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if i == 0 {
			if _, ok := parseGorHeader(line); ok {
				return GoReplay, nil
			}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if _, ok := splitALB(line); ok {
			return ALBLog, nil
		}
		if _, ok := splitCLF(line); ok {
			return CombinedLog, nil
		}
	}
	return Unknown, fmt.Errorf("%w; it starts %q", ErrUnknownFormat, clip(start, 40))
}

func hasPrefixAny(b []byte, ps ...string) bool {
	for _, p := range ps {
		if bytes.HasPrefix(b, []byte(p)) {
			return true
		}
	}
	return false
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
