package importer

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/h1"
	"github.com/herd-replay/herd/tape"
)

// An AWS Application Load Balancer log entry is space-separated, with
// quoted fields:
//
//	type time elb client:port target:port request_processing_time
//	target_processing_time response_processing_time elb_status_code
//	target_status_code received_bytes sent_bytes "request" "user_agent"
//	ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name"
//	"chosen_cert_arn" matched_rule_priority request_creation_time ...
//
// Fields were added over the years at the end; herd reads the first 22.
const (
	albType = iota
	albTime
	albELB
	albClient
	albTarget
	albReqTime
	albTargetTime
	albRespTime
	albStatus
	albTargetStatus
	albReceived
	albSent
	albRequest
	albAgent
	albCreation = 21
)

var albTypes = map[string]bool{"http": true, "https": true, "h2": true, "grpcs": true, "ws": true, "wss": true}

// albTokens splits a line as AWS's parsers do: a quoted string (with
// backslash escapes) is one token, even when no space follows it;
// anything else runs to the next white space.
func albTokens(line []byte, out [][]byte) [][]byte {
	out = out[:0]
	for i := 0; i < len(line); {
		if isSpace(line[i]) {
			i++
			continue
		}
		if line[i] == '"' {
			if _, rest, ok := quoted(line[i:]); ok {
				end := len(line) - len(rest)
				out = append(out, line[i:end])
				i = end
				continue
			}
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		out = append(out, line[i:j])
		i = j
	}
	return out
}

// isoTime reports whether b is YYYY-MM-DDTHH:MM:SS[.frac]Z.
func isoTime(b []byte) bool {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return false
	}
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if !isDigit(b[i]) {
			return false
		}
	}
	frac := b[19 : len(b)-1]
	return len(frac) == 0 || (frac[0] == '.' && isDigits(frac[1:]))
}

// splitALB tokenizes an ALB line and checks its shape: a known type, an
// ISO time and enough fields up to the quoted request.
func splitALB(line []byte) ([][]byte, bool) {
	t := albTokens(line, nil)
	if len(t) <= albRequest || !albTypes[string(t[albType])] || !isoTime(t[albTime]) {
		return t, false
	}
	return t, true
}

type albImporter struct {
	logReader
	conns *connTable[netip.AddrPort]
	toks  [][]byte
}

func newALB(r *run) *albImporter {
	a := &albImporter{conns: newConnTable[netip.AddrPort](r)}
	a.logReader = logReader{r: r, spread: spreader{r: r}, line: a.line}
	return a
}

func (a *albImporter) notes() []string {
	return []string{
		fmt.Sprintf("connections: %d requests grouped into connections by client address and port", a.r.stats.Grouped),
		"request bodies: access logs do not record them; replay sends only requests that need none unless told otherwise",
		"response sizes: ALB's sent_bytes, headers included",
	}
}

func (a *albImporter) line(line []byte) bool {
	t, ok := splitALB(line)
	a.toks = t
	if !ok {
		return false
	}
	rq := t[albRequest]
	if len(rq) < 2 || rq[0] != '"' || rq[len(rq)-1] != '"' {
		return false
	}
	method, target, proto, ok := h1.RequestLine(rq[1 : len(rq)-1])
	if !ok || !absoluteURL(target) {
		return false
	}
	logged, err := time.Parse(time.RFC3339Nano, string(t[albTime]))
	if err != nil {
		return false
	}
	scheme, authority, path := splitURL(string(target))
	e := &tape.Exchange{Method: string(method), Target: path, Proto: string(proto), RespProto: string(proto)}
	if e.Proto == "HTTP/2.0" {
		e.Proto, e.RespProto = tape.HTTP2, tape.HTTP2
		e.ReqHeader = append(e.ReqHeader, tape.Field{Name: ":authority", Value: authority}, tape.Field{Name: ":scheme", Value: scheme})
	} else {
		e.ReqHeader = append(e.ReqHeader, tape.Field{Name: "Host", Value: hostHeader(scheme, authority)})
	}
	if len(t) > albAgent {
		if ua := unquote(t[albAgent]); ua != "" && ua != "-" {
			e.ReqHeader = append(e.ReqHeader, tape.Field{Name: "User-Agent", Value: ua})
		}
	}

	// Times: the request arrived at request_creation_time (when the line
	// has it); each processing time is -1 when it did not apply.
	var phases [3]int64
	for i := range phases {
		if s, err := strconv.ParseFloat(string(t[albReqTime+i]), 64); err == nil && s > 0 {
			phases[i] = int64(s * 1e9)
		}
	}
	e.ReqStart = logged.UnixNano() - phases[0] - phases[1] - phases[2]
	if len(t) > albCreation && isoTime(t[albCreation]) {
		if c, err := time.Parse(time.RFC3339Nano, string(t[albCreation])); err == nil {
			e.ReqStart = c.UnixNano()
		}
	}
	e.ReqEnd = e.ReqStart + phases[0]
	if st := t[albStatus]; len(st) == 3 && isDigits(st) {
		e.Status = int(st[0]-'0')*100 + int(st[1]-'0')*10 + int(st[2]-'0')
	}
	if e.Status == 0 {
		e.Flags |= tape.NoResponse
		e.RespProto = ""
	} else {
		e.RespStart = e.ReqEnd + phases[1]
		e.RespEnd = e.RespStart + phases[2]
		e.RespBodyLen, _ = strconv.ParseInt(string(t[albSent]), 10, 64)
		e.RespBodyLen = max(e.RespBodyLen, 0)
		if e.Status == 101 {
			e.Flags |= tape.Upgraded
		}
	}
	if s, err := netip.ParseAddrPort(string(t[albTarget])); err == nil {
		e.Server = s
	}
	var conn *tableConn
	if c, err := netip.ParseAddrPort(string(t[albClient])); err == nil {
		e.Client = c
		conn = a.conns.assign(c, e.ReqStart)
		e.ConnID = conn.id
	} else {
		e.ConnID = a.r.newConn()
	}
	a.r.emit(e, conn)
	return true
}

// absoluteURL reports whether b is scheme://... with a lower-case scheme,
// as ALB writes every request target.
func absoluteURL(b []byte) bool {
	i := bytes.Index(b, []byte("://"))
	if i < 1 || i+3 >= len(b) || b[0] < 'a' || b[0] > 'z' {
		return false
	}
	for _, c := range b[1:i] {
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '+' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// hostHeader is the Host a client sent for authority: ALB writes the port
// even when it is the scheme's default, which a client leaves out.
func hostHeader(scheme, authority string) string {
	if p := urlPort(scheme, ""); p != "" && strings.HasSuffix(authority, ":"+p) {
		return strings.TrimSuffix(authority, ":"+p)
	}
	return authority
}

func unquote(b []byte) string {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	return string(unescape(b))
}
