package importer

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/herd-replay/herd/internal/h1"
	"github.com/herd-replay/herd/tape"
)

// maxLogLine bounds one access log line; a longer one is counted and
// skipped.
const maxLogLine = 256 << 10

// clfLine is a combined log line, split:
//
//	HOST IDENT USER [TIME] "REQUEST" STATUS BYTES ["REFERER" "USER-AGENT"] [EXTRA...]
//
// Quoted fields keep their escapes (nginx \xHH, Apache \" and \\).
type clfLine struct {
	host    []byte
	time    []byte
	request []byte
	status  int
	bytes   int64
	referer []byte
	agent   []byte
	hasUA   bool
	extra   []byte
}

// splitCLF splits a combined (or common) log line; it does not judge the
// request inside.
func splitCLF(line []byte) (l clfLine, ok bool) {
	var tok [3][]byte
	rest := line
	for i := range tok {
		j := 0
		for j < len(rest) && !isSpace(rest[j]) {
			j++
		}
		if j == 0 || j == len(rest) || rest[j] != ' ' {
			return l, false
		}
		tok[i], rest = rest[:j], rest[j+1:]
	}
	l.host = tok[0]
	if len(rest) < 2 || rest[0] != '[' {
		return l, false
	}
	end := bytes.IndexByte(rest, ']')
	if end < 2 {
		return l, false
	}
	l.time, rest = rest[1:end], rest[end+1:]
	if !bytes.HasPrefix(rest, []byte(` "`)) {
		return l, false
	}
	if l.request, rest, ok = quoted(rest[1:]); !ok {
		return l, false
	}
	// " NNN " then digits or "-".
	if len(rest) < 6 || rest[0] != ' ' || !isDigits(rest[1:4]) || rest[4] != ' ' {
		return l, false
	}
	l.status = int(rest[1]-'0')*100 + int(rest[2]-'0')*10 + int(rest[3]-'0')
	rest = rest[5:]
	switch {
	case rest[0] == '-':
		rest = rest[1:]
	case isDigit(rest[0]):
		j := 0
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
		l.bytes, _ = strconv.ParseInt(string(rest[:j]), 10, 64)
		rest = rest[j:]
	default:
		return l, false
	}
	// Optional referer and user agent.
	if bytes.HasPrefix(rest, []byte(` "`)) {
		if ref, r2, ok := quoted(rest[1:]); ok && bytes.HasPrefix(r2, []byte(` "`)) {
			if ua, r3, ok := quoted(r2[1:]); ok {
				l.referer, l.agent, l.hasUA, rest = ref, ua, true, r3
			}
		}
	}
	l.extra = rest
	return l, true
}

// quoted reads a quoted string at the start of b (b[0] is the quote),
// with backslash escapes, and returns its content and what follows.
func quoted(b []byte) (content, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, b, false
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped byte, whatever it is
		case '"':
			return b[1:i], b[i+1:], true
		}
	}
	return nil, b, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// isSpace is \s of RE2 and Python: the white space a log token excludes.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// unescape undoes the escapes servers write into quoted log fields:
// nginx's \xHH (for ", \ and bytes outside printable ASCII), Apache's \",
// \\, \xhh, \n, \r, \t. An escape it does not know is kept as written.
func unescape(b []byte) []byte {
	if bytes.IndexByte(b, '\\') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 == len(b) {
			out = append(out, c)
			continue
		}
		switch n := b[i+1]; n {
		case '"', '\\':
			out = append(out, n)
			i++
		case 'n':
			out = append(out, '\n')
			i++
		case 'r':
			out = append(out, '\r')
			i++
		case 't':
			out = append(out, '\t')
			i++
		case 'x':
			if i+3 < len(b) {
				if v, err := strconv.ParseUint(string(b[i+2:i+4]), 16, 8); err == nil {
					out = append(out, byte(v))
					i += 3
					continue
				}
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out
}

// clfTime is the layout of %t and $time_local.
const clfTime = "02/Jan/2006:15:04:05 -0700"

// logReader is what the two log formats share: reading lines, counting
// blank, long and malformed ones, and spreading the requests logged in
// one second over that second.
type logReader struct {
	r      *run
	spread spreader
	line   func(line []byte) bool // imports one line; false: malformed
}

func (lr *logReader) read(name string, r io.Reader) error {
	l := newLines(r, maxLogLine)
	for {
		line, err := l.next()
		if err == io.EOF {
			lr.spread.flush()
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			lr.r.stats.count("blank_lines")
			continue
		}
		lr.r.stats.Entries++
		if err := lr.r.check(); err != nil {
			lr.spread.flush()
			return err
		}
		switch {
		case l.long:
			lr.r.stats.discard("line_too_long")
		case !lr.line(line):
			lr.r.stats.discard("line_malformed")
		}
	}
}

func (lr *logReader) finish() error {
	lr.spread.flush()
	return nil
}

// spreader holds the exchanges logged within one second, then spaces
// their starts evenly over it: a log's one-second times would otherwise
// make each second's requests one burst.
type spreader struct {
	r   *run
	sec int64
	buf []tape.Exchange
}

const maxSpread = 16384

func (s *spreader) add(e *tape.Exchange) {
	sec := tape.UnixSecond(e.ReqStart)
	if len(s.buf) > 0 && (sec != s.sec || len(s.buf) >= maxSpread) {
		s.flush()
	}
	s.sec = sec
	s.buf = append(s.buf, *e)
}

func (s *spreader) flush() {
	n := int64(len(s.buf))
	for i := range s.buf {
		e := &s.buf[i]
		shift := int64(i) * 1e9 / n
		e.ReqStart += shift
		e.ReqEnd += shift
		if e.HasResponse() {
			e.RespStart += shift
			e.RespEnd += shift
		}
		s.r.emit(e, nil)
	}
	clear(s.buf)
	s.buf = s.buf[:0]
}

type clfImporter struct {
	logReader
	rt int64 // lines with a request time
}

func newCLF(r *run) *clfImporter {
	c := &clfImporter{}
	c.logReader = logReader{r: r, spread: spreader{r: r}, line: c.line}
	return c
}

func (c *clfImporter) notes() []string {
	notes := []string{"connections: access logs do not record connections; every request has a connection of its own",
		"request bodies: access logs do not record them; replay sends only requests that need none unless told otherwise",
		"times: logged to the second; the requests of each second are spread evenly over it"}
	if c.rt > 0 {
		notes = append(notes, fmt.Sprintf("%d lines carry a request time (a number after the combined fields: seconds with a decimal point, as nginx's $request_time, or whole microseconds, as Apache's %%D)", c.rt))
	}
	return notes
}

func (c *clfImporter) line(line []byte) bool {
	l, ok := splitCLF(line)
	if !ok {
		return false
	}
	method, target, proto, ok := h1.RequestLine(l.request)
	if !ok {
		return false
	}
	t, err := time.Parse(clfTime, string(l.time))
	if err != nil {
		return false
	}
	e := &tape.Exchange{
		ConnID: c.r.newConn(),
		Method: string(method), Target: string(unescape(target)), Proto: string(proto),
		ReqStart: t.UnixNano(), Status: l.status, RespProto: string(proto), RespBodyLen: l.bytes,
	}
	e.ReqEnd = e.ReqStart
	if addr, err := netip.ParseAddr(string(l.host)); err == nil {
		e.Client = netip.AddrPortFrom(addr, 0)
	}
	if l.hasUA {
		if ref := unescape(l.referer); len(ref) > 0 && string(ref) != "-" {
			e.ReqHeader = append(e.ReqHeader, tape.Field{Name: "Referer", Value: string(ref)})
		}
		if ua := unescape(l.agent); len(ua) > 0 && string(ua) != "-" {
			e.ReqHeader = append(e.ReqHeader, tape.Field{Name: "User-Agent", Value: string(ua)})
		}
	}
	e.RespStart, e.RespEnd = e.ReqStart, e.ReqStart
	if d, ok := requestTime(l.extra); ok {
		c.rt++
		e.RespStart += d
		e.RespEnd += d
	}
	if e.Status == 0 {
		e.Flags |= tape.NoResponse
		e.RespStart, e.RespEnd, e.RespProto = 0, 0, ""
	}
	c.spread.add(e)
	return true
}

// requestTime reads the first number after the combined fields: with a
// decimal point it is in seconds (nginx's $request_time), without one in
// microseconds (Apache's %D).
func requestTime(extra []byte) (int64, bool) {
	for _, f := range bytes.Fields(extra) {
		dot := bytes.IndexByte(f, '.')
		if dot < 0 {
			if isDigits(f) {
				us, err := strconv.ParseInt(string(f), 10, 64)
				return us * 1e3, err == nil
			}
			continue
		}
		if isDigits(f[:dot]) && isDigits(f[dot+1:]) {
			s, err := strconv.ParseFloat(string(f), 64)
			return int64(s * 1e9), err == nil
		}
	}
	return 0, false
}
