package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/report"
	"github.com/spf13/cobra"
)

type replayOptions struct {
	IO       IO
	Tape     string
	Scale    float64
	Duration time.Duration
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
and exits 130.`,
		Example: `  # The busiest minute at twice its rate, against staging:
  herd replay peak.tape --target http://staging:8080 --window peak:60s --scale 2x

  # Play the whole tape four times faster, for five minutes, GETs only:
  herd replay peak.tape --target http://127.0.0.1:8080 --scale-mode compress --scale 4 \
      --duration 5m --read-only --json run.json

  # Recorded cookies were redacted: send a staging session instead.
  herd replay peak.tape --target https://staging.example.com --set-header 'Cookie: session=abc'`,
		Args: exactArgs(1, "a tape file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tape = args[0]
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
	s, err := opts.validate()
	if err != nil {
		return err
	}
	if opts.Duration < 0 {
		return usageErrorf("--duration must not be negative")
	}
	if err := opts.load(ctx, opts.IO, opts.Tape, s, opts.Window); err != nil {
		return err
	}
	defer s.close()
	sched := replay.PlanSchedule(s.plan, s.mode, opts.Scale, opts.Seed, opts.Duration)
	res := opts.file("replay", opts.Tape, s)
	res.Params.StepS = sched.Duration.Seconds()
	view := newProgressView(opts.IO, 5*time.Second)
	label := fmt.Sprintf("%gx", opts.Scale)
	view.Step(label)
	o := opts.options(s, sched, 0)
	o.Progress = view.Update
	st, err := replay.Run(ctx, s.plan, o)
	if err != nil {
		view.Close()
		return err
	}
	results.Evaluate(st, s.slos, 0)
	view.EndStep(fmt.Sprintf("sent %d, p99 %.1f ms, errors %d", st.Sent, st.LatencyMS.P99, st.Errors))
	view.Close()
	res.Steps = append(res.Steps, *st)
	res.Aborted, res.AbortReason, res.Interrupted = st.Aborted, st.AbortReason, st.Interrupted
	results.Analyze(res)
	if err := opts.writeOutputs(opts.IO, res, func() error { return report.WriteText(opts.IO.Out, res) }); err != nil {
		return err
	}
	switch {
	case st.Interrupted:
		return context.Canceled
	case st.Aborted:
		return &RequirementError{Msg: "emergency stop: " + st.AbortReason}
	}
	return nil
}
