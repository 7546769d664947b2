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

type rampOptions struct {
	IO           IO
	Tape         string
	From         float64
	Step         float64
	To           float64
	StepDuration time.Duration
	Settle       time.Duration
	Cooldown     time.Duration
	Saturation   float64
	Refine       int
	FindCapacity bool
	Require      float64
	// The recovery check.
	Recovery       time.Duration
	RecoveryScale  float64
	RecoveryWindow time.Duration
	RecoveryAbort  string
	windowGiven    bool // --window was on the command line, even empty
	replayFlags
	coordFlags
}

func newRampCmd(io IO) *cobra.Command {
	opts := &rampOptions{IO: io, From: 1, Step: 0.5, To: 8, RecoveryScale: 1}
	cmd := &cobra.Command{
		Use:   "ramp TAPE --target URL",
		Short: "Replay at rising multiples until the target breaks: find its breaking point",
		Long: `Replay the tape's busiest window at rising multiples of its rate (--from,
--step, --to), one step of --step-duration each, and stop at the first step
that fails: an SLO violated (--slo; default p99<1s and errors<1%), or
achieved throughput below --saturation of offered. No step is ever run above
a failed one, unless --find-capacity asks for up to two more to measure the
throughput plateau. --refine N then bisects between the last passing and
the first failing multiple, after a --cooldown before each step.
--recovery D replays at 1x for D right after the break and says whether the
target comes back (with --client-timeout and --retry-policy emulating the
clients' retries, this is how a metastable failure shows).

The result names the breaking point (first failing multiple, last good one,
refined estimate, the reason and the route that failed first) and the raw
capacity: the plateau of successful responses per second, in req/s and as a
multiple of the window's rate. A step where herd itself was the limit ends
the ramp and is never called the target's breaking point. An emergency stop
ends the ramp at once (exit 3). Ctrl-C ends it at once too: the interrupted
step is neither passed nor failed, no breaking point is drawn from it, the
partial results are written, and herd exits 130.

Finding a breaking point is what a ramp is for, so a ramp whose steps fail
still exits 0, unless --require K makes it a release gate: exit 3 unless
every step up to K met its SLOs. Exit codes: 0 done, 3 an unmet --require
or an emergency stop, 130 interrupted, 2 usage, 1 failure of the tool or
its input.

Sharded (--shard i/N on N machines or pods), --coordinate DIR makes the
shards one ramp: they start together once all are ready, each step is
judged on the merged results of all shards (exactly what herd report merge
computes), a step herd limited on any shard is run again by all, and an
emergency stop or interrupt on one shard stops every shard within 2 s. A
shard that does not finish a step within --coordinate-timeout is reported,
and the others stop.`,
		Example: `  # Where does staging break, replaying last week's peak minute?
  herd ramp peak.tape --target http://staging:8080 --step-duration 60s --to 6x

  # Release gate: fail the pipeline unless 2x the peak holds with p99 under 300 ms.
  herd ramp peak.tape --target http://staging:8080 --from 1x --step 0.5x --to 2x \
      --slo 'p99<300ms' --slo 'errors<0.5%' --require 2x --json ramp.json

  # After the break, does it come back at 1x within a minute, with clients
  # that time out after 1 s and retry three times with backoff?
  herd ramp peak.tape --target http://staging:8080 --recovery 60s \
      --client-timeout 1s --retry-policy exp:3/100ms/2s/jitter --recovery-abort-on off

  # Narrow the breaking point down with three bisection steps.
  herd ramp peak.tape --target http://127.0.0.1:8080 --refine 3 --cooldown 20s

  # One of 4 shards (a Kubernetes Indexed Job): they start together, judge each
  # step on all their traffic and stop together; then herd report merge.
  herd ramp peak.tape --target http://staging:8080 --shard auto/4 \
      --coordinate /shared/coord/run-1 --json /shared/results/shard-$JOB_COMPLETION_INDEX.json`,
		Args: exactArgs(1, "a tape file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tape = args[0]
			opts.windowGiven = cmd.Flags().Changed("window")
			return runRamp(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	opts.addFlags(fs, "")
	fs.Lookup("window").Usage += " (default: peak:STEP-DURATION, the busiest window of one step's length)"
	fs.Var(scaleValue{&opts.From}, "from", "first multiple")
	fs.Var(scaleValue{&opts.Step}, "step", "increment between steps")
	fs.Var(scaleValue{&opts.To}, "to", "last multiple")
	fs.DurationVar(&opts.StepDuration, "step-duration", time.Minute, "length of each step")
	fs.DurationVar(&opts.Settle, "settle", 5*time.Second, "start of each step left out of its statistics")
	fs.DurationVar(&opts.Cooldown, "cooldown", 10*time.Second, "pause before each refinement step, for the target to recover")
	fs.Float64Var(&opts.Saturation, "saturation", 0.9, "a step fails when achieved throughput is below this fraction of offered")
	fs.IntVar(&opts.Refine, "refine", 0, "bisection steps between the last passing and the first failing multiple")
	fs.DurationVar(&opts.Recovery, "recovery", 0, "after the breaking step (or an emergency stop), replay at --recovery-scale for this long and report whether the target recovers: a target that stays broken at a load it handled is in a metastable failure")
	fs.Var(scaleValue{&opts.RecoveryScale}, "recovery-scale", "multiple replayed during --recovery")
	fs.DurationVar(&opts.RecoveryWindow, "recovery-window", 5*time.Second, "recovered when every SLO holds over a window this long (and over the last one)")
	fs.StringVar(&opts.RecoveryAbort, "recovery-abort-on", "", "emergency stop during --recovery (default: the same as --abort-on); staying broken is what is measured, so relax it only as far as the target can bear, e.g. errors>90%/10s, or off on staging")
	fs.BoolVar(&opts.FindCapacity, "find-capacity", false, "after the first failure, run up to two more steps above it (never above --to; the emergency stop still applies) to measure the throughput plateau instead of a lower bound; not for production")
	fs.Var(scaleValue{&opts.Require}, "require", "exit 3 unless every step up to this multiple met its SLOs (a release gate)")
	opts.addCoordFlags(fs)
	return cmd
}

func runRamp(ctx context.Context, opts *rampOptions) error {
	s, err := opts.validate()
	if err != nil {
		return err
	}
	defer s.close()
	window := opts.Window
	switch {
	case opts.windowGiven && window == "":
		return usageErrorf("--window is empty: use all, peak:DUR or FROM-TO (the default is peak:STEP-DURATION)")
	case window == "":
		window = fmt.Sprintf("peak:%ds", int(max(opts.StepDuration, time.Second).Round(time.Second)/time.Second))
	}
	plan, err := opts.load(ctx, opts.IO, opts.Tape, s, window)
	if err != nil {
		return err
	}
	ro := replay.RampOptions{
		Settings: s.settings, From: opts.From, Step: opts.Step, To: opts.To, StepDuration: opts.StepDuration,
		Settle: opts.Settle, Cooldown: opts.Cooldown, Saturation: opts.Saturation, Refine: opts.Refine,
		FindCapacity: opts.FindCapacity, Recovery: opts.Recovery, RecoveryScale: opts.RecoveryScale,
		RecoveryWindow: opts.RecoveryWindow, RecoveryAbort: s.settings.Abort,
	}
	if opts.RecoveryAbort != "" {
		if ro.RecoveryAbort, err = replay.ParseAbort(opts.RecoveryAbort); err != nil {
			return &UsageError{Err: fmt.Errorf("--recovery-abort-on: %w", err)}
		}
	}
	endCoord, err := opts.coordinate(ctx, s, window, &ro)
	if err != nil {
		return err
	}
	f, err := executeRamp(ctx, opts.IO, plan, ro, s.startAt)
	endCoord(err)
	if err != nil {
		return optionFlags(err)
	}
	if opts.Require > 0 {
		f.Params.Require = &opts.Require
	}
	if err := opts.writeOutputs(opts.IO, f, func() error { return report.WriteText(opts.IO.Out, f) }); err != nil {
		return err
	}
	return rampOutcome(f, opts.Require, opts.IO)
}

// executeRamp runs the ramp with progress on stderr and returns its
// results.
func executeRamp(ctx context.Context, io IO, plan *replay.Plan, ro replay.RampOptions, startAt time.Time) (*results.File, error) {
	total := len(ro.Scales())
	view := newProgressView(io, 5*time.Second, ro.SLOs)
	defer view.Close()
	ro.Progress = view.Update
	ro.Ready = func(o replay.Outline) error {
		if o.Scale < ro.To {
			// The rate cap lowered the top of the ramp (replay.RampOptions.MaxRate).
			fmt.Fprintf(io.Err, "herd: --max-rate %g ends the ramp at %gx: a step above it would offer more on average than the cap lets through\n", ro.MaxRate, o.Scale)
			total = min(total, o.Steps)
		}
		if err := ready(ctx, io, startAt)(o); err != nil {
			return err
		}
		view.Ramp(total, fmt.Sprintf("%gx to %gx by %gx", ro.From, o.Scale, ro.Step))
		return nil
	}
	ro.OnStep = func(i int, k float64, refinement bool) {
		what := fmt.Sprintf("step %d/%d %gx", i+1, total, k)
		if refinement {
			what = fmt.Sprintf("refine ~%gx", k)
			total = max(total, i+1)
		}
		view.Step(what)
	}
	ro.OnStepDone = view.EndStep
	return replay.Ramp(ctx, plan, ro)
}

// rampOutcome maps a finished ramp to the exit code: interrupted (130),
// emergency stop or an unmet --require (3).
func rampOutcome(f *results.File, require float64, io IO) error {
	switch {
	case f.Interrupted:
		return context.Canceled
	case f.Aborted:
		return &RequirementError{Msg: "emergency stop: " + f.AbortReason}
	case require > 0:
		if msg := requirementShortfall(f, require); msg != "" {
			return &RequirementError{Msg: msg}
		}
		fmt.Fprintf(io.Err, "herd: requirement met: every step up to %gx met its SLOs\n", require)
	}
	return nil
}

// requirementShortfall explains why a ramp does not prove that the target
// holds k times the window's rate, or returns "".
func requirementShortfall(f *results.File, k float64) string {
	reached := false
	for _, st := range f.Steps {
		if st.Scale > k+1e-9 {
			continue
		}
		switch {
		case st.Generator.Limited:
			return fmt.Sprintf("requirement %gx not verified: herd itself was the limit at %gx", k, st.Scale)
		case !st.Passed:
			return fmt.Sprintf("requirement %gx not met: the step at %gx failed (%s)", k, st.Scale, strings.Join(st.Violations, "; "))
		}
		if st.Scale >= k-1e-9 {
			reached = true
		}
	}
	if !reached {
		return fmt.Sprintf("requirement %gx not verified: no step reached it (use --to %gx)", k, k)
	}
	return ""
}
