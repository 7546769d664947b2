package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/report"
	"github.com/spf13/cobra"
)

type replayOptions struct {
	IO          IO
	Tape        string
	Scale       float64
	Duration    time.Duration
	windowGiven bool // --window was on the command line, even empty
	replayFlags
}

func newReplayCmd(io IO) *cobra.Command {
	opts := &replayOptions{IO: io, Scale: 1}
	cmd := &cobra.Command{
		Use:   "replay TAPE --target URL",
		Short: "Replay a tape against a target at a multiple of the recorded rate",
		Long: `Replay the requests of a tape against a target, on the recorded schedule,
scaled to a multiple of the recorded rate, over real keep-alive connections
that mirror the recorded client connections.

Latency is measured from the moment each request was due, so a slow target
cannot hide behind a generator that waited for it; service time (from the
actual send), time to first byte and schedule lag are recorded apart.
Timeouts are always on, in-flight requests are bounded, only the target is
ever contacted (no redirects are followed), and an emergency stop ends the
run when the error rate crosses --abort-on (exit 3). Ctrl-C stops sending,
waits for requests in flight up to --timeout, writes the partial results
and exits 130.

Before it starts, herd prints the plan (requests, length, connections) and
refuses a plan longer than --max-run or one that needs more connections at
once than --max-conns (exit 2). Idle stretches longer than --max-idle are
shortened to it.

Exit codes: 0 the replay met its SLOs (--slo; default p99<1s and
errors<1%), 3 an SLO failed or the emergency stop fired, 130 interrupted,
2 usage, 1 failure of the tool or its input.`,
		Example: `  # The busiest minute at twice its rate, against staging:
  herd replay peak.tape --target http://staging:8080 --window peak:60s --scale 2x

  # Play the whole tape four times faster, for five minutes, GETs only:
  herd replay peak.tape --target http://127.0.0.1:8080 --scale-mode compress --scale 4 \
      --duration 5m --read-only --json run.json

  # Recorded secrets were redacted: send staging values instead.
  herd replay peak.tape --target https://staging.example.com --set-header 'Cookie: session=abc' \
      --set-query api_key=STAGING_KEY --set-body-field password=staging-pass`,
		Args: exactArgs(1, "a tape file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tape = args[0]
			opts.windowGiven = cmd.Flags().Changed("window")
			return runReplay(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	opts.addFlags(fs, "all")
	fs.Var(scaleValue{&opts.Scale}, "scale", "multiple of the recorded rate: 2, 2x, 2.5x or 250%")
	fs.DurationVar(&opts.Duration, "duration", 0, "run this long, repeating (clone) or looping (compress) the window; default one pass")
	return cmd
}

func runReplay(ctx context.Context, opts *replayOptions) error {
	if opts.windowGiven && opts.Window == "" {
		return usageErrorf("--window is empty: use all, peak:DUR or FROM-TO")
	}
	s, err := opts.validate()
	if err != nil {
		return err
	}
	defer s.close()
	plan, err := opts.load(ctx, opts.IO, opts.Tape, s, opts.Window)
	if err != nil {
		return err
	}
	view := newProgressView(opts.IO, 5*time.Second, s.settings.SLOs)
	o := replay.ReplayOptions{Settings: s.settings, Scale: opts.Scale, Duration: opts.Duration}
	o.Progress = view.Update
	o.Ready = func(ol replay.Outline) error {
		if err := ready(ctx, opts.IO, s.startAt)(ol); err != nil {
			return err
		}
		view.Step(fmt.Sprintf("%gx", opts.Scale))
		return nil
	}
	res, err := replay.Replay(ctx, plan, o)
	if err != nil {
		view.Close()
		return optionFlags(err)
	}
	st := &res.Steps[0]
	view.EndStep(st)
	view.Close()
	if err := opts.writeOutputs(opts.IO, res, func() error { return report.WriteText(opts.IO.Out, res) }); err != nil {
		return err
	}
	return replayOutcome(st)
}

// replayOutcome maps a finished replay to the exit code: interrupted (130),
// an emergency stop or a failed SLO (3).
func replayOutcome(st *results.Step) error {
	switch {
	case st.Interrupted:
		return context.Canceled
	case st.Aborted:
		return &RequirementError{Msg: "emergency stop: " + st.AbortReason}
	case !st.Passed && st.Generator.Limited:
		return &RequirementError{Msg: "SLOs not verified: herd itself was the limit (" + strings.Join(st.Generator.Notes, "; ") + "); failed: " + strings.Join(st.Violations, "; ")}
	case !st.Passed:
		return &RequirementError{Msg: "SLOs failed: " + strings.Join(st.Violations, "; ")}
	}
	return nil
}
