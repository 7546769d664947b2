package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/outfile"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/report"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/pflag"
)

// replayFlags are the options herd replay and herd ramp share.
type replayFlags struct {
	Target        string
	ScaleMode     string
	Window        string
	Pacing        string
	Timeout       time.Duration
	MaxConns      int
	MaxInflight   int
	Seed          uint64
	SetHeaders    []string
	SetQuery      []string
	SetBodyFields []string
	KeepHost      bool
	ReadOnly      bool
	SendTruncated bool
	SendNoBody    bool
	AbortOn       string
	SLOs          []string
	JSON          string
	HTML          string
	Raw           string
	Insecure      bool
	LagBound      time.Duration
	Shard         string
	StartAt       string
	MaxIdle       time.Duration
	MaxRun        time.Duration
	Engine        string
	ClientTimeout time.Duration
	RetryPolicy   string
	RetryBudget   float64
	Force         bool
	// Filters (filters.go).
	Servers     []string
	TargetMap   []string
	Include     []string
	Exclude     []string
	RewritePath []string
	MaxRate     float64
	tlsFlags

	out *outfile.Guard // checks and writes --json, --html, --raw; set by load
}

func (f *replayFlags) addFlags(fs *pflag.FlagSet, window string) {
	fs.StringVar(&f.Target, "target", "", "base URL of the service to replay against: http://host:port (required)")
	fs.StringVar(&f.ScaleMode, "scale-mode", "clone", "clone: replay each recorded connection k times; compress: play the window k times faster")
	fs.StringVar(&f.Window, "window", window, "part of the tape to replay: all, peak:DUR (busiest DUR) or FROM-TO (5m-6m, or RFC 3339 times)")
	fs.StringVar(&f.Pacing, "pacing", "session", "session: a request waits for its connection's previous response, as the client did; strict: every request leaves on time, on a spare connection if needed")
	fs.DurationVar(&f.Timeout, "timeout", replay.DefaultTimeout, "per-request timeout, from the send; always on")
	fs.IntVar(&f.MaxConns, "max-conns", replay.DefaultMaxConns, "open connections to the target, at most")
	fs.IntVar(&f.MaxInflight, "max-inflight", replay.DefaultMaxInflight, "requests awaiting a response, at most")
	fs.Uint64Var(&f.Seed, "seed", 1, "seed of the clone jitter and fractional copies: same seed, same schedule")
	fs.StringArrayVar(&f.SetHeaders, "set-header", nil, "'Name: value' to send instead of the recorded header (repeatable); replaces redacted secrets")
	fs.StringArrayVar(&f.SetQuery, "set-query", nil, "NAME=VALUE: send VALUE as this query parameter wherever a request has it (repeatable); replaces redacted secrets")
	fs.StringArrayVar(&f.SetBodyFields, "set-body-field", nil, "NAME=VALUE: send VALUE in this form, JSON or multipart body field wherever a request has it (repeatable); replaces redacted secrets")
	fs.BoolVar(&f.Force, "force", false, forceUsage)
	fs.BoolVar(&f.KeepHost, "keep-host", false, "send the recorded Host header instead of the target's")
	fs.BoolVar(&f.ReadOnly, "read-only", false, "send only GET, HEAD and OPTIONS requests")
	fs.BoolVar(&f.SendTruncated, "send-truncated", false, "also send requests whose body was cut at capture (with the shorter body)")
	fs.BoolVar(&f.SendNoBody, "send-without-body", false, "on a tape without request bodies (an access log), also send POST, PUT, PATCH ... requests, with an empty body")
	fs.StringVar(&f.AbortOn, "abort-on", replay.DefaultAbort, "emergency stop: errors>PCT/WINDOW stops when more than PCT of the requests that finished over the last WINDOW failed (at least 10); off disables it")
	fs.StringArrayVar(&f.SLOs, "slo", nil, "objective a run must meet (repeatable): p50|p90|p95|p99|p999|max<DUR, errors<PCT, mismatches<PCT, p99(/route)<DUR (default "+strings.Join(results.DefaultSLOs, ", ")+")")
	fs.StringVar(&f.JSON, "json", "", "write the results (JSON, schema 1) to this file; - for stdout")
	fs.StringVar(&f.HTML, "html", "", "write the HTML report (self-contained, with charts) to this file; - for stdout")
	fs.StringVar(&f.Raw, "raw", "", "write one JSON line per request, zstd-compressed, to this file")
	fs.BoolVar(&f.Insecure, "insecure", false, "with an https target, do not verify its certificate")
	f.tlsFlags.addFlags(fs)
	fs.DurationVar(&f.LagBound, "generator-lag", replay.DefaultLagBound, "dispatch lag p99 beyond which herd, not the target, is called the limit")
	fs.StringVar(&f.Shard, "shard", "", "i/N (from 0/N to N-1/N) or auto/N (i from $JOB_COMPLETION_INDEX, a Kubernetes Indexed Job): replay only shard i of N of the recorded connections, one of N herd processes (merge their results with herd report merge)")
	fs.StringVar(&f.StartAt, "start-at", "", "wait until this RFC 3339 time before starting, to align shards")
	fs.DurationVar(&f.MaxIdle, "max-idle", replay.DefaultMaxIdle, "shorten every stretch with no request due longer than this to it, so a recording that spans nights replays its activity; 0 keeps wall-clock time")
	fs.DurationVar(&f.MaxRun, "max-run", replay.DefaultMaxRun, "refuse to start a run planned to last longer than this")
	fs.StringVar(&f.Engine, "engine", "auto", "how requests are sent: loop (event loops, one per core; Linux, plain http, one target), goroutine (a goroutine per connection; every platform and TLS) or auto (loop where it applies); both measure and count alike")
	fs.DurationVar(&f.ClientTimeout, "client-timeout", 0, "emulate clients that give up after this long, closing the connection (on HTTP/2 resetting the stream; separate from --timeout, herd's own bound; 0: off)")
	fs.StringVar(&f.RetryPolicy, "retry-policy", "none", "emulate client retries after a client timeout, a connection error, a 5xx or a 429: none, fixed:N/DELAY or exp:N/BASE/MAX[/jitter], +retry-after to honour Retry-After (e.g. exp:3/100ms/2s/jitter)")
	fs.Float64Var(&f.RetryBudget, "retry-budget", 0, "cap emulated retries at this fraction of first attempts (plus 10), as a client retry budget does (0.1 = 10%); 0: no cap")
	f.addFilterFlags(fs)
}

// setup is what both commands build from the flags: the library's
// options, and what only the command line does (the start time, files).
type setup struct {
	settings replay.Settings
	plan     replay.PlanOptions
	startAt  time.Time
	tape     *tape.Reader
	raw      *os.File // --raw output, when asked for
}

// close releases what load opened.
func (s *setup) close() {
	if s.tape != nil {
		s.tape.Close()
	}
	if s.raw != nil {
		s.raw.Close()
	}
}

// validate translates the flags into the library's options. Only the
// syntax of each flag is checked here; what the values mean for the run
// (bounds, a plan that cannot run) is checked by the library, whose
// OptionError the command reports as a usage error.
func (f *replayFlags) validate() (*setup, error) {
	s := &setup{}
	var err error
	if f.Target == "" && len(f.TargetMap) == 0 {
		return nil, usageErrorf("--target is required: the base URL of the service, e.g. --target http://127.0.0.1:8080 (or --target-map NAME=URL for each server of the tape)")
	}
	st := &s.settings
	if err := f.validateFilters(s); err != nil {
		return nil, err
	}
	if f.Target != "" {
		if st.Target, err = parseTarget(f.Target); err != nil {
			return nil, &UsageError{Err: err}
		}
	}
	if st.Mode, err = replay.ParseMode(f.ScaleMode); err != nil {
		return nil, &UsageError{Err: err}
	}
	if st.Pacing, err = replay.ParsePacing(f.Pacing); err != nil {
		return nil, &UsageError{Err: err}
	}
	if st.Abort, err = replay.ParseAbort(f.AbortOn); err != nil {
		return nil, &UsageError{Err: err}
	}
	if st.Engine, err = replay.ParseEngine(f.Engine); err != nil {
		return nil, &UsageError{Err: err}
	}
	slos := f.SLOs
	if len(slos) == 0 {
		slos = results.DefaultSLOs
	}
	if st.SLOs, err = results.ParseSLOs(slos); err != nil {
		return nil, &UsageError{Err: err}
	}
	if f.JSON == "-" && f.HTML == "-" {
		return nil, usageErrorf("--json - and --html - both want standard output: write one of them to a file")
	}
	if f.Timeout <= 0 {
		return nil, usageErrorf("--timeout must be positive: it is always on")
	}
	if f.MaxConns <= 0 || f.MaxInflight <= 0 {
		return nil, usageErrorf("--max-conns and --max-inflight must be positive")
	}
	if f.MaxRun <= 0 {
		return nil, usageErrorf("--max-run must be positive")
	}
	if f.MaxIdle < 0 || (f.MaxIdle > 0 && f.MaxIdle < time.Second) {
		return nil, usageErrorf("--max-idle must be 0 (keep every idle stretch) or at least 1s (got %v)", f.MaxIdle)
	}
	st.Seed, st.Timeout, st.MaxConns, st.MaxInflight, st.LagBound, st.MaxRun = f.Seed, f.Timeout, f.MaxConns, f.MaxInflight, f.LagBound, f.MaxRun
	if st.Retry, err = replay.ParseRetryPolicy(f.RetryPolicy); err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--retry-policy: %w", err)}
	}
	st.ClientTimeout, st.RetryBudget = f.ClientTimeout, f.RetryBudget
	if err := f.tlsFlags.apply(st, f.Insecure); err != nil {
		return nil, err
	}
	po := &s.plan
	po.HTTP2 = st.Protocol != replay.ProtoH1
	po.Target, po.KeepHost, po.ReadOnly, po.SendTruncated = st.Target, f.KeepHost, f.ReadOnly, f.SendTruncated
	po.SendWithoutBody = f.SendNoBody
	po.MaxIdle = f.MaxIdle
	if f.MaxIdle == 0 {
		po.MaxIdle = -1 // off: the library's zero is its default
	}
	if f.Shard != "" {
		if po.Shard, err = parseShard(f.Shard); err != nil {
			return nil, &UsageError{Err: err}
		}
	}
	if f.StartAt != "" {
		if s.startAt, err = time.Parse(time.RFC3339Nano, f.StartAt); err != nil {
			return nil, usageErrorf("--start-at %q: use an RFC 3339 time such as 2026-11-22T15:00:00Z", f.StartAt)
		}
	}
	for _, h := range f.SetHeaders {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return nil, usageErrorf("--set-header %q: use 'Name: value'", h)
		}
		po.SetHeaders = append(po.SetHeaders, tape.Field{Name: name, Value: strings.TrimSpace(value)})
	}
	if po.SetQuery, err = parseAssignments("--set-query", f.SetQuery); err != nil {
		return nil, err
	}
	if po.SetBodyFields, err = parseAssignments("--set-body-field", f.SetBodyFields); err != nil {
		return nil, err
	}
	return s, nil
}

// parseShard parses --shard: i/N, or auto/N with i from
// JOB_COMPLETION_INDEX, which Kubernetes sets in the pods of an Indexed Job.
func parseShard(s string) (replay.Shard, error) {
	if n, ok := strings.CutPrefix(s, "auto/"); ok {
		i, set := os.LookupEnv("JOB_COMPLETION_INDEX")
		if !set {
			return replay.Shard{}, fmt.Errorf("--shard %s: JOB_COMPLETION_INDEX is not set (Kubernetes sets it in the pods of an Indexed Job); give the index instead: --shard 0/%s", s, n)
		}
		sh, err := replay.ParseShard(strings.TrimSpace(i) + "/" + n)
		if err != nil {
			return replay.Shard{}, fmt.Errorf("--shard %s with JOB_COMPLETION_INDEX=%q: %w", s, i, err)
		}
		return sh, nil
	}
	sh, err := replay.ParseShard(s)
	if err != nil {
		return replay.Shard{}, fmt.Errorf("--shard: %w", err)
	}
	return sh, nil
}

func parseTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--target %q: use http://host:port or https://host:port", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("--target %q: give only scheme, host and port; requests keep their recorded paths", s)
	}
	u.Path = ""
	return u, nil
}

// load opens the tape, plans the window and creates the --raw file; the
// caller closes them with s.close.
func (f *replayFlags) load(ctx context.Context, io IO, path string, s *setup, window string) (*replay.Plan, error) {
	w, err := replay.ParseWindow(window)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	s.plan.Window = w
	if f.out, err = guardOutputs(f.Force, []string{path, path + tape.PartialSuffix}, output{"--json", f.JSON}, output{"--html", f.HTML}, output{"--raw", f.Raw}); err != nil {
		return nil, err
	}
	r, err := tape.Open(path)
	if err != nil {
		return nil, err
	}
	s.tape = r
	if !r.Indexed() {
		fmt.Fprintf(io.Err, "herd: warning: %s has no index (not closed cleanly); reading it by scanning\n", path)
	}
	plan, err := replay.Load(ctx, r, s.plan)
	if err != nil {
		return nil, fmt.Errorf("tape %q: %w", path, optionFlags(err))
	}
	for _, d := range r.Damage() {
		fmt.Fprintf(io.Err, "herd: warning: %v\n", d)
	}
	if n := plan.Skipped["no_body_recorded"]; n > 0 {
		fmt.Fprintf(io.Err, "herd: the tape holds no request bodies (its source is %s): %d requests that need one (POST, PUT, PATCH ...) are not sent; --send-without-body sends them with an empty body\n", r.Meta().Source.Kind, n)
	}
	if plan.Clamped {
		fmt.Fprintf(io.Err, "herd: warning: window %s is longer than the recording's activity (%s): replaying the whole recording, repeated to fill each step\n",
			plan.Spec, textfmt.Duration(plan.Length))
	}
	if plan.IdleRemoved > 0 {
		fmt.Fprintf(io.Err, "herd: %d idle stretches longer than %s shortened to it, %s of recorded time left out (--max-idle; 0 keeps them)\n",
			plan.Shortened(), textfmt.Duration(plan.MaxIdle), textfmt.Duration(plan.IdleRemoved))
	}
	warnRedacted(io.Err, plan.Redacted)
	warnServers(io.Err, plan, len(f.Servers)+len(f.TargetMap) > 0)
	if limit, err := replay.RaiseFileLimit(); err == nil && limit > 0 && uint64(f.MaxConns)+64 > limit {
		fmt.Fprintf(io.Err, "herd: warning: the open-file limit is %d, below --max-conns %d; raise it with ulimit -n\n", limit, f.MaxConns)
	}
	s.settings.TapeName = path
	if f.Raw != "" {
		if s.raw, err = f.out.Create("--raw", f.Raw); err != nil {
			return nil, err
		}
		s.settings.Raw = s.raw
	}
	return plan, nil
}

// ready prints the outline of a run on stderr, then waits for --start-at:
// the library calls it once the run is planned and checked.
func ready(ctx context.Context, io IO, startAt time.Time) func(replay.Outline) error {
	return func(o replay.Outline) error {
		what := fmt.Sprintf("%d requests over %s at 1x (%.1f req/s), %d connections", o.Requests, textfmt.Duration(o.Window),
			float64(o.Requests)/o.Window.Seconds(), o.Conns)
		capped := ""
		if o.MaxRate > 0 {
			capped = fmt.Sprintf("; capped at %g req/s (--max-rate)", o.MaxRate)
		}
		if o.Kind == "ramp" {
			fmt.Fprintf(io.Err, "herd: plan: %s; %d steps up to %gx, %s without cooldowns, up to about %d connections at once%s\n",
				what, o.Steps, o.Scale, textfmt.Duration(o.Duration), o.PeakConns, capped)
		} else {
			fmt.Fprintf(io.Err, "herd: plan: %s; at %gx: %d requests over %s, about %d connections at once%s\n",
				what, o.Scale, o.Planned, textfmt.Duration(o.Duration), o.PeakConns, capped)
			if rate := float64(o.Planned) / o.Duration.Seconds(); o.MaxRate > 0 && rate > o.MaxRate {
				fmt.Fprintf(io.Err, "herd: warning: at %gx the plan offers %.1f req/s on average, above --max-rate %g: requests over the cap are not sent (max_rate)\n",
					o.Scale, rate, o.MaxRate)
			}
		}
		return waitUntil(ctx, io, startAt)
	}
}

// optionFlags turns the library's OptionError into a usage error that
// names the flag, with the flags that help.
func optionFlags(err error) error {
	var oe *replay.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	flag := "--" + strings.ReplaceAll(oe.Option, "_", "-")
	msg := flag + ": " + oe.Err.Error()
	if hint, ok := optionHints[oe.Option]; ok {
		msg += ": " + hint
	} else if oe.Hint != "" {
		msg += ": " + oe.Hint
	}
	return &UsageError{Err: errors.New(msg)}
}

// optionHints say in flags what the library's hints say in words.
var optionHints = map[string]string{
	"max_run": "replay a shorter window (--window peak:60s), keep idle stretches short (--max-idle 60s), set --duration, or raise --max-run",
	"scale":   "lower --scale, raise --max-conns (and ulimit -n), or split the run with --shard i/N over several machines",
	"engine":  "use --engine goroutine (or auto)",
}

// waitUntil sleeps until t (when set), saying so on stderr.
func waitUntil(ctx context.Context, io IO, t time.Time) error {
	d := time.Until(t)
	if t.IsZero() || d <= 0 {
		return nil
	}
	fmt.Fprintf(io.Err, "herd: waiting %v, until %s (--start-at)\n", d.Round(time.Second), t.UTC().Format(time.RFC3339))
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeOutputs writes the results, then the HTML report (the results
// first: they are what a failed render must not cost), each to its file or
// to stdout for -, and prints the text report on stdout unless --json - or
// --html - took it.
func (f *replayFlags) writeOutputs(out IO, res *results.File, text func() error) error {
	if f.JSON != "" {
		if err := writeOutput(out, f.out, "--json", f.JSON, res.Write); err != nil {
			return err
		}
	}
	if f.HTML != "" {
		if err := writeOutput(out, f.out, "--html", f.HTML, func(w io.Writer) error { return report.WriteHTML(w, res) }); err != nil {
			return err
		}
	}
	if f.JSON == "-" || f.HTML == "-" {
		return nil
	}
	return text()
}
