package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/cobra"
)

type inspectOptions struct {
	IO      IO
	Path    string
	JSON    bool
	Window  time.Duration
	MaxIdle time.Duration
	Top     int
}

func newInspectCmd(io IO) *cobra.Command {
	opts := &inspectOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "inspect TAPE",
		Short: "Show what a tape holds: traffic, peak, endpoints, capture counters",
		Long: `Show what a tape holds: requests, responses, connections, duration, bytes,
methods, status classes, the busiest second and the busiest window (60 s by
default; the window 'herd replay --window peak:60s' replays), the idle gaps
longer than --max-idle and the active time without them (a recording that
spans nights or days is replayed by its activity, with its gaps shortened
to --max-idle), the top
endpoints by route template (numeric ids, UUIDs and long hex strings become
:id), incomplete and redacted exchanges, the capture's counters of anything
it discarded, and the capture metadata.

A tape that was not closed cleanly (NAME.tape.partial after a crash) is read
up to its last complete chunk; damage is reported on stderr.`,
		Example: `  herd inspect peak.tape
  herd inspect peak.tape --json | jq .peak_window
  herd inspect peak.tape --window 5m --top 30
  herd inspect merged.tape --max-idle 10m   # list only gaps longer than 10 minutes`,
		Args: exactArgs(1, "a tape file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			return runInspect(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print JSON (schema 1) instead of text")
	f.DurationVar(&opts.Window, "window", time.Minute, "length of the busiest window to find (whole seconds)")
	f.DurationVar(&opts.MaxIdle, "max-idle", replay.DefaultMaxIdle, "list gaps without requests longer than this, and find the busiest window over active time, as replay does with the same --max-idle (0: wall-clock time)")
	f.IntVar(&opts.Top, "top", 10, "endpoints to list (0: all)")
	return cmd
}

// maxGaps is how many gaps inspect lists; the count says how many more.
const maxGaps = 20

func runInspect(ctx context.Context, opts *inspectOptions) error {
	if opts.Window < time.Second || opts.Window%time.Second != 0 {
		return usageErrorf("--window must be a whole number of seconds, at least 1s (got %v)", opts.Window)
	}
	if opts.Top < 0 {
		return usageErrorf("--top must be 0 or more")
	}
	if opts.MaxIdle < 0 || (opts.MaxIdle > 0 && opts.MaxIdle%time.Second != 0) {
		return usageErrorf("--max-idle must be 0 or a whole number of seconds (got %v)", opts.MaxIdle)
	}
	r, err := tape.Open(opts.Path)
	if err != nil {
		return err
	}
	defer r.Close()
	s, err := tape.Summarize(ctx, r, int64(opts.Window/time.Second))
	if err != nil {
		return fmt.Errorf("read tape %q: %w", opts.Path, err)
	}
	if !s.Indexed {
		fmt.Fprintf(opts.IO.Err, "herd: warning: %s has no index (it was not closed cleanly); read by scanning\n", opts.Path)
	}
	for _, d := range s.Damage {
		fmt.Fprintf(opts.IO.Err, "herd: warning: %v\n", d)
	}
	if opts.Top > 0 && len(s.Endpoints) > opts.Top {
		s.Endpoints = s.Endpoints[:opts.Top]
	}
	idle := int64(opts.MaxIdle / time.Second)
	s.PeakWindow = s.Rates.BusiestActive(int64(opts.Window/time.Second), idle)
	if opts.JSON {
		return writeInspectJSON(opts.IO.Out, opts.Path, r.Size(), s, idle)
	}
	return writeInspectText(opts.IO.Out, opts.Path, r.Size(), s, idle)
}

// gaps lists the tape's gaps longer than maxIdle seconds (none when
// maxIdle is 0: no gap is shortened then, but the longest is still shown).
func gaps(s *tape.Summary, maxIdle int64) []tape.IdleGap {
	if maxIdle <= 0 {
		return nil
	}
	return s.Rates.Gaps(maxIdle + 1)
}

type inspectWindowJSON struct {
	WindowS int64   `json:"window_s"`
	RPS     float64 `json:"rps"`
	StartS  int64   `json:"start_s"`
	Start   string  `json:"start"`
	Count   int64   `json:"count"`
}

type inspectJSON struct {
	Schema      int               `json:"schema"`
	Tape        string            `json:"tape"`
	SizeBytes   int64             `json:"size_bytes"`
	Indexed     bool              `json:"indexed"`
	Requests    int64             `json:"requests"`
	Responses   int64             `json:"responses"`
	Connections int64             `json:"connections"`
	DurationS   float64           `json:"duration_s"`
	Start       string            `json:"start,omitempty"`
	End         string            `json:"end,omitempty"`
	Bytes       map[string]int64  `json:"bytes"`
	Peak        inspectWindowJSON `json:"peak"`
	PeakWindow  inspectWindowJSON `json:"peak_window"`
	Methods     map[string]int64  `json:"methods"`
	Statuses    map[string]int64  `json:"statuses"`
	Endpoints   []inspectEndpoint `json:"endpoints"`
	Flags       map[string]int64  `json:"flags"`
	Capture     map[string]int64  `json:"capture"`
	Discarded   map[string]int64  `json:"discarded"`
	Damage      []string          `json:"damage"`
	// Meta is null when the metadata block was damaged; MetaDamage says why.
	Meta       *tape.Meta `json:"meta"`
	MetaDamage string     `json:"meta_damage,omitempty"`
	// ActiveS is DurationS without the gaps longer than MaxIdleS.
	ActiveS  float64          `json:"active_s"`
	MaxIdleS float64          `json:"max_idle_s"`
	Gaps     []inspectGapJSON `json:"gaps"`
	// SamplePct is the percentage of connections a sampled capture kept
	// (absent: all); the rates above are the sample's.
	SamplePct float64 `json:"sample_pct,omitempty"`
	// Servers break the requests down by the server they went to: the
	// recorded address and the Host (or :authority) asked for.
	Servers []inspectServerJSON `json:"servers"`
}

type inspectServerJSON struct {
	Address     string  `json:"address"` // host:port connected to; "" when not recorded
	Host        string  `json:"host"`    // Host header or :authority; "" when none
	Requests    int64   `json:"requests"`
	Connections int64   `json:"connections"`
	RPS         float64 `json:"rps"` // over the active time (active_s), at least a second
}

type inspectGapJSON struct {
	Start   string `json:"start"`
	StartS  int64  `json:"start_s"` // from the second holding the first request
	LengthS int64  `json:"length_s"`
}

type inspectEndpoint struct {
	Method string `json:"method"`
	Route  string `json:"route"`
	Count  int64  `json:"count"`
}

// windowJSON expresses w relative to the second holding the first request.
func windowJSON(w tape.Window, first int64) inspectWindowJSON {
	return inspectWindowJSON{
		WindowS: w.Seconds,
		RPS:     results.Round3(w.Rate()),
		StartS:  w.Start - tape.UnixSecond(first),
		Start:   time.Unix(w.Start, 0).UTC().Format(time.RFC3339),
		Count:   w.Count,
	}
}

func flagCounts(s *tape.Summary) map[string]int64 {
	return map[string]int64{
		"no_response":         s.NoResponse,
		"response_incomplete": s.RespIncomplete,
		"gap":                 s.Gaps,
		"redacted":            s.Redacted,
		"body_truncated":      s.BodyTruncated,
		"upgraded":            s.Upgraded,
	}
}

func writeInspectJSON(w io.Writer, path string, size int64, s *tape.Summary, maxIdle int64) error {
	out := inspectJSON{
		Schema:      1,
		Tape:        path,
		SizeBytes:   size,
		Indexed:     s.Indexed,
		Requests:    s.Requests,
		Responses:   s.Responses,
		Connections: s.Connections,
		DurationS:   results.Round3(float64(s.Duration()) / 1e9),
		Bytes:       map[string]int64{"requests": s.ReqBytes, "responses": s.RespBytes},
		Peak:        windowJSON(s.Peak, s.First),
		PeakWindow:  windowJSON(s.PeakWindow, s.First),
		Methods:     s.Methods,
		Statuses:    s.Statuses,
		Endpoints:   []inspectEndpoint{},
		Flags:       flagCounts(s),
		Capture:     map[string]int64{},
		Discarded:   map[string]int64{},
		Damage:      []string{},
		ActiveS:     results.Round3(float64(s.Active(maxIdle+1)) / 1e9),
		MaxIdleS:    float64(maxIdle),
		Gaps:        []inspectGapJSON{},
	}
	if maxIdle <= 0 {
		out.ActiveS = out.DurationS
	}
	out.Servers = serversJSON(s, out.ActiveS)
	for _, g := range gaps(s, maxIdle) {
		out.Gaps = append(out.Gaps, inspectGapJSON{Start: time.Unix(g.Start, 0).UTC().Format(time.RFC3339),
			StartS: g.Start - tape.UnixSecond(s.First), LengthS: g.Seconds})
	}
	if s.MetaErr != nil {
		out.MetaDamage = s.MetaErr.Error()
	} else {
		out.Meta = &s.Meta
		if pct := s.Meta.Source.SamplePct; pct > 0 && pct < 100 {
			out.SamplePct = pct
		}
	}
	if s.Requests > 0 {
		out.Start = time.Unix(0, s.First).UTC().Format(time.RFC3339Nano)
		out.End = time.Unix(0, s.End).UTC().Format(time.RFC3339Nano)
	}
	for _, e := range s.Endpoints {
		out.Endpoints = append(out.Endpoints, inspectEndpoint{Method: e.Method, Route: e.Route, Count: e.Count})
	}
	if s.Stats != nil {
		maps.Copy(out.Capture, s.Stats.Counters)
		maps.Copy(out.Discarded, s.Stats.Discarded)
	}
	for _, d := range s.Damage {
		out.Damage = append(out.Damage, d.Error())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Routes and paths as typed: "/a&b", not "/a\u0026b".
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// counts renders a map as "k1 v1  k2 v2", largest first.
func counts(m map[string]int64) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func writeInspectText(w io.Writer, path string, size int64, s *tape.Summary, maxIdle int64) error {
	var b strings.Builder
	state := "indexed"
	if !s.Indexed {
		state = "no index: not closed cleanly"
	}
	kv := &textfmt.Table{}
	kv.Add("tape", fmt.Sprintf("%s (%s, %s)", path, bytesIEC(size), state))
	if s.Requests > 0 {
		start, end := time.Unix(0, s.First).UTC(), time.Unix(0, s.End).UTC()
		kv.Add("recorded", fmt.Sprintf("%s to %s (%s)", start.Format("2006-01-02 15:04:05.000"),
			end.Format("2006-01-02 15:04:05.000 MST"), textfmt.Duration(time.Duration(s.Duration()))))
		if gs := gaps(s, maxIdle); len(gs) > 0 {
			what := fmt.Sprintf("%d gaps longer than %s (replay shortens them to that: --max-idle)", len(gs), textfmt.Duration(time.Duration(maxIdle)*time.Second))
			if len(gs) == 1 {
				what = fmt.Sprintf("1 gap longer than %s (replay shortens it to that: --max-idle)", textfmt.Duration(time.Duration(maxIdle)*time.Second))
			}
			kv.Add("active", fmt.Sprintf("%s in %d stretches; %s", textfmt.Duration(time.Duration(s.Active(maxIdle+1))), len(gs)+1, what))
			for i, g := range gs {
				if i == maxGaps {
					kv.Add("", fmt.Sprintf("... and %d more", len(gs)-maxGaps))
					break
				}
				label := ""
				if i == 0 {
					label = "gaps"
				}
				kv.Add(label, fmt.Sprintf("%s from %s (+%s)", textfmt.Duration(time.Duration(g.Seconds)*time.Second),
					time.Unix(g.Start, 0).UTC().Format("2006-01-02 15:04:05"), textfmt.Duration(time.Duration(g.Start-tape.UnixSecond(s.First))*time.Second)))
			}
		}
	}
	m := s.Meta
	if s.MetaErr != nil {
		// Never show the zero value's defaults ("redaction off") as facts.
		kv.Add("metadata", "DAMAGED: source, redaction and writer unknown ("+s.MetaErr.Error()+")")
	}
	src := m.Source.Kind
	if len(m.Source.Files) > 0 {
		src += " " + strings.Join(m.Source.Files, ", ")
	}
	if m.Source.Interface != "" {
		src += " on " + m.Source.Interface
	}
	if len(m.Source.Ports) > 0 {
		src += fmt.Sprintf(", ports %v", m.Source.Ports)
	}
	if src != "" {
		kv.Add("source", src)
	}
	red := redactionText(m.Redaction)
	if s.MetaErr != nil {
		red = "unknown (metadata damaged)"
	}
	kv.Add("redaction", red)
	if pct := m.Source.SamplePct; pct > 0 && pct < 100 {
		kv.Add("sampled", fmt.Sprintf("%g%% of the connections; the rates below are the sample's: replay and ramp take 1x as %.4g times them", pct, 100/pct))
	}
	if m.HerdVersion != "" {
		by := "herd " + m.HerdVersion
		if m.HerdCommit != "" {
			by += " (commit " + m.HerdCommit + ")"
		}
		kv.Add("written by", fmt.Sprintf("%s at %s", by, m.Created.UTC().Format(time.RFC3339)))
	}
	for _, n := range m.Notes {
		kv.Add("note", n)
	}
	kv.Add("", "")
	kv.Add("requests", fmt.Sprintf("%d (complete responses %d, connections %d)", s.Requests, s.Responses, s.Connections))
	kv.Add("bytes", fmt.Sprintf("requests %s, responses %s", bytesIEC(s.ReqBytes), bytesIEC(s.RespBytes)))
	kv.Add("methods", counts(s.Methods))
	kv.Add("statuses", counts(s.Statuses))
	if s.Requests > 0 {
		kv.Add("peak", fmt.Sprintf("%d req/s in the busiest second, at %s (+%ds)", s.Peak.Count,
			time.Unix(s.Peak.Start, 0).UTC().Format("15:04:05"), s.Peak.Start-tape.UnixSecond(s.First)))
		w := fmt.Sprintf("%.1f req/s over the busiest %ds, from %s (+%ds)", s.PeakWindow.Rate(), s.PeakWindow.Seconds,
			time.Unix(s.PeakWindow.Start, 0).UTC().Format("15:04:05"), s.PeakWindow.Start-tape.UnixSecond(s.First))
		if time.Duration(s.PeakWindow.Seconds)*time.Second > time.Duration(s.Duration()) {
			w += "; the recording is shorter than that window"
		}
		kv.Add("", w)
	}
	kv.Add("flags", fmt.Sprintf("no response %d, response incomplete %d, gap %d, redacted %d, body truncated %d, upgraded %d",
		s.NoResponse, s.RespIncomplete, s.Gaps, s.Redacted, s.BodyTruncated, s.Upgraded))
	if s.Stats != nil {
		rest, redacted, skipped := splitRedacted(s.Stats.Counters)
		if redacted != "" {
			kv.Add("redactions", redacted)
		}
		if skipped != "" {
			kv.Add("not inspected", skipped)
		}
		kv.Add("capture", counts(rest))
		kv.Add("discarded", counts(s.Stats.Discarded))
	} else {
		kv.Add("capture", "no counters on this tape")
	}
	b.WriteString(kv.String())
	writeServers(&b, s, maxIdle)
	if len(s.Endpoints) > 0 {
		b.WriteString("\ntop endpoints\n")
		t := &textfmt.Table{Right: map[int]bool{0: true, 1: true}}
		t.Add("count", "share", "method", "route")
		for _, e := range s.Endpoints {
			t.Add(fmt.Sprint(e.Count), fmt.Sprintf("%.1f%%", 100*float64(e.Count)/float64(s.Requests)), e.Method, e.Route)
		}
		b.WriteString(t.String())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// serversJSON lists every server of the tape with its rate over the
// active time.
func serversJSON(s *tape.Summary, activeS float64) []inspectServerJSON {
	out := make([]inspectServerJSON, 0, len(s.Servers))
	for _, sv := range s.Servers {
		j := inspectServerJSON{Address: sv.Addr, Host: sv.Host, Requests: sv.Requests, Connections: sv.Connections}
		// Over at least a second, as replay's 1x rate is.
		j.RPS = results.Round3(float64(sv.Requests) / max(activeS, 1))
		out = append(out, j)
	}
	return out
}

// maxServersShown is how many servers the text lists.
const maxServersShown = 20

// writeServers lists the servers of a tape that holds more than one, and
// how to replay them.
func writeServers(b *strings.Builder, s *tape.Summary, maxIdle int64) {
	if len(s.Servers) < 2 {
		return
	}
	active := float64(s.Duration()) / 1e9
	if maxIdle > 0 {
		active = float64(s.Active(maxIdle+1)) / 1e9
	}
	fmt.Fprintf(b, "\n%d servers (replay one with --server NAME, or each to its own target with --target-map NAME=URL)\n", len(s.Servers))
	t := &textfmt.Table{Right: map[int]bool{0: true, 1: true, 2: true, 3: true}}
	t.Add("requests", "share", "conns", "req/s", "host", "address")
	for i, sv := range s.Servers {
		if i == maxServersShown {
			t.Add("", "", "", "", fmt.Sprintf("... and %d more (--json lists them all)", len(s.Servers)-maxServersShown), "")
			break
		}
		rate := fmt.Sprintf("%.1f", float64(sv.Requests)/max(active, 1))
		t.Add(fmt.Sprint(sv.Requests), fmt.Sprintf("%.1f%%", 100*float64(sv.Requests)/float64(s.Requests)),
			fmt.Sprint(sv.Connections), rate, orDash(sv.Host), orDash(sv.Addr))
	}
	b.WriteString(t.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
