// Package results is the results file of herd replay and herd ramp (JSON,
// schema 1, documented in docs/results-format.md), with what every producer
// and consumer of it must agree on: latency histograms and their encoding,
// percentiles, SLO expressions and their evaluation, the breaking point and
// capacity analysis. replay writes it, report reads and merges it; neither
// imports the other, both import this.
package results

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Schema is the version of the results format written by this package.
const Schema = 1

// File is one results file: a replay (one step) or a ramp (several).
type File struct {
	Schema      int       `json:"schema"`
	Kind        string    `json:"kind"` // "replay", "ramp" or "shadow" (KindShadow)
	HerdVersion string    `json:"herd_version"`
	HerdCommit  string    `json:"herd_commit,omitempty"` // VCS commit of the herd that ran it, when known
	Target      string    `json:"target"`
	Tape        string    `json:"tape"`
	StartedAt   time.Time `json:"started_at"`
	Window      Window    `json:"window"`
	Params      Params    `json:"params"`
	Steps       []Step    `json:"steps"`

	// BreakingPoint is nil when no step failed.
	BreakingPoint *BreakingPoint `json:"breaking_point"`
	Capacity      Capacity       `json:"capacity"`
	Verdict       string         `json:"verdict"`
	Generator     Generator      `json:"generator"`
	Aborted       bool           `json:"aborted"`
	AbortReason   string         `json:"abort_reason,omitempty"`
	Interrupted   bool           `json:"interrupted"`
	// Recovery is the recovery check run after the breaking step (ramp
	// --recovery): does the target come back at normal load?
	Recovery *Recovery `json:"recovery,omitempty"`
	// TruthCapacityScale is set by herd demo: the analytic capacity of the
	// demo service for this traffic, to compare with Capacity.Scale.
	TruthCapacityScale *float64 `json:"truth_capacity_scale,omitempty"`
}

// Window is the part of the tape that was replayed.
type Window struct {
	Spec      string    `json:"spec"` // as given: "all", "peak:60s", "FROM-TO"
	Start     time.Time `json:"start"`
	DurationS float64   `json:"duration_s"`
	Requests  int64     `json:"requests"`    // replayable requests in it, at 1x
	RPS       float64   `json:"rps"`         // their rate: the 1x rate
	Conns     int64     `json:"connections"` // recorded connections in it
	Skipped   Counts    `json:"skipped"`     // recorded requests not replayed, by reason
	// RecordedS is the window's recorded span; DurationS is that span
	// without IdleRemovedS, the idle time beyond MaxIdleS that replay
	// shortened (0: none shortened). RPS is over DurationS.
	RecordedS    float64 `json:"recorded_s"`
	IdleRemovedS float64 `json:"idle_removed_s"`
	MaxIdleS     float64 `json:"max_idle_s"`
	// Clamped is set when the window asked for was longer than the
	// recording's activity: the whole recording was replayed instead.
	Clamped bool `json:"clamped"`
	// SampleWeight is how many real connections each recorded one stood
	// for: 100/sample_pct for a tape captured with --sample, absent (1)
	// otherwise. Requests and RPS are then the whole traffic's.
	SampleWeight float64 `json:"sample_weight,omitempty"`
}

// Params are the settings of the run.
type Params struct {
	ScaleMode   string   `json:"scale_mode"`
	Pacing      string   `json:"pacing"`
	TimeoutS    float64  `json:"timeout_s"`
	SettleS     float64  `json:"settle_s"`
	StepS       float64  `json:"step_duration_s"`
	CooldownS   float64  `json:"cooldown_s,omitempty"`
	SLOs        []string `json:"slos,omitempty"`
	Saturation  float64  `json:"saturation,omitempty"`
	MaxConns    int      `json:"max_conns"`
	MaxInflight int      `json:"max_inflight"`
	Seed        uint64   `json:"seed"`
	AbortOn     string   `json:"abort_on"`
	ReadOnly    bool     `json:"read_only,omitempty"`
	Require     *float64 `json:"require,omitempty"`
	Shard       string   `json:"shard,omitempty"`
	SetHeaders  []string `json:"set_headers,omitempty"` // names only: values may be secrets
	KeepHost    bool     `json:"keep_host,omitempty"`
	SendTrunc   bool     `json:"send_truncated,omitempty"`
	GOMAXPROCS  int      `json:"gomaxprocs"`
	Engine      string   `json:"engine,omitempty"` // loop or goroutine: how the requests were sent
	// Client emulation, when on.
	ClientTimeoutS float64 `json:"client_timeout_s,omitempty"`
	RetryPolicy    string  `json:"retry_policy,omitempty"`
	RetryBudget    float64 `json:"retry_budget,omitempty"`
	DispatchLagS   float64 `json:"generator_lag_bound_s"`
	// Filters of the plan and the rate cap, when given: --server,
	// --target-map (NAME=URL), --include, --exclude, --rewrite-path
	// (FROM=TO) and --max-rate (requests per second).
	Servers     []string `json:"servers,omitempty"`
	TargetMap   []string `json:"target_map,omitempty"`
	Include     []string `json:"include,omitempty"`
	Exclude     []string `json:"exclude,omitempty"`
	RewritePath []string `json:"rewrite_path,omitempty"`
	MaxRate     float64  `json:"max_rate,omitempty"`
	Protocol    string   `json:"protocol,omitempty"` // --protocol: auto, h1, h2, h2c
}

// Counts maps a reason or class to a number.
type Counts map[string]int64

// Step is one replay at one multiple.
type Step struct {
	Scale      float64 `json:"scale"`
	Refinement bool    `json:"refinement,omitempty"`
	// Retry marks a step run again because herd itself was the limit the
	// first time.
	Retry bool `json:"retry,omitempty"`
	// BeyondBreak marks a step run above the first failure to measure the
	// throughput plateau (ramp --find-capacity): it is not a step of the
	// search for the breaking point.
	BeyondBreak bool `json:"beyond_break,omitempty"`
	// Recovery marks the step run after the break at a normal multiple
	// (ramp --recovery): it judges recovery, not capacity.
	Recovery  bool      `json:"recovery,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// DurationS is the measured period: the step minus its settle time.
	DurationS float64 `json:"duration_s"`
	SettleS   float64 `json:"settle_s"`

	Planned      int64   `json:"planned"` // requests scheduled in the measured period
	OfferedRPS   float64 `json:"offered_rps"`
	AchievedRPS  float64 `json:"achieved_rps"` // successful responses completed per second
	Sent         int64   `json:"sent"`
	Completed    int64   `json:"completed"` // responses that are not errors
	Errors       int64   `json:"errors"`
	ErrorRate    float64 `json:"error_rate"`
	Mismatches   int64   `json:"mismatches"` // completed with another status than recorded
	MismatchRate float64 `json:"mismatch_rate"`
	// Good is the number of successful responses completed inside the
	// measured period, the numerator of AchievedRPS.
	Good         int64  `json:"good"`
	ErrorClasses Counts `json:"errors_by_class"`
	NotSent      Counts `json:"not_sent"`
	// Written counts the sent requests at least one byte of which herd
	// wrote to a connection: the requests the target may have read. The
	// rest of Sent failed before that (connect, TLS, a refused write).
	Written int64 `json:"written,omitempty"`
	// Retried counts the requests sent again on a fresh connection after
	// an attempt that wrote none of them: never a duplicate at the target.
	// It is herd's own transport resend, not an emulated client's retry
	// (Retries).
	Retried int64 `json:"retried,omitempty"`
	// Unsolicited counts the times bytes that no request asked for were
	// found on an idle connection: discarded, never a response.
	Unsolicited int64 `json:"unsolicited_response,omitempty"`
	// FirstErrors holds, for each error class, the message of its first
	// error: why, in words. These four fields are left out when zero or
	// empty, as in files of herds that did not count them.
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	// Attempts counts every request sent, retries included, when clients
	// are emulated (0 otherwise); Retries counts the retries by what
	// triggered them; Amplification is Attempts over Sent, and
	// AttemptLatencyMS every attempt's latency from its own due time.
	Attempts         int64        `json:"attempts,omitempty"`
	Retries          Counts       `json:"retries,omitempty"`
	Amplification    float64      `json:"amplification,omitempty"`
	AttemptLatencyMS *Percentiles `json:"attempt_latency_ms,omitempty"`
	// Remaining are the requests planned for the step after an emergency
	// stop or an interrupt ended it: never sent, and outside the measured
	// period, which ends at the stop (DurationS is the time it ran).
	Remaining int64 `json:"remaining,omitempty"`

	LatencyMS     Percentiles `json:"latency_ms"`
	ServiceMS     Percentiles `json:"service_ms"`
	TTFBMS        Percentiles `json:"ttfb_ms"`
	ScheduleLagMS Percentiles `json:"schedule_lag_ms"`
	DispatchLagMS Percentiles `json:"dispatch_lag_ms"`
	// ConnectMS: time to open a connection (TCP, TLS handshake, HTTP/2
	// settings), one value per connection opened. It is also part of the
	// latency of the first request on that connection. Absent from
	// results written before it existed.
	ConnectMS *Percentiles `json:"connect_ms,omitempty"`
	// HTTP2 counts what HTTP/2 adds; absent when nothing went over HTTP/2.
	HTTP2 *HTTP2 `json:"http2,omitempty"`

	Routes []Route `json:"routes"`
	// Targets say where the requests went, when a run sent to several
	// (targets.go); absent with one target.
	Targets    []TargetResult `json:"targets,omitempty"`
	Timeline   []Second       `json:"timeline"`
	Histograms Histograms     `json:"histograms"`

	Passed     bool     `json:"passed"`
	Violations []string `json:"violations"`
	// FailedRoute is the route whose SLO failed, when a per-route SLO did.
	FailedRoute string    `json:"failed_route,omitempty"`
	Generator   Generator `json:"generator"`
	Aborted     bool      `json:"aborted,omitempty"`
	AbortReason string    `json:"abort_reason,omitempty"`
	Interrupted bool      `json:"interrupted,omitempty"`
	CPU         float64   `json:"cpu_cores"` // mean cores herd used during the step
}

// Label names a step in reports: 2x, ~2.5x for a refinement step, 3x
// (again) for a step run again, 5x (beyond) for a step past the break that
// measured the plateau, 1x (recovery) for the recovery check.
func (st *Step) Label() string {
	s := strconv.FormatFloat(st.Scale, 'g', -1, 64) + "x"
	if st.Refinement {
		s = "~" + s
	}
	if st.Retry {
		s += " (again)"
	}
	if st.BeyondBreak {
		s += " (beyond)"
	}
	if st.Recovery {
		s += " (recovery)"
	}
	return s
}

// StepHist is one of a step's five histograms, as Step.Hists lists them.
type StepHist struct {
	// Name is its key under "histograms" in the results file.
	Name string
	// Encoded is the histogram, Percentiles the figures read from it.
	Encoded     *string
	Percentiles *Percentiles
}

// Hists lists st's five histograms (latency, service, ttfb, schedule_lag,
// dispatch_lag, the order of the results file), pointing into st: the one
// table of them that code reading or writing all five goes through, so
// that none can be paired with another's percentiles.
func (st *Step) Hists() []StepHist {
	h := &st.Histograms
	return []StepHist{
		{"latency", &h.Latency, &st.LatencyMS},
		{"service", &h.Service, &st.ServiceMS},
		{"ttfb", &h.TTFB, &st.TTFBMS},
		{"schedule_lag", &h.ScheduleLag, &st.ScheduleLagMS},
		{"dispatch_lag", &h.DispatchLag, &st.DispatchLagMS},
	}
}

// Percentiles summarize a latency histogram, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	// None is set when the histogram held nothing (no response came
	// back): every figure is then not available, written as JSON null and
	// shown as n/a, never as zero.
	None bool `json:"-"`
}

// percentilesJSON is Percentiles as written: null when there is none.
type percentilesJSON struct {
	P50  *float64 `json:"p50"`
	P90  *float64 `json:"p90"`
	P95  *float64 `json:"p95"`
	P99  *float64 `json:"p99"`
	P999 *float64 `json:"p999"`
	Max  *float64 `json:"max"`
	Mean *float64 `json:"mean"`
}

// MarshalJSON writes the figures, or nulls when there is none.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	if p.None {
		return json.Marshal(percentilesJSON{})
	}
	return json.Marshal(percentilesJSON{&p.P50, &p.P90, &p.P95, &p.P99, &p.P999, &p.Max, &p.Mean})
}

// UnmarshalJSON reads figures written by MarshalJSON; nulls (or no
// figure at all) read as None.
func (p *Percentiles) UnmarshalJSON(b []byte) error {
	var j percentilesJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = Percentiles{}
	if j.P50 == nil && j.P99 == nil && j.Max == nil {
		p.None = true
		return nil
	}
	for _, f := range []struct {
		src *float64
		dst *float64
	}{{j.P50, &p.P50}, {j.P90, &p.P90}, {j.P95, &p.P95}, {j.P99, &p.P99}, {j.P999, &p.P999}, {j.Max, &p.Max}, {j.Mean, &p.Mean}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	return nil
}

// Text writes the figure named by metric in milliseconds the way people
// read it, or n/a when there is none.
func (p Percentiles) Text(metric string) string {
	v, ok := p.Metric(metric)
	if !ok || p.None {
		return "n/a"
	}
	return fmtMS(v)
}

// Metric is the figure of p named p50, p90, p95, p99, p999, max or mean,
// as SLOs and comparisons name them; false for any other name.
func (p Percentiles) Metric(name string) (float64, bool) {
	switch name {
	case "p50":
		return p.P50, true
	case "p90":
		return p.P90, true
	case "p95":
		return p.P95, true
	case "p99":
		return p.P99, true
	case "p999":
		return p.P999, true
	case "max":
		return p.Max, true
	case "mean":
		return p.Mean, true
	}
	return 0, false
}

// Route is the share of a step that one route template received.
type Route struct {
	Method     string      `json:"method"`
	Route      string      `json:"route"`
	Sent       int64       `json:"sent"`
	Completed  int64       `json:"completed"`
	Errors     int64       `json:"errors"`
	Mismatches int64       `json:"mismatches"`
	ErrorRate  float64     `json:"error_rate"`
	LatencyMS  Percentiles `json:"latency_ms"`
	Histogram  string      `json:"histogram"` // latency, encoded as Encode does
}

// Second is one second of a step's timeline. Its counts and latencies are
// of the requests due in that second; Finished counts the successful
// responses that completed in it, whenever they were due.
type Second struct {
	T          int64 `json:"t"` // seconds from the start of the step
	Finished   int64 `json:"finished_ok"`
	Due        int64 `json:"due,omitempty"` // requests the schedule offered in it, sent or not
	Sent       int64 `json:"sent"`
	Completed  int64 `json:"completed"`
	Errors     int64 `json:"errors"`
	Mismatches int64 `json:"mismatches"`
	// Attempts counts the attempts of the requests due in this second,
	// retries included, when clients are emulated: over Sent, the
	// second's amplification.
	Attempts  int64   `json:"attempts,omitempty"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	MaxMS     float64 `json:"max_ms"`
	Histogram string  `json:"histogram"` // latency at 2 significant digits
}

// Histograms of the measured period, encoded as Encode does.
type Histograms struct {
	Latency     string `json:"latency"`
	Service     string `json:"service"`
	TTFB        string `json:"ttfb"`
	ScheduleLag string `json:"schedule_lag"`
	DispatchLag string `json:"dispatch_lag"`
	// Attempt is every attempt's latency from its own due time, when
	// clients are emulated with retries; Latency is then each request's,
	// from its first attempt's due time to its outcome.
	Attempt string `json:"attempt_latency,omitempty"`
	Connect string `json:"connect,omitempty"` // see Step.ConnectMS
}

// HTTP2 is what a step's HTTP/2 connections add to its counts.
type HTTP2 struct {
	// Resent: streams the target refused unprocessed (above a GOAWAY's
	// last stream id), sent again on a new connection. Each reached the
	// target's application once.
	Resent int64 `json:"resent_after_goaway"`
	// SlotWaits: requests that waited for a stream slot (the target's
	// SETTINGS_MAX_CONCURRENT_STREAMS); the wait is in their schedule lag
	// and latency.
	SlotWaits int64 `json:"stream_slot_waits"`
}

// Generator says whether herd itself was the limit.
type Generator struct {
	Limited bool     `json:"limited"`
	Notes   []string `json:"notes"`
}

// Recovery is the outcome of replaying at a normal multiple after the
// target broke: a target that stays broken at a load it handled before is
// in a metastable failure, kept there by something (retries, work done
// for clients that gave up) other than the load.
type Recovery struct {
	Scale     float64 `json:"scale"`
	DurationS float64 `json:"duration_s"`
	// WindowS is the sliding window over which the SLOs must hold.
	WindowS   float64 `json:"window_s"`
	Recovered bool    `json:"recovered"`
	// TimeToRecoverS is from the start of the recovery phase to the end of
	// the first window over which the SLOs held; null when they never did.
	TimeToRecoverS *float64 `json:"time_to_recover_s"`
	// Amplification is attempts over requests during the recovery phase:
	// how much the emulated clients' retries multiplied the load.
	Amplification float64 `json:"amplification"`
	// After names what the recovery followed: "breaking step" or
	// "emergency stop".
	After string `json:"after"`
	Note  string `json:"note,omitempty"`
}

// BreakingPoint is where a ramp first failed.
type BreakingPoint struct {
	Scale         float64  `json:"scale"`
	LastGoodScale float64  `json:"last_good_scale"` // 0 when the first step failed
	RefinedScale  *float64 `json:"refined_scale,omitempty"`
	CapacityScale float64  `json:"capacity_scale"`
	CapacityRPS   float64  `json:"capacity_rps"`
	Reason        string   `json:"reason"`
	// Route is the route that broke first, when the evidence singles one
	// out; Blame says why, or that the routes degraded together.
	Route string `json:"route,omitempty"`
	Blame string `json:"blame,omitempty"`
}

// Capacity is the highest rate of successful responses the target
// sustained, in requests per second and as a multiple of the 1x rate.
type Capacity struct {
	RPS   float64 `json:"rps"`
	Scale float64 `json:"scale"`
	// Reached is true when a step offered more than the target delivered:
	// the figure is the plateau. False means it is only a lower bound.
	Reached bool `json:"reached"`
	// Evidence says what the figure rests on: the steps that reached the
	// plateau, or why it is only a lower bound.
	Evidence string `json:"evidence,omitempty"`
}

// Write encodes f as indented JSON.
func (f *File) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// SLOs as typed: "p99<1s", which grep finds, not "p99\u003c1s".
	enc.SetEscapeHTML(false)
	return enc.Encode(f)
}

// Read decodes a results file and checks its schema.
func Read(r io.Reader) (*File, error) {
	var f File
	dec := json.NewDecoder(r)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode results: %w", err)
	}
	if f.Schema != Schema {
		return nil, fmt.Errorf("results schema %d, this herd reads %d", f.Schema, Schema)
	}
	return &f, nil
}

// ReadFile reads the results file at path.
func ReadFile(path string) (*File, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer in.Close()
	f, err := Read(in)
	if err != nil {
		return nil, fmt.Errorf("read results %q: %w", path, err)
	}
	return f, nil
}
