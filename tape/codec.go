package tape

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Bounds from docs/tape-format.md. Every length read from a file is checked
// against them (and against the bytes actually left) before it is used.
const (
	MaxPayload       = 72 << 20
	MaxRaw           = 64 << 20
	MaxChunkRecords  = 1 << 20
	MaxRecord        = 32 << 20
	MaxStoredBody    = 16 << 20
	MaxHeaders       = 1024
	MaxHeaderName    = 1 << 10
	MaxHeaderValue   = 64 << 10
	MaxMethod        = 64
	MaxTarget        = 64 << 10
	MaxProto         = 16
	MaxJSONBlock     = 1 << 20
	MaxIndexChunks   = 1 << 20
	MaxIndexSeconds  = 1 << 23
	maxStatus        = 999
	recordFixedBytes = 8 // the body hash
)

// errRecord is wrapped with the field that failed to decode.
var errRecord = errors.New("malformed record")

// appendRecord appends e's encoding (without its length prefix) to b. base
// is the chunk's base timestamp. The caller has validated e.
func appendRecord(b []byte, e *Exchange, base int64) []byte {
	b = binary.AppendUvarint(b, uint64(e.Flags))
	b = binary.AppendUvarint(b, e.ConnID)
	b = binary.AppendUvarint(b, uint64(e.Seq))
	b = appendAddr(b, e.Client)
	b = appendAddr(b, e.Server)
	b = binary.AppendVarint(b, e.ReqStart-base)
	b = binary.AppendVarint(b, e.ReqEnd-e.ReqStart)
	var rs, re int64
	if e.HasResponse() {
		rs, re = e.RespStart-e.ReqStart, e.RespEnd-e.ReqStart
	}
	b = binary.AppendVarint(b, rs)
	b = binary.AppendVarint(b, re)
	b = appendString(b, e.Method)
	b = appendString(b, e.Target)
	b = appendString(b, e.Proto)
	b = appendFields(b, e.ReqHeader)
	b = binary.AppendUvarint(b, uint64(e.ReqBodyLen))
	b = binary.AppendUvarint(b, uint64(len(e.ReqBody)))
	b = append(b, e.ReqBody...)
	b = binary.AppendUvarint(b, uint64(e.Status))
	b = appendString(b, e.RespProto)
	b = appendFields(b, e.RespHeader)
	b = binary.AppendUvarint(b, uint64(e.RespBodyLen))
	b = binary.LittleEndian.AppendUint64(b, e.RespBodyHash)
	// Version 2 fields.
	b = binary.AppendUvarint(b, uint64(e.Stream))
	b = appendFields(b, e.ReqTrailer)
	b = appendFields(b, e.RespTrailer)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFields(b []byte, fs []Field) []byte {
	b = binary.AppendUvarint(b, uint64(len(fs)))
	for _, f := range fs {
		b = appendString(b, f.Name)
		b = appendString(b, f.Value)
	}
	return b
}

func appendAddr(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	switch {
	case !a.IsValid():
		return append(b, 0)
	case a.Is4():
		b = append(b, 4)
		v := a.As4()
		b = append(b, v[:]...)
	default:
		b = append(b, 6)
		v := a.As16()
		b = append(b, v[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// validate checks that e fits the format's bounds, so a tape written by
// this package is always readable by it.
func validate(e *Exchange) error {
	switch {
	case len(e.Method) > MaxMethod:
		return fmt.Errorf("method is %d bytes, limit %d", len(e.Method), MaxMethod)
	case len(e.Target) > MaxTarget:
		return fmt.Errorf("target is %d bytes, limit %d", len(e.Target), MaxTarget)
	case len(e.Proto) > MaxProto || len(e.RespProto) > MaxProto:
		return fmt.Errorf("protocol name longer than %d bytes", MaxProto)
	case len(e.ReqBody) > MaxStoredBody:
		return fmt.Errorf("stored body is %d bytes, limit %d", len(e.ReqBody), MaxStoredBody)
	case e.ReqBodyLen < int64(len(e.ReqBody)):
		return fmt.Errorf("body length %d below stored body %d", e.ReqBodyLen, len(e.ReqBody))
	case e.RespBodyLen < 0:
		return fmt.Errorf("negative response body length")
	case e.Status < 0 || e.Status > maxStatus:
		return fmt.Errorf("status %d out of range", e.Status)
	case e.Flags&^knownFlags != 0:
		return fmt.Errorf("unknown flags %#x", uint32(e.Flags&^knownFlags))
	case e.ReqEnd < e.ReqStart:
		return fmt.Errorf("request ends before it starts")
	case e.Stream > 1<<31-1:
		return fmt.Errorf("stream id %d beyond 2^31-1", e.Stream)
	}
	for _, fs := range [][]Field{e.ReqHeader, e.RespHeader, e.ReqTrailer, e.RespTrailer} {
		if len(fs) > MaxHeaders {
			return fmt.Errorf("%d headers, limit %d", len(fs), MaxHeaders)
		}
		for _, f := range fs {
			if len(f.Name) > MaxHeaderName || len(f.Value) > MaxHeaderValue {
				return fmt.Errorf("header %.40q too long", f.Name)
			}
		}
	}
	return nil
}

// decoder reads record fields from s, a string holding a whole decompressed
// chunk: every string in the decoded exchanges shares its memory, so
// decoding allocates one string per chunk instead of one per field. Request
// bodies alias b, the chunk's buffer, which the reader never reuses.
type decoder struct {
	s   string
	b   []byte // the same bytes as s; request bodies alias it
	pos int
	end int
	err error
}

func (d *decoder) fail(field string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: field %s at byte %d", errRecord, field, d.pos)
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.pos >= d.end {
			break
		}
		c := d.s[d.pos]
		d.pos++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail(field)
	return 0
}

func (d *decoder) varint(field string) int64 {
	u := d.uvarint(field)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// bounded reads an unsigned varint and fails unless it is at most limit.
func (d *decoder) bounded(field string, limit uint64) uint64 {
	v := d.uvarint(field)
	if v > limit {
		d.fail(field)
		return 0
	}
	return v
}

func (d *decoder) str(field string, limit int) string {
	n := d.bounded(field, uint64(limit))
	if d.err != nil {
		return ""
	}
	if uint64(d.end-d.pos) < n {
		d.fail(field)
		return ""
	}
	v := d.s[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return v
}

func (d *decoder) fields(field string) []Field {
	n := d.bounded(field, MaxHeaders)
	// Each field takes at least two bytes, so a count beyond the bytes left
	// is malformed and must not size an allocation.
	if d.err != nil || n > uint64(d.end-d.pos)/2 {
		d.fail(field)
		return nil
	}
	if n == 0 {
		return nil
	}
	fs := make([]Field, n)
	for i := range fs {
		fs[i].Name = d.str(field, MaxHeaderName)
		fs[i].Value = d.str(field, MaxHeaderValue)
	}
	return fs
}

func (d *decoder) addr(field string) netip.AddrPort {
	if d.err != nil {
		return netip.AddrPort{}
	}
	if d.pos >= d.end {
		d.fail(field)
		return netip.AddrPort{}
	}
	fam := d.s[d.pos]
	d.pos++
	var n int
	switch fam {
	case 0:
		return netip.AddrPort{}
	case 4:
		n = 4
	case 6:
		n = 16
	default:
		d.fail(field)
		return netip.AddrPort{}
	}
	if d.end-d.pos < n+2 {
		d.fail(field)
		return netip.AddrPort{}
	}
	var a netip.Addr
	if n == 4 {
		a = netip.AddrFrom4([4]byte([]byte(d.s[d.pos : d.pos+4])))
	} else {
		a = netip.AddrFrom16([16]byte([]byte(d.s[d.pos : d.pos+16])))
	}
	d.pos += n
	port := uint16(d.s[d.pos])<<8 | uint16(d.s[d.pos+1])
	d.pos += 2
	return netip.AddrPortFrom(a, port)
}

// record decodes one record occupying s[d.pos:d.end] into e.
func (d *decoder) record(e *Exchange, base int64) error {
	e.Flags = Flags(d.uvarint("flags"))
	e.ConnID = d.uvarint("conn")
	e.Seq = uint32(d.bounded("seq", 1<<32-1))
	e.Client = d.addr("client")
	e.Server = d.addr("server")
	e.ReqStart = base + d.varint("req_start")
	e.ReqEnd = e.ReqStart + d.varint("req_end")
	rs, re := d.varint("resp_start"), d.varint("resp_end")
	if e.Flags&NoResponse == 0 {
		e.RespStart, e.RespEnd = e.ReqStart+rs, e.ReqStart+re
	}
	e.Method = d.str("method", MaxMethod)
	e.Target = d.str("target", MaxTarget)
	e.Proto = d.str("proto", MaxProto)
	e.ReqHeader = d.fields("req_headers")
	e.ReqBodyLen = int64(d.bounded("req_body_len", 1<<62))
	if body := d.str("req_body", MaxStoredBody); len(body) > 0 {
		at := d.pos - len(body)
		e.ReqBody = d.b[at:d.pos:d.pos]
	}
	e.Status = int(d.bounded("status", maxStatus))
	e.RespProto = d.str("resp_proto", MaxProto)
	e.RespHeader = d.fields("resp_headers")
	e.RespBodyLen = int64(d.bounded("resp_body_len", 1<<62))
	if d.err == nil && d.end-d.pos < recordFixedBytes {
		d.fail("resp_body_hash")
	}
	if d.err != nil {
		return d.err
	}
	e.RespBodyHash = binary.LittleEndian.Uint64([]byte(d.s[d.pos : d.pos+8]))
	d.pos += recordFixedBytes
	if e.ReqBodyLen < int64(len(e.ReqBody)) {
		d.fail("req_body_len")
		return d.err
	}
	// Version 2 fields; a version 1 record ends before them.
	if d.pos < d.end {
		e.Stream = uint32(d.bounded("stream", 1<<31-1))
		e.ReqTrailer = d.fields("req_trailers")
		e.RespTrailer = d.fields("resp_trailers")
		if d.err != nil {
			return d.err
		}
	}
	// Bytes after the last known field are from a compatible later revision.
	d.pos = d.end
	return nil
}
