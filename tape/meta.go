package tape

import "time"

// Meta describes a tape: what was captured and how. It is stored in the
// META block at the start of the file.
type Meta struct {
	FormatVersion int       `json:"format_version"`
	HerdVersion   string    `json:"herd_version"`
	HerdCommit    string    `json:"herd_commit,omitempty"` // VCS commit of the herd that wrote it, when known
	Created       time.Time `json:"created"`
	Source        Source    `json:"source"`
	Redaction     Redaction `json:"redaction"`
	Notes         []string  `json:"notes,omitempty"`
}

// Source says where the exchanges came from.
type Source struct {
	// Kind is "pcap", "live" (packet capture), "proxy" (herd record),
	// "gor", "har", "access-log" (herd import) or "synthetic".
	Kind      string   `json:"kind"`
	Files     []string `json:"files,omitempty"`
	Interface string   `json:"interface,omitempty"`
	Ports     []int    `json:"ports,omitempty"`
	Filter    string   `json:"filter,omitempty"`
	SamplePct float64  `json:"sample_pct,omitempty"`
	MaxBody   int64    `json:"max_body,omitempty"`
	// NoRequestBodies is set when the source does not hold request bodies
	// (access logs): a request with a body cannot be replayed faithfully,
	// so replay sends only body-less methods by default.
	NoRequestBodies bool `json:"no_request_bodies,omitempty"`
}

// Redaction records which secrets were replaced at capture: the rules in
// force (docs/recording.md). What was replaced, by kind and name, is counted
// in the STAT block, written when the tape is closed.
type Redaction struct {
	Enabled bool     `json:"enabled"`
	Headers []string `json:"headers,omitempty"`
	Query   []string `json:"query,omitempty"`
	// BodyFields are the rules for form, JSON and multipart body fields.
	BodyFields []string `json:"body_fields,omitempty"`
	// Marker is the form of the values that replace secrets; empty on
	// tapes whose markers carry no length class.
	Marker string `json:"marker,omitempty"`
}

// Stats are the capture's counters, stored in the STAT block when the tape
// is closed cleanly. Discarded counts by reason what the capture saw and did
// not record as an exchange.
type Stats struct {
	Counters  map[string]int64 `json:"counters,omitempty"`
	Discarded map[string]int64 `json:"discarded,omitempty"`
}
