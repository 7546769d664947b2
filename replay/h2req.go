package replay

import (
	"strconv"
	"strings"

	"github.com/herd-replay/herd/tape"
	"golang.org/x/net/http2/hpack"
)

// H2Req is a request as HTTP/2 sends it: pseudo-header fields apart,
// regular fields with lower-case names and without the fields HTTP/2
// forbids (RFC 9113 8.2.2), body and trailers.
type H2Req struct {
	Method, Scheme, Authority, Path string
	Header                          []hpack.HeaderField
	Body                            []byte
	Trailer                         []hpack.HeaderField
	// GRPC: the request's content-type is application/grpc*; GRPCStatus
	// is the recorded response's grpc-status ("" when none was recorded).
	GRPC       bool
	GRPCStatus string
	// After: the recorded client sent this request after the response to
	// the previous one on its connection had ended, so session pacing
	// waits for that response here too.
	After bool
}

// connectionFields are the HTTP/1.x fields about the connection, which
// HTTP/2 forbids.
var connectionFields = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"upgrade": true, "http2-settings": true, "host": true,
}

// h2Request renders e as HTTP/2 for the target: :authority is the
// target's host unless keepHost (then the recorded :authority or Host),
// the set headers replace recorded ones in place, framing fields go.
// prev is the exchange before e on its connection, or nil.
func h2Request(e, prev *tape.Exchange, scheme, host string, o PlanOptions) *H2Req {
	r := &H2Req{Method: e.Method, Scheme: scheme, Authority: host, Path: originForm(e.Target), Body: e.ReqBody}
	if r.Path == "" {
		r.Path = "/"
	}
	set := make(map[string]bool)
	for _, f := range e.ReqHeader {
		name := strings.ToLower(f.Name)
		switch {
		case name == ":authority" || (name == "host" && !e.IsHTTP2()):
			if o.KeepHost && f.Value != "" {
				r.Authority = f.Value
			}
			continue
		case strings.HasPrefix(name, ":"), connectionFields[name], isHop(name):
			continue
		case name == "te" && !strings.EqualFold(strings.TrimSpace(f.Value), "trailers"):
			continue
		case name == "content-type" && strings.HasPrefix(strings.ToLower(f.Value), "application/grpc"):
			r.GRPC = true
		}
		if overridden(name, o.SetHeaders) {
			if set[name] {
				continue
			}
			set[name] = true
			for _, s := range o.SetHeaders {
				if strings.EqualFold(s.Name, name) {
					r.Header = append(r.Header, hpack.HeaderField{Name: name, Value: s.Value})
				}
			}
			continue
		}
		r.Header = append(r.Header, hpack.HeaderField{Name: name, Value: f.Value})
	}
	for _, s := range o.SetHeaders {
		if name := strings.ToLower(s.Name); !set[name] && name != "host" {
			r.Header = append(r.Header, hpack.HeaderField{Name: name, Value: s.Value})
		}
	}
	if len(r.Body) > 0 {
		r.Header = append(r.Header, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(r.Body))})
	}
	for _, f := range e.ReqTrailer {
		r.Trailer = append(r.Trailer, hpack.HeaderField{Name: strings.ToLower(f.Name), Value: f.Value})
	}
	if r.GRPC {
		r.GRPCStatus, _ = e.Trailer("grpc-status")
		if r.GRPCStatus == "" {
			for _, f := range e.RespHeader { // a trailers-only response
				if strings.EqualFold(f.Name, "grpc-status") {
					r.GRPCStatus = f.Value
				}
			}
		}
	}
	r.After = prev != nil && prev.HasResponse() && e.ReqStart >= prev.RespEnd
	return r
}
