package record

import (
	"sync/atomic"

	"github.com/herd-replay/herd/tape"
)

// Stats counts what the proxy did. Each proxied request ends in exactly
// one of: written to the tape (Exchanges), or one of the discard reasons.
type Stats struct {
	// Connections.
	Connections      int64 // client connections accepted
	H1Connections    int64 // ... that spoke HTTP/1.x
	H2Connections    int64 // ... that spoke HTTP/2
	TLSConnections   int64 // ... over TLS
	TLSFailed        int64 // TLS handshakes that failed (not HTTP at all)
	EmptyConnections int64 // closed before sending a request
	UpstreamDials    int64 // connections opened to the upstream (HTTP/1.x clients)
	Upgraded         int64 // connections tunnelled after 101 or CONNECT
	TunnelBytes      int64 // bytes passed through tunnels, both ways

	// Requests.
	Requests         int64 // requests begun by clients: each is an exchange or discarded
	UpstreamErrors   int64 // ... answered 502 by herd: the upstream failed before responding
	UpstreamTimeouts int64 // ... answered 504 by herd: no response head in time
	UpstreamRetries  int64 // requests resent on a fresh upstream connection (idempotent, nothing of a response seen)
	Interim          int64 // 1xx responses passed through (not responses of their own)
	ReqBodyBytes     int64 // request body bytes passed through
	RespBodyBytes    int64 // response body bytes passed through

	// Exchanges written.
	Exchanges       int64 // exchanges handed to the tape
	Responses       int64 // ... with a complete response
	NoResponse      int64 // ... without one (upstream failure, client gone)
	Incomplete      int64 // ... whose response was cut
	BodiesTruncated int64 // ... whose request body exceeded MaxBody
	Redacted        int64 // ... with a value redacted

	// Discarded: proxied (or refused) but not on the tape.
	WriteFailed       int64 // the tape could not be written (a full disk)
	QueueFull         int64 // the tape writer was behind by QueueBytes
	MemoryLimit       int64 // recording the body would have passed MaxHeld
	RequestTooLarge   int64 // beyond the tape's bounds, or a head beyond 256 KiB (answered 431)
	RequestMalformed  int64 // not HTTP, or a body that cannot be framed (answered 400)
	RequestIncomplete int64 // the client went away or stalled before its request was whole
	UpstreamFailed    int64 // the upstream failed before the request's body was forwarded (answered 502)

	// Redactions counts the values redacted by kind and name, as
	// redact.Redactor.Counters names them.
	Redactions map[string]int64
}

// counters is Stats updated from many goroutines.
type counters struct {
	connections, h1, h2, tls, tlsFailed, empty, dials, upgraded, tunnelBytes atomic.Int64

	requests, upErrors, upTimeouts, upRetries, interim, reqBytes, respBytes atomic.Int64

	exchanges, responses, noResponse, incomplete, truncated, redacted atomic.Int64

	writeFailed, queueFull, memory, tooLarge, malformed, reqIncomplete, upFailed atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Connections: c.connections.Load(), H1Connections: c.h1.Load(), H2Connections: c.h2.Load(),
		TLSConnections: c.tls.Load(), TLSFailed: c.tlsFailed.Load(), EmptyConnections: c.empty.Load(),
		UpstreamDials: c.dials.Load(), Upgraded: c.upgraded.Load(), TunnelBytes: c.tunnelBytes.Load(),

		Requests: c.requests.Load(), UpstreamErrors: c.upErrors.Load(), UpstreamTimeouts: c.upTimeouts.Load(),
		UpstreamRetries: c.upRetries.Load(), Interim: c.interim.Load(),
		ReqBodyBytes: c.reqBytes.Load(), RespBodyBytes: c.respBytes.Load(),

		Exchanges: c.exchanges.Load(), Responses: c.responses.Load(), NoResponse: c.noResponse.Load(),
		Incomplete: c.incomplete.Load(), BodiesTruncated: c.truncated.Load(), Redacted: c.redacted.Load(),

		WriteFailed: c.writeFailed.Load(), QueueFull: c.queueFull.Load(), MemoryLimit: c.memory.Load(),
		RequestTooLarge: c.tooLarge.Load(), RequestMalformed: c.malformed.Load(), RequestIncomplete: c.reqIncomplete.Load(),
		UpstreamFailed: c.upFailed.Load(),
	}
}

// Discarded sums the requests that are not on the tape.
func (s *Stats) Discarded() int64 {
	return s.WriteFailed + s.QueueFull + s.MemoryLimit + s.RequestTooLarge + s.RequestMalformed + s.RequestIncomplete + s.UpstreamFailed
}

// Tape returns the counters as the tape stores them (snake_case names, see
// docs/recording.md). Zero counters are left out.
func (s *Stats) Tape() tape.Stats {
	c := map[string]int64{
		"connections":               s.Connections,
		"http1_connections":         s.H1Connections,
		"http2_connections":         s.H2Connections,
		"tls_connections":           s.TLSConnections,
		"tls_handshake_failed":      s.TLSFailed,
		"empty_connections":         s.EmptyConnections,
		"upstream_connections":      s.UpstreamDials,
		"upgraded_connections":      s.Upgraded,
		"tunnel_bytes":              s.TunnelBytes,
		"requests":                  s.Requests,
		"upstream_errors":           s.UpstreamErrors,
		"upstream_timeouts":         s.UpstreamTimeouts,
		"upstream_retries":          s.UpstreamRetries,
		"interim_responses":         s.Interim,
		"request_body_bytes":        s.ReqBodyBytes,
		"response_body_bytes":       s.RespBodyBytes,
		"exchanges":                 s.Exchanges,
		"responses":                 s.Responses,
		"requests_without_response": s.NoResponse,
		"response_incomplete":       s.Incomplete,
		"body_truncated":            s.BodiesTruncated,
		"redacted":                  s.Redacted,
	}
	for k, v := range s.Redactions {
		c[k] += v
	}
	d := map[string]int64{
		"tape_write_failed":  s.WriteFailed,
		"queue_full":         s.QueueFull,
		"memory_limit":       s.MemoryLimit,
		"request_too_large":  s.RequestTooLarge,
		"request_malformed":  s.RequestMalformed,
		"request_incomplete": s.RequestIncomplete,
		"upstream_failed":    s.UpstreamFailed,
	}
	for _, m := range []map[string]int64{c, d} {
		for k, v := range m {
			if v == 0 {
				delete(m, k)
			}
		}
	}
	return tape.Stats{Counters: c, Discarded: d}
}
