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
	// Retries runs the retry story: clients that time out and retry, and a
	// recovery check at 1x after the break.
	Retries  bool
	Recovery time.Duration
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

--retries tells the rest of the outage: the service as it was had no
timeouts (a request whose client gave up is still run when its turn
comes) and its clients gave up after 1 s and retried three times. herd
emulates those clients, breaks the service, returns to 1x and shows that
it does not recover: a metastable failure, which the service's analytic
capacity predicts. --retries --fixed is the fix that worked: the service
times requests out before working on them (refusing after 800 ms), and the
clients back off with jitter under a retry budget of 10%: it recovers.

It takes about a minute and a half and only uses the loopback interface.`,
		Example: `  herd demo
  herd demo --fixed
  herd demo --retries           # breaks, and does not recover at 1x
  herd demo --retries --fixed   # breaks, and recovers
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
	fs.BoolVar(&opts.Retries, "retries", false, "emulate clients that time out after 1 s and retry, and check recovery at 1x after the break; with --fixed, the timeout, backoff and retry budget that fixed it")
	fs.DurationVar(&opts.Recovery, "recovery", 30*time.Second, "with --retries, how long to replay at 1x after the break")
	return cmd
}

func runDemo(ctx context.Context, opts *demoOptions) error {
	if opts.StepDuration < 3*time.Second {
		return usageErrorf("--step-duration must be at least 3s")
	}
	if opts.Retries && opts.Recovery < 10*time.Second {
		return usageErrorf("--recovery must be at least 10s")
	}
	g, err := guardOutputs(opts.Force, nil, output{"--json", opts.JSON})
	if err != nil {
		return err
	}
	cfg := demo.DefaultService()
	cfg.Fixed = opts.Fixed
	if opts.Retries {
		// The retry story's fix is in the timeouts and the clients, not in
		// /login's queries; as it was, the service had no timeout at all.
		cfg.Fixed = false
		if !opts.Fixed {
			cfg.MaxWait = 0
		}
	}
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
	refused := fmt.Sprintf("refused after waiting %v for a slot", cfg.MaxWait)
	if cfg.MaxWait == 0 {
		refused = "no timeout: a request whose client gave up is still run"
	}
	fmt.Fprintf(opts.IO.Err, "herd: demo service (%s) on %s: %d reader slots, %v per query, %s\n",
		mode, target.Host, cfg.Slots, cfg.Query, refused)
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
	if opts.Retries {
		ro.Refine = 0 // the recovery follows the break at once
		ro.Recovery, ro.RecoveryWindow, ro.RecoveryAbort = opts.Recovery, 5*time.Second, abort
		ro.ClientTimeout = time.Second
		policy := demo.ClientsAsTheyWere
		if opts.Fixed {
			policy, ro.RetryBudget = demo.ClientsFixed, 0.1
		}
		if ro.Retry, err = replay.ParseRetryPolicy(policy); err != nil {
			return nil, err
		}
	}
	f, err := executeRamp(ctx, opts.IO, plan, ro, time.Time{})
	if err != nil {
		return nil, err
	}
	if opts.Retries {
		// With retries the goodput past the break is not the service's
		// capacity (work is wasted on abandoned attempts): the analytic
		// check is the recovery condition instead.
		fmt.Fprintln(opts.IO.Err, "herd: "+demo.MetastableCheck(truth, opts.Fixed, ro.Retry, ro.ClientTimeout, f))
		return f, nil
	}
	f.TruthCapacityScale = &truth
	return f, nil
}
