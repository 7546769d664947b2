package tape

import (
	"net/netip"
	"strings"
)

// Flags describe how complete an exchange is and what was done to it.
type Flags uint32

const (
	// NoResponse: no byte of a response was seen.
	NoResponse Flags = 1 << iota
	// RespIncomplete: a response started but did not complete (a capture gap,
	// or the capture ended first).
	RespIncomplete
	// Gap: a lost segment fell inside the exchange.
	Gap
	// ReqBodyTruncated: the stored request body is shorter than ReqBodyLen
	// because of the capture's body limit.
	ReqBodyTruncated
	// Redacted: at least one header or query value was replaced at capture.
	Redacted
	// Upgraded: the connection stopped carrying HTTP after this exchange
	// (101 Switching Protocols, or a CONNECT tunnel).
	Upgraded

	knownFlags = NoResponse | RespIncomplete | Gap | ReqBodyTruncated | Redacted | Upgraded
)

// RedactedPrefix begins every value replaced at capture (a header value, or
// a query parameter's): 16 hex digits of a keyed hash of the original
// follow it, as docs/tape-format.md specifies.
const RedactedPrefix = "herd-redacted:"

// Field is one header line, with its name in the original casing.
type Field struct {
	Name  string
	Value string
}

// Exchange is one HTTP request and its response as recorded. Timestamps are
// nanoseconds since the Unix epoch; the response times are meaningful only
// when Flags has no NoResponse.
type Exchange struct {
	ConnID uint64 // stable id of the client connection
	Seq    uint32 // index of the exchange on its connection, from 0
	Client netip.AddrPort
	Server netip.AddrPort

	ReqStart  int64 // request first byte
	ReqEnd    int64 // request last byte
	RespStart int64 // response first byte
	RespEnd   int64 // response last byte

	Method     string
	Target     string
	Proto      string
	ReqHeader  []Field
	ReqBody    []byte // at most the capture's body limit
	ReqBodyLen int64  // length of the body as sent

	Status       int
	RespProto    string
	RespHeader   []Field
	RespBodyLen  int64
	RespBodyHash uint64 // CRC-64/XZ of the whole response body

	Flags Flags
}

// HasResponse reports whether any of the response was seen.
func (e *Exchange) HasResponse() bool { return e.Flags&NoResponse == 0 }

// ResponseComplete reports whether the whole response was seen.
func (e *Exchange) ResponseComplete() bool {
	return e.Flags&(NoResponse|RespIncomplete) == 0
}

// Header returns the first value of the named request header, compared
// case-insensitively, and whether it was present.
func (e *Exchange) Header(name string) (string, bool) {
	for _, f := range e.ReqHeader {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}
