package capture

import (
	"hash/crc64"

	"github.com/herd-replay/herd/tape"
)

// crcTable is CRC-64/XZ's polynomial as Go names it (ECMA), the response
// body hash of the tape format.
var crcTable = crc64.MakeTable(crc64.ECMA)

// discardReason says why a request did not become an exchange.
type discardReason uint8

const (
	keep           discardReason = iota
	reqIncomplete                // cut by a gap, the snap length, the end of the capture or a flush
	reqLostInGap                 // a gap between two requests: a request was lost whole
	reqMalformed                 // a head that does not parse, or a body that cannot be framed
	reqTooLarge                  // a field beyond what a tape record holds
	reqMemoryFlush               // cut because the connection was flushed to bound memory
	reqReset                     // HTTP/2: the stream was reset before the request ended
)

// message is one request or response being parsed, then waiting to be
// paired and written.
type message struct {
	h     head
	start int64 // first byte, Unix ns
	end   int64 // last byte seen so far
	done  bool  // parsed to its end, or given up on

	body    []byte // request: the first MaxBody bytes
	bodyLen int64  // whole body, de-chunked, including bytes lost in gaps
	crc     uint64 // response: CRC-64/XZ of the body bytes seen
	flags   tape.Flags

	// request side
	drop      discardReason // why it will not be written
	resp      *message      // its response, once one is seen
	holdAfter bool          // CONNECT or Upgrade: the client waits for the answer

	// response side
	interim bool       // 1xx other than 101: not the response
	req     *message   // the request it answers
	why     incomplete // why it is incomplete, when it is

	// HTTP/2: the stream, the exchange's index on its connection (given
	// when the stream opens, so that seq orders streams by request start),
	// and the trailer fields.
	stream  uint32
	seq     uint32
	trailer []tape.Field
}

// request reports whether m is a request.
func (m *message) request() bool { return m.h.request }

// bodyBytes accounts a run of body bytes: requests keep the first maxBody
// of them, responses hash them.
func (m *message) bodyBytes(b []byte, maxBody int64) (stored int) {
	m.bodyLen += int64(len(b))
	if !m.h.request {
		m.crc = crc64.Update(m.crc, crcTable, b)
		return 0
	}
	room := maxBody - int64(len(m.body))
	if room <= 0 {
		if len(b) > 0 {
			m.flags |= tape.ReqBodyTruncated
		}
		return 0
	}
	if int64(len(b)) > room {
		b = b[:room]
		m.flags |= tape.ReqBodyTruncated
	}
	m.body = append(m.body, b...)
	return len(b)
}

// bodyGap accounts n body bytes lost in a gap.
func (m *message) bodyGap(n int64) {
	m.bodyLen += n
	m.flags |= tape.Gap
	if m.h.request {
		m.drop = reqIncomplete
	} else {
		m.flags |= tape.RespIncomplete
		m.why = incGap
	}
}
