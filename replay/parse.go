package replay

import (
	"bytes"
	"io"
	"time"
)

// respParser reads an HTTP/1.x response incrementally, from whatever
// pieces the socket delivers, with the rules and limits of client.go's
// roundTrip (it shares their line parsers): the event loops have no
// goroutine to block in a bufio.Reader. It keeps nothing of the body and
// at most one partial line (lineBuffer bytes) between reads, so its memory
// is bounded whatever the target sends. A fuzz test holds the two parsers
// to the same verdict on any bytes, cut anywhere.
type respParser struct {
	isHead, reused bool

	st        parseState
	line      []byte // a partial line carried over from an earlier read
	h         head
	nHeaders  int
	interim   int
	remaining int64 // body or chunk bytes still to come

	// What the attempt observed (attempt's fields).
	got        bool
	status     int
	bytes      int64
	keepAlive  bool
	upgraded   bool
	retryAfter time.Duration
	err        error
}

type parseState uint8

const (
	psStatus    parseState = iota // the status line of a head
	psHeader                      // a header line
	psBody                        // Content-Length body: remaining bytes
	psToClose                     // a body that runs to the end of the connection
	psChunkSize                   // a chunk-size line
	psChunkData                   // remaining bytes of a chunk
	psChunkEnd                    // the CRLF after a chunk
	psTrailer                     // a trailer line
	psDone                        // complete, or failed (err)
)

// lineBuffer is bufio's buffer in client.go: no line may be longer.
const lineBuffer = readBuffer

// reset prepares the parser for the response to a request.
func (p *respParser) reset(isHead, reused bool) {
	line := p.line[:0]
	*p = respParser{isHead: isHead, reused: reused, line: line, h: head{length: -1}}
	if cap(line) > 4<<10 {
		p.line = nil // a long line was an exception: do not keep its memory
	}
}

// done reports whether the response is complete or failed.
func (p *respParser) done() bool { return p.st == psDone }

// feed consumes bytes of the response and returns how many it used: all
// of b, or fewer when the response ended (or failed) inside it. What is
// left after a complete response is bytes no request asked for.
func (p *respParser) feed(b []byte) int {
	used := 0
	if len(b) > 0 {
		p.got = true
	}
	for used < len(b) && p.st != psDone {
		switch p.st {
		case psBody, psChunkData:
			n := int64(len(b) - used)
			if n > p.remaining {
				n = p.remaining
			}
			used += int(n)
			p.bytes += n
			p.remaining -= n
			if p.remaining > 0 {
				continue
			}
			if p.st == psBody {
				p.finish(nil)
			} else {
				p.st = psChunkEnd
			}
		case psToClose:
			p.bytes += int64(len(b) - used)
			used = len(b)
		default:
			line, n, ok := p.readLine(b[used:])
			used += n
			if !ok {
				continue // the line goes on in the next read
			}
			p.onLine(line)
		}
	}
	return used
}

// limit is the longest line the current state accepts (client.go's
// readLine limits).
func (p *respParser) limit() int {
	switch p.st {
	case psStatus:
		return maxStatusLine
	case psChunkSize:
		return maxChunkLine
	case psChunkEnd:
		return 2
	}
	return maxHeaderSize
}

// readLine takes bytes of b up to and including a line feed. It returns
// the whole line (carried-over part included) when the line ended in b,
// or what it took (kept in p.line) when it did not. A line that reaches
// lineBuffer bytes without ending fails as bufio's buffer does.
func (p *respParser) readLine(b []byte) (line []byte, used int, ok bool) {
	room := lineBuffer - len(p.line)
	i := bytes.IndexByte(b[:min(len(b), room)], '\n')
	if i < 0 {
		if len(b) < room {
			p.line = append(p.line, b...)
			return nil, len(b), false
		}
		// The line fills bufio's buffer: "line longer than".
		p.line = append(p.line, b[:room]...)
		p.count(len(p.line))
		p.fail(malformed("line longer than %d bytes", min(p.limit(), readBuffer)))
		return nil, room, false
	}
	if len(p.line) == 0 {
		return b[:i+1], i + 1, true
	}
	p.line = append(p.line, b[:i+1]...)
	line = p.line
	p.line = p.line[:0]
	return line, i + 1, true
}

// count adds the bytes of a line to the response's size, as readHead and
// readChunked do: a head's bytes count once it is read (or failed).
func (p *respParser) count(n int) {
	switch p.st {
	case psStatus, psHeader:
		p.h.size += int64(n)
	default:
		p.bytes += int64(n)
	}
}

func (p *respParser) onLine(line []byte) {
	p.count(len(line))
	if len(line) > p.limit() {
		p.fail(malformed("line longer than %d bytes", p.limit()))
		return
	}
	switch p.st {
	case psStatus:
		if err := p.h.statusLine(line); err != nil {
			p.fail(err)
			return
		}
		p.st = psHeader
	case psHeader:
		if p.h.size > maxHeaderSize || p.nHeaders > maxHeaders {
			p.fail(malformed("response header larger than %d bytes", maxHeaderSize))
			return
		}
		p.nHeaders++
		end, err := p.h.headerLine(line)
		if err != nil {
			p.fail(err)
			return
		}
		if end {
			p.endHead()
		}
	case psChunkSize:
		n, err := chunkSize(line)
		if err != nil {
			p.fail(err)
			return
		}
		if n == 0 {
			p.st = psTrailer
			return
		}
		p.st, p.remaining = psChunkData, n
	case psChunkEnd:
		if len(bytes.TrimRight(line, "\r\n")) != 0 {
			p.fail(malformed("chunk not followed by CRLF"))
			return
		}
		p.st = psChunkSize
	case psTrailer:
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			p.finish(nil)
		}
	}
}

// endHead decides what follows a complete head, as roundTrip does.
func (p *respParser) endHead() {
	h := p.h
	p.bytes += h.size
	p.status, p.keepAlive, p.retryAfter = h.status, h.keepAlive, h.retryAfter
	switch {
	case h.status == 101:
		p.keepAlive, p.upgraded = false, true
		p.finish(nil)
		return
	case h.status >= 100 && h.status < 200:
		if p.interim++; p.interim > maxInterim {
			p.fail(malformed("more than %d interim responses", maxInterim))
			return
		}
		p.h, p.nHeaders, p.st = head{length: -1}, 0, psStatus
		return
	case idleTimeoutAnswer(p.reused, h.status):
		p.keepAlive = false
		p.finish(nil)
		return
	}
	if !p.isHead && !h.chunked && h.length < 0 && h.status != 204 && h.status != 304 {
		p.keepAlive = false // the body ends with the connection
	}
	switch {
	case p.isHead || h.status == 204 || h.status == 304:
		p.finish(nil)
	case h.chunked:
		p.st = psChunkSize
	case h.length > 0:
		p.st, p.remaining = psBody, h.length
	case h.length == 0:
		p.finish(nil)
	default:
		p.st = psToClose
	}
}

func (p *respParser) finish(err error) {
	p.st, p.err = psDone, err
}

// fail ends the response with err; a head not yet complete adds what of
// it was read.
func (p *respParser) fail(err error) {
	if p.st == psStatus || p.st == psHeader {
		p.bytes += p.h.size
		p.h.size = 0
	}
	p.finish(err)
}

// eof ends the response at the end of the connection.
func (p *respParser) eof() {
	if p.st == psDone {
		return
	}
	if p.st == psToClose {
		p.finish(nil)
		return
	}
	// A line cut short counts what of it arrived; readLine then says
	// ErrUnexpectedEOF, and so does a body cut short.
	cut := len(p.line) > 0 || p.st == psBody || p.st == psChunkData
	p.count(len(p.line))
	p.line = p.line[:0]
	if cut {
		p.fail(io.ErrUnexpectedEOF)
		return
	}
	p.fail(io.EOF)
}

// abort ends the response with a read error (a reset, the timeout): what
// of a partial line arrived counts.
func (p *respParser) abort(err error) {
	if p.st == psDone {
		return
	}
	p.count(len(p.line))
	p.line = p.line[:0]
	p.fail(err)
}
