package h1

import (
	"bytes"
	"errors"

	"github.com/herd-replay/herd/tape"
)

// ErrChunked is a chunked body whose framing is broken: a size line that
// is not hexadecimal, too long, or data not followed by CRLF.
var ErrChunked = errors.New("malformed chunked body")

// ChunkedDecoder decodes a chunked body incrementally: Feed takes the
// bytes as they arrive, in pieces of any size, hands the data inside the
// chunks to a callback and says where the body ends. It holds at most one
// size or trailer line (MaxLine) and the trailer section (MaxTrailer).
type ChunkedDecoder struct {
	state   chunkState
	left    int64  // data bytes left in the current chunk
	line    []byte // a partial size or trailer line
	trailer []byte // trailer section so far, bounded by MaxTrailer
	// Trailer holds the trailer fields once Feed reported the end.
	Trailer []tape.Field
}

type chunkState uint8

const (
	chunkSize  chunkState = iota // reading a size line
	chunkData                    // inside chunk data
	chunkCRLF                    // the CRLF after chunk data
	chunkTrail                   // trailer lines, up to the empty line
	chunkDone
)

// Feed consumes the start of p up to the end of the body at most, calls
// data for every span of chunk data in it, and returns the bytes consumed
// and whether the body ended there. After an error the decoder is done
// with the message; the bytes up to the error were consumed.
func (d *ChunkedDecoder) Feed(p []byte, data func([]byte)) (n int, done bool, err error) {
	for n < len(p) {
		switch d.state {
		case chunkData:
			k := int(min(int64(len(p)-n), d.left))
			if data != nil {
				data(p[n : n+k])
			}
			n += k
			d.left -= int64(k)
			if d.left == 0 {
				d.state = chunkCRLF
			}
		case chunkSize, chunkCRLF, chunkTrail:
			line, k, complete := d.takeLine(p[n:])
			n += k
			if !complete {
				if len(d.line) > MaxLine {
					return n, false, ErrChunked
				}
				continue
			}
			if err := d.endLine(line); err != nil {
				return n, false, err
			}
			if d.state == chunkDone {
				return n, true, nil
			}
		case chunkDone:
			return n, true, nil
		}
	}
	return n, d.state == chunkDone, nil
}

// takeLine collects bytes up to and including a LF. It returns the line
// without its ending once complete, and how many bytes of p it took.
func (d *ChunkedDecoder) takeLine(p []byte) (line []byte, n int, complete bool) {
	nl := bytes.IndexByte(p, '\n')
	if nl < 0 {
		d.line = append(d.line, p...)
		return nil, len(p), false
	}
	if len(d.line) == 0 {
		return TrimEOL(p[:nl+1]), nl + 1, true
	}
	d.line = append(d.line, p[:nl+1]...)
	line = TrimEOL(d.line)
	d.line = d.line[:0]
	return line, nl + 1, true
}

func (d *ChunkedDecoder) endLine(line []byte) error {
	switch d.state {
	case chunkCRLF:
		if len(line) != 0 {
			return ErrChunked
		}
		d.state = chunkSize
	case chunkSize:
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions are ignored
		}
		line = bytes.TrimRight(line, " \t")
		size, ok := parseHex(line)
		if !ok {
			return ErrChunked
		}
		if size == 0 {
			d.state = chunkTrail
			return nil
		}
		d.left, d.state = size, chunkData
	case chunkTrail:
		if len(line) == 0 {
			d.state = chunkDone
			d.Trailer = parseTrailer(d.trailer)
			return nil
		}
		if len(d.trailer)+len(line)+2 > MaxTrailer {
			return ErrChunked
		}
		d.trailer = append(append(d.trailer, line...), '\n')
	}
	return nil
}

// Done reports whether the whole body was decoded.
func (d *ChunkedDecoder) Done() bool { return d.state == chunkDone }

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func parseTrailer(b []byte) []tape.Field {
	var fs []tape.Field
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		line := b[:nl]
		b = b[nl+1:]
		if name, value, ok := Field(line); ok && len(fs) < tape.MaxHeaders {
			fs = append(fs, tape.Field{Name: string(name), Value: string(value)})
		}
	}
	return fs
}
