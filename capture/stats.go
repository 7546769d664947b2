package capture

import "github.com/herd-replay/herd/tape"

// Stats counts everything a capture saw. Every packet, connection and
// request ends up in exactly one of the buckets that describe it, so that
// nothing disappears without a counter.
type Stats struct {
	// Packets.
	Packets          int64 // packets read
	Bytes            int64 // captured bytes of those packets
	NonTCPPackets    int64 // valid frames of other protocols: ARP, UDP, ICMP ...
	FilteredPackets  int64 // TCP packets on ports other than Options.Ports
	MalformedPackets int64 // frames whose link, IP or TCP header does not decode
	TruncatedPackets int64 // TCP packets cut by the snap length
	IPFragments      int64 // IP fragments (not reassembled)
	KernelDrops      int64 // live capture: packets the kernel dropped before herd read them
	TruncatedFiles   int64 // capture files that end inside a packet record

	// Connections.
	TCPConnections     int64 // connections seen (a reused 4-tuple counts again)
	HTTPConnections    int64 // connections that carried HTTP
	NonHTTPConnections int64 // connections with payload and no HTTP start line
	EmptyConnections   int64 // connections that carried no payload at all
	SampledOut         int64 // connections left out by Options.SamplePct
	// SamplePct is the sampling rate in force (100 or 0: every connection);
	// SampleReductions counts the times a CPU budget lowered it.
	SamplePct           float64
	SampleReductions    int64
	UpgradedConnections int64 // connections that left HTTP (101 or CONNECT)
	MemoryFlushes       int64 // times a connection was flushed to bound memory
	H2Connections       int64 // connections that carried HTTP/2 (h2c), of HTTPConnections
	H2Upgrades          int64 // ... of which reached it through Upgrade: h2c
	H2SyncLost          int64 // HTTP/2 directions whose framing or HPACK state was lost (a gap, bad frames)

	// Bytes outside messages.
	Gaps         int64 // segments lost in the capture (holes in a stream)
	GapBytes     int64 // bytes lost in those holes
	SkippedBytes int64 // bytes outside any HTTP message (junk, resynchronisation)
	TunnelBytes  int64 // bytes after an Upgrade or CONNECT

	// Exchanges written.
	Exchanges         int64 // exchanges written to the tape
	Responses         int64 // ... of which with a complete response
	NoResponse        int64 // ... without any response
	IncompleteGap     int64 // ... whose response lost a segment
	IncompleteEnd     int64 // ... whose response the end of the capture or connection cut
	IncompleteFlush   int64 // ... whose response a memory flush cut
	IncompleteBroken  int64 // ... whose response framing broke
	IncompleteReset   int64 // ... whose HTTP/2 response stream was reset
	BodiesTruncated   int64 // ... whose request body exceeded MaxBody
	Redacted          int64 // ... with a value redacted
	InterimResponses  int64 // 1xx responses (100 Continue ...), not counted as responses
	RequestLostInGap  int64 // discarded: a request lost whole in a gap
	RequestIncomplete int64 // discarded: cut by a gap, the snap length or the end of the capture
	RequestMalformed  int64 // discarded: a body that cannot be framed
	RequestTooLarge   int64 // discarded: a head or field beyond the tape's limits
	RequestFlushed    int64 // discarded: cut by a memory flush
	OrphanResponses   int64 // discarded: responses to requests the capture did not see
	RequestReset      int64 // discarded: an HTTP/2 request whose stream was reset before it ended
	PushedStreams     int64 // discarded: HTTP/2 server pushes (no client request to replay)

	// Redactions counts the values redacted by kind and name, and the
	// bodies that could not be inspected, as redact.Redactor.Counters
	// names them. Run sets it when it returns.
	Redactions map[string]int64
}

func (s *Stats) discard(r discardReason) {
	switch r {
	case reqIncomplete:
		s.RequestIncomplete++
	case reqLostInGap:
		s.RequestLostInGap++
	case reqMalformed:
		s.RequestMalformed++
	case reqTooLarge:
		s.RequestTooLarge++
	case reqMemoryFlush:
		s.RequestFlushed++
	case reqReset:
		s.RequestReset++
	}
}

// Tape returns the counters as the tape stores them (snake_case names;
// see docs/recording.md for what each means). Zero counters are left out.
func (s *Stats) Tape() tape.Stats {
	counters := map[string]int64{
		"packets":                   s.Packets,
		"bytes":                     s.Bytes,
		"non_tcp_packets":           s.NonTCPPackets,
		"filtered_packets":          s.FilteredPackets,
		"malformed_packets":         s.MalformedPackets,
		"truncated_packets":         s.TruncatedPackets,
		"ip_fragments":              s.IPFragments,
		"kernel_drops":              s.KernelDrops,
		"truncated_files":           s.TruncatedFiles,
		"tcp_connections":           s.TCPConnections,
		"http_connections":          s.HTTPConnections,
		"empty_connections":         s.EmptyConnections,
		"upgraded_connections":      s.UpgradedConnections,
		"memory_flushes":            s.MemoryFlushes,
		"h2_connections":            s.H2Connections,
		"h2c_upgrades":              s.H2Upgrades,
		"h2_sync_lost":              s.H2SyncLost,
		"sample_reductions":         s.SampleReductions,
		"gaps":                      s.Gaps,
		"gap_bytes":                 s.GapBytes,
		"skipped_bytes":             s.SkippedBytes,
		"tunnel_bytes":              s.TunnelBytes,
		"exchanges":                 s.Exchanges,
		"responses":                 s.Responses,
		"requests_without_response": s.NoResponse,
		"incomplete_gap":            s.IncompleteGap,
		"incomplete_capture_end":    s.IncompleteEnd,
		"incomplete_memory_flush":   s.IncompleteFlush,
		"incomplete_malformed":      s.IncompleteBroken,
		"incomplete_reset":          s.IncompleteReset,
		"body_truncated":            s.BodiesTruncated,
		"redacted":                  s.Redacted,
		"interim_responses":         s.InterimResponses,
	}
	discarded := map[string]int64{
		"request_incomplete":      s.RequestIncomplete,
		"request_lost_in_gap":     s.RequestLostInGap,
		"request_malformed":       s.RequestMalformed,
		"request_too_large":       s.RequestTooLarge,
		"request_memory_flush":    s.RequestFlushed,
		"orphan_response":         s.OrphanResponses,
		"request_reset":           s.RequestReset,
		"pushed_stream":           s.PushedStreams,
		"non_http_connections":    s.NonHTTPConnections,
		"sampled_out_connections": s.SampledOut,
	}
	for k, v := range s.Redactions {
		counters[k] += v
	}
	for k, v := range counters {
		if v == 0 {
			delete(counters, k)
		}
	}
	for k, v := range discarded {
		if v == 0 {
			delete(discarded, k)
		}
	}
	return tape.Stats{Counters: counters, Discarded: discarded}
}
