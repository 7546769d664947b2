package cli

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/herd-replay/herd/internal/demo"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/report"
	"github.com/spf13/cobra"
)

type demoOptions struct {
	IO           IO
	Fixed        bool
	JSON         string
	StepDuration time.Duration
	Refine       int
	Force        bool
}

func newDemoCmd(io IO) *cobra.Command {
	opts := &demoOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Find the breaking point of a built-in service whose capacity is known",
		Long: `Start a small demo service on 127.0.0.1 that fails the way a real login
service did (each request needs database reader slots; /login makes dozens
of queries; requests that wait too long for a slot are refused), ramp a
built-in recording of production-like traffic against it, and print the
breaking point and the measured capacity next to the service's analytic
capacity, with the error in percent. --fixed runs the service with the fix
(fewer queries per login) and shows the new headroom.

It takes about a minute and a half and only uses the loopback interface.`,
		Example: `  herd demo
  herd demo --fixed
  herd demo --json demo.json && herd inspect internal/demo/demo.tape`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&opts.Fixed, "fixed", false, "run the demo service with the fix in: fewer queries per /login")
	fs.StringVar(&opts.JSON, "json", "", "write the ramp's results, with truth_capacity_scale, to this file; - for stdout")
	fs.DurationVar(&opts.StepDuration, "step-duration", 10*time.Second, "length of each ramp step")
	fs.IntVar(&opts.Refine, "refine", 3, "bisection steps after the first failure")
	fs.BoolVar(&opts.Force, "force", false, forceUsage)
	return cmd
}

func runDemo(ctx context.Context, opts *demoOptions) error {
	if opts.StepDuration < 3*time.Second {
		return usageErrorf("--step-duration must be at least 3s")
	}
	g, err := guardOutputs(opts.Force, nil, output{"--json", opts.JSON})
	if err != nil {
		return err
	}
	cfg := demo.DefaultService()
	cfg.Fixed = opts.Fixed
	svc := demo.NewService(cfg)
	// The service outlives the ramp, even when it is interrupted: requests
	// in flight finish against it. If it fails, the ramp is cancelled.
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	target, served, err := svc.Start(sctx)
	if err != nil {
		return err
	}
	rctx, cancelRamp := context.WithCancel(ctx)
	defer cancelRamp()
	serveErr := make(chan error, 1)
	go func() {
		err := <-served
		serveErr <- err
		cancelRamp()
	}()
	mode := "as it was"
	if opts.Fixed {
		mode = "with the fix"
	}
	fmt.Fprintf(opts.IO.Err, "herd: demo service (%s) on %s: %d reader slots, %v per query, refused after waiting %v for a slot\n",
		mode, target.Host, cfg.Slots, cfg.Query, cfg.MaxWait)
	f, rerr := demoRamp(rctx, opts, svc, target)
	stop()
	if err := <-serveErr; err != nil {
		return fmt.Errorf("demo service: %w", err)
	}
	if rerr != nil {
		return rerr
	}
	if opts.JSON != "" {
		if err := writeOutput(opts.IO, g, "--json", opts.JSON, f.Write); err != nil {
			return err
		}
	}
	// --json - takes stdout, as it does for herd replay and herd ramp.
	if opts.JSON != "-" {
		if err := report.WriteText(opts.IO.Out, f); err != nil {
			return err
		}
	}
	return rampOutcome(f, 0, opts.IO)
}

// demoRamp ramps the embedded tape against the demo service.
func demoRamp(ctx context.Context, opts *demoOptions, svc *demo.Service, target *url.URL) (*results.File, error) {
	plan, err := demo.Plan(ctx, target, opts.StepDuration, false)
	if err != nil {
		return nil, err
	}
	truth := results.Round3(svc.Truth(plan))
	slos, _ := results.ParseSLOs(results.DefaultSLOs)
	abort, _ := replay.ParseAbort("off") // the demo goes past the breaking point on purpose
	ro := replay.RampOptions{
		Settings: replay.Settings{Target: target, Mode: replay.Clone, Seed: 1, Pacing: replay.Session,
			Timeout: 5 * time.Second, Abort: abort, SLOs: slos, TapeName: demo.TapeName},
		From: 1, Step: 1, To: 10, StepDuration: opts.StepDuration, Settle: min(2*time.Second, opts.StepDuration/4),
		Cooldown: 2 * time.Second, Saturation: 0.9, Refine: opts.Refine,
	}
	f, err := executeRamp(ctx, opts.IO, plan, ro, time.Time{})
	if err != nil {
		return nil, err
	}
	f.TruthCapacityScale = &truth
	return f, nil
}
