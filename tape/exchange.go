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
	// Redacted: at least one header, query or body value was replaced at
	// capture.
	Redacted
	// Upgraded: the connection stopped carrying HTTP after this exchange
	// (101 Switching Protocols, or a CONNECT tunnel).
	Upgraded

	knownFlags = NoResponse | RespIncomplete | Gap | ReqBodyTruncated | Redacted | Upgraded
)

// RedactedPrefix begins every value replaced at capture (a header value,
// a query parameter's or a body field's): a length class and a keyed hash
// of the original follow it, as docs/tape-format.md specifies.
const RedactedPrefix = "herd-redacted:"

// Field is one header line, with its name in the original casing.
type Field struct {
	Name  string
	Value string
}

// Protocol names stored in Exchange.Proto.
const (
	HTTP10 = "HTTP/1.0"
	HTTP11 = "HTTP/1.1"
	HTTP2  = "HTTP/2.0"
)

// Exchange is one HTTP request and its response as recorded. Timestamps are
// nanoseconds since the Unix epoch; the response times are meaningful only
// when Flags has no NoResponse.
//
// An HTTP/2 exchange (Proto HTTP2) is one stream: Method and Target hold
// :method and :path, Status holds :status, and the request's :authority
// and :scheme are its first header fields, under those names, so that
// replay can rebuild the stream (or a Host header for HTTP/1.x).
type Exchange struct {
	ConnID uint64 // stable id of the client connection
	Seq    uint32 // index of the exchange on its connection, from 0
	// Stream is the HTTP/2 stream id; 0 for HTTP/1.x.
	Stream uint32
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

	// Trailers, sent after the body (chunked HTTP/1.1, or HTTP/2: gRPC's
	// grpc-status is a response trailer).
	ReqTrailer  []Field
	RespTrailer []Field

	Flags Flags
}

// HasResponse reports whether any of the response was seen.
func (e *Exchange) HasResponse() bool { return e.Flags&NoResponse == 0 }

// ResponseComplete reports whether the whole response was seen.
func (e *Exchange) ResponseComplete() bool {
	return e.Flags&(NoResponse|RespIncomplete) == 0
}

// IsHTTP2 reports whether the exchange was recorded as HTTP/2.
func (e *Exchange) IsHTTP2() bool { return e.Proto == HTTP2 }

// Trailer returns the first value of the named response trailer, compared
// case-insensitively, and whether it was present.
func (e *Exchange) Trailer(name string) (string, bool) {
	return lookup(e.RespTrailer, name)
}

// Header returns the first value of the named request header, compared
// case-insensitively, and whether it was present.
func (e *Exchange) Header(name string) (string, bool) {
	return lookup(e.ReqHeader, name)
}

func lookup(fs []Field, name string) (string, bool) {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Validate reports whether e fits the format's bounds (lengths, counts,
// flags). Writer.Write refuses, and writes nothing of, an exchange that
// does not; a recorder checks first to count it by reason.
func (e *Exchange) Validate() error { return validate(e) }
