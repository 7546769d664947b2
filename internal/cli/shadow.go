package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/textfmt"
	"github.com/herd-replay/herd/internal/units"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/report"
	"github.com/herd-replay/herd/shadow"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type shadowOptions struct {
	IO         IO
	Interface  string
	Ports      []int
	Scale      float64
	Delay      time.Duration
	Interval   time.Duration
	Duration   time.Duration
	MaxBody    string
	MaxHeld    string
	Saturation float64
	redact     redactFlags
	replayFlags

	flags *pflag.FlagSet // to tell the replay flags that do not apply
	// openLive opens the live source (tests may replace it).
	openLive func(capture.LiveOptions) (capture.Source, error)
}

// notForShadow are the replay flags that do not apply to live traffic,
// and why.
var notForShadow = map[string]string{
	"window":            "the traffic is live: there is no tape to take a window of",
	"scale-mode":        "live traffic can only be cloned (--scale); it cannot be played faster than it happens",
	"max-idle":          "idle time is real time when shadowing: a request cannot be sent before it is captured, so no idle stretch can be shortened",
	"shard":             "a shard is a share of a tape's connections; shadow from one host, or capture a share with --server or --include",
	"start-at":          "shadowing starts when the traffic does",
	"max-run":           "a shadow runs until Ctrl-C or --duration",
	"send-without-body": "captured requests carry their bodies",
	"raw":               "the per-request log is written by one step at a time; shadow's intervals overlap as they end",
}

func newShadowCmd(io IO) *cobra.Command {
	opts := &shadowOptions{IO: io, Scale: 1, openLive: capture.OpenLive}
	cmd := &cobra.Command{
		Use:   "shadow -i IFACE --port N --target URL",
		Short: "Replay live traffic to a target as it happens, at a multiple, measured like a replay",
		Long: `Capture HTTP/1.x traffic live from an interface (as herd capture -i does)
and send each request to the target at its recorded time plus --delay, on
connections that mirror the recorded ones, --scale times over (clone mode:
every connection k times). This is GoReplay's main mode, measured like herd
replay: latency from each request's due time, errors, mismatches against
the status production answered, and the emergency stop.

Only requests the capture saw whole are sent: a request cut by a lost
packet or a client that went away never is. Secrets are redacted before a
request is sent, as capture redacts a tape (--no-redact sends them as they
were); --set-header, --set-query and --set-body-field send staging values.

The results come one step per --interval (10 s): a status line on stderr
for each, and the results file (--json), with the text report on stdout at
the end. The run lasts until Ctrl-C (SIGINT or SIGTERM) or --duration
(rounded up to whole intervals). Memory is bounded: a request that cannot
be sent within one more delay after it was due (it took longer than that
to capture, or waits behind a slow response on its connection) is not
sent, and past --max-held of requests waiting, new ones are not taken;
both are counted by reason.

Exit codes: 0 the run ended (Ctrl-C, SIGTERM or --duration) and every
whole interval met its SLOs; 3 an interval failed its SLOs or the
emergency stop fired; 2 usage; 1 failure (the capture could not be opened:
it needs root or CAP_NET_RAW).`,
		Example: `  # Production on :8080 of this host, to staging at twice the traffic:
  sudo herd shadow -i eth0 --port 8080 --target http://staging:8080 --scale 2x --json shadow.json

  # Ten minutes, half a second behind, one service of a shared port, capped:
  sudo herd shadow -i eth0 --port 80 --target http://staging-api:8080 --server api.example.com \
      --delay 500ms --duration 10m --max-rate 2000 --slo 'p99<300ms'

  # Staging credentials instead of the redacted production ones:
  sudo herd shadow -i eth0 --port 8080 --target https://staging.example.com \
      --set-header 'Authorization: Bearer STAGING' --exclude 'POST /payments*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShadow(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	opts.flags = f
	f.StringVarP(&opts.Interface, "interface", "i", "", "capture live on this interface (Linux; needs root or CAP_NET_RAW)")
	f.IntSliceVar(&opts.Ports, "port", nil, "production server port to capture (repeatable; required)")
	f.Var(scaleValue{&opts.Scale}, "scale", "copies of the live traffic sent: 2, 2x or 200% (clone mode: each recorded connection k times)")
	f.DurationVar(&opts.Delay, "delay", shadow.DefaultDelay, "send each request this long after its recorded start")
	f.DurationVar(&opts.Interval, "interval", replay.DefaultInterval, "length of each step of the results")
	f.DurationVar(&opts.Duration, "duration", 0, "stop after this long (rounded up to whole intervals); default: until Ctrl-C")
	f.StringVar(&opts.MaxBody, "max-body", "1MiB", "request body bytes kept, hence sent; a longer body is cut and its request skipped unless --send-truncated")
	f.StringVar(&opts.MaxHeld, "max-held", "64MiB", "bytes of requests waiting to be sent, at most; past it new requests are not taken (memory_limit)")
	f.Float64Var(&opts.Saturation, "saturation", 0.9, "an interval fails when its achieved rate is below this fraction of what it was offered: the target did not keep up (0: SLOs only)")
	opts.redact.addFlags(f)
	f.Lookup("no-redact").Usage = "send every value as captured, secrets included"
	opts.replayFlags.addFlags(f, "")
	for name := range notForShadow {
		f.Lookup(name).Hidden = true
	}
	return cmd
}

func runShadow(ctx context.Context, opts *shadowOptions) error {
	o, err := opts.check()
	if err != nil {
		return err
	}
	io := opts.IO
	if opts.Interface != "" {
		o.Source, err = opts.openLive(capture.LiveOptions{Interface: opts.Interface, Ports: opts.Ports})
		if err != nil {
			return err
		}
	}
	until := "until Ctrl-C"
	if opts.Duration > 0 {
		until = "for " + textfmt.Duration(opts.Duration)
	}
	capped := ""
	if opts.MaxRate > 0 {
		capped = fmt.Sprintf(", capped at %g req/s (--max-rate)", opts.MaxRate)
	}
	fmt.Fprintf(io.Err, "herd: shadowing %s port %s to %s: each request %v after it was recorded, at %gx, in %v intervals, %s%s\n",
		opts.Interface, joinInts(opts.Ports), targetsText(o.Plan), opts.Delay, opts.Scale, opts.Interval, until, capped)
	if !opts.redact.Off {
		fmt.Fprintf(io.Err, "herd: secrets are redacted before they are sent (Authorization, cookies, tokens ...): pass staging values with --set-header, --set-query and --set-body-field, or --no-redact\n")
	}
	o.Live.OnStep = func(i int, st *results.Step) { fmt.Fprintln(io.Err, shadowStepLine(i, st, opts.Interval)) }
	f, stats, err := shadow.Run(ctx, o)
	writeShadowSummary(io.Err, stats)
	if f == nil {
		return optionFlags(err)
	}
	if werr := opts.writeOutputs(io, f, func() error { return report.WriteText(io.Out, f) }); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	return shadowOutcome(f)
}

// check translates the flags into the library's options.
func (opts *shadowOptions) check() (shadow.Options, error) {
	var o shadow.Options
	for name, why := range notForShadow {
		if opts.flags != nil && opts.flags.Changed(name) {
			return o, usageErrorf("--%s does not apply to herd shadow: %s", name, why)
		}
	}
	switch {
	case opts.Interface == "":
		return o, usageErrorf("-i IFACE is required: the interface production's traffic passes through")
	case len(opts.Ports) == 0:
		return o, usageErrorf("--port is required: the production server's port")
	case opts.Delay < 0:
		return o, usageErrorf("--delay must not be negative")
	case opts.Interval < time.Second:
		return o, usageErrorf("--interval must be at least 1s")
	case opts.Duration < 0:
		return o, usageErrorf("--duration must not be negative")
	case opts.Saturation < 0 || opts.Saturation > 1:
		return o, usageErrorf("--saturation is a fraction between 0 and 1")
	}
	for _, p := range opts.Ports {
		if p < 1 || p > 65535 {
			return o, usageErrorf("--port %d: ports are 1..65535", p)
		}
	}
	s, err := opts.replayFlags.validate()
	if err != nil {
		return o, err
	}
	if opts.out, err = guardOutputs(opts.Force, nil, output{"--json", opts.JSON}, output{"--html", opts.HTML}); err != nil {
		return o, err
	}
	if o.MaxBody, err = parseMaxBody(opts.MaxBody); err != nil {
		return o, err
	}
	held, err := units.ParseBytes(opts.MaxHeld)
	if err != nil || held <= 0 {
		return o, usageErrorf("--max-held %q: want a positive size such as 64MiB", opts.MaxHeld)
	}
	if o.Redact, _, err = opts.redact.options(); err != nil {
		return o, err
	}
	o.Interface, o.Ports, o.Delay = opts.Interface, opts.Ports, opts.Delay
	if opts.Delay == 0 {
		o.Delay = -1 // none: the library's zero is its default
	}
	o.Plan = s.plan
	o.Live = replay.LiveOptions{Settings: s.settings, Scale: opts.Scale, Interval: opts.Interval, Duration: opts.Duration,
		MaxHeld: held, Saturation: opts.Saturation}
	o.Live.TapeName = "live"
	return o, nil
}

// shadowOutcome maps a finished run to the exit code: an emergency stop
// or a whole interval that failed its SLOs exits 3. Ctrl-C is how a
// shadow without --duration ends: it is no failure.
func shadowOutcome(f *results.File) error {
	if f.Aborted {
		return &RequirementError{Msg: "emergency stop: " + f.AbortReason}
	}
	for i := range f.Steps {
		st := &f.Steps[i]
		if !st.Interrupted && !st.Passed {
			return &RequirementError{Msg: fmt.Sprintf("the interval at %s failed its SLOs: %s", st.StartedAt.Local().Format("15:04:05"),
				strings.Join(st.Violations, "; "))}
		}
	}
	return nil
}

// shadowStepLine is the status line of one interval.
func shadowStepLine(i int, st *results.Step, interval time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "herd: %s +%v %gx: sent %d, p99 %s, errors %d (%s), mismatches %d",
		st.StartedAt.Local().Format("15:04:05"), time.Duration(i)*interval, st.Scale, st.Sent, st.LatencyMS.Text("p99"),
		st.Errors, results.FmtPct(st.ErrorRate), st.Mismatches)
	if len(st.NotSent) > 0 {
		fmt.Fprintf(&b, "; not sent: %s", counts(st.NotSent))
	}
	switch {
	case st.Aborted:
		b.WriteString("; EMERGENCY STOP: " + st.AbortReason)
	case st.Interrupted:
		b.WriteString("; interrupted")
	case !st.Passed:
		b.WriteString("; FAIL: " + strings.Join(st.Violations, "; "))
	}
	return b.String()
}

// writeShadowSummary prints what the capture and the live replay counted.
func writeShadowSummary(w io.Writer, st shadow.Stats) {
	ts := st.Capture.Tape()
	fmt.Fprintf(w, "herd: captured %d whole requests from %d packets (%s); %d taken to send\n",
		st.Capture.Exchanges, st.Capture.Packets, bytesIEC(st.Capture.Bytes), st.Live.Taken)
	fmt.Fprintf(w, "  capture:   %s\n", counts(ts.Counters))
	fmt.Fprintf(w, "  discarded: %s\n", counts(ts.Discarded))
	if len(st.Live.Skipped) > 0 {
		fmt.Fprintf(w, "  not taken: %s\n", counts(st.Live.Skipped))
	}
	if len(st.Redactions) > 0 {
		_, redacted, _ := splitRedacted(st.Redactions)
		if redacted != "" {
			fmt.Fprintf(w, "  redacted:  %s\n", redacted)
		}
	}
	if st.Capture.KernelDrops > 0 {
		fmt.Fprintf(w, "herd: warning: the kernel dropped %d packets (the capture could not keep up); requests they carried were not sent\n", st.Capture.KernelDrops)
	}
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// targetsText names where requests go: the target, or each of a map.
func targetsText(po replay.PlanOptions) string {
	if len(po.TargetMap) == 0 {
		return po.Target.String()
	}
	parts := make([]string, len(po.TargetMap))
	for i, m := range po.TargetMap {
		parts[i] = m.Name + " -> " + m.URL.String()
	}
	return strings.Join(parts, ", ")
}
