package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/herd-replay/herd/internal/demo"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/report"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

type demoOptions struct {
	IO           IO
	Fixed        bool
	JSON         string
	StepDuration time.Duration
	Refine       int
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
	fs.StringVar(&opts.JSON, "json", "", "write the ramp's results, with truth_capacity_scale, to this file")
	fs.DurationVar(&opts.StepDuration, "step-duration", 10*time.Second, "length of each ramp step")
	fs.IntVar(&opts.Refine, "refine", 3, "bisection steps after the first failure")
	return cmd
}

func runDemo(ctx context.Context, opts *demoOptions) error {
	if opts.StepDuration < 3*time.Second {
		return usageErrorf("--step-duration must be at least 3s")
	}
	cfg := demo.DefaultService()
	cfg.Fixed = opts.Fixed
	svc := demo.NewService(cfg)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(sctx)
	addr := make(chan net.Addr, 1)
	g.Go(func() error { return svc.Serve(gctx, "127.0.0.1:0", func(a net.Addr) { addr <- a }) })
	var target *url.URL
	select {
	case a := <-addr:
		target = &url.URL{Scheme: "http", Host: a.String()}
	case <-gctx.Done():
		return g.Wait()
	}
	mode := "as it was"
	if opts.Fixed {
		mode = "with the fix"
	}
	fmt.Fprintf(opts.IO.Err, "herd: demo service (%s) on %s: %d reader slots, %v per query, refused after waiting %v for a slot\n",
		mode, target.Host, cfg.Slots, cfg.Query, cfg.MaxWait)
	var f *results.File
	g.Go(func() error {
		defer stop()
		var err error
		f, err = demoRamp(gctx, ctx, opts, svc, target)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if opts.JSON != "" {
		if err := f.WriteFile(opts.JSON); err != nil {
			return err
		}
	}
	if err := report.WriteText(opts.IO.Out, f); err != nil {
		return err
	}
	return rampOutcome(f, 0, opts.IO)
}

// demoRamp ramps the embedded tape against the demo service. Cancelling
// the user's ctx interrupts the ramp; gctx also ends if the service fails.
func demoRamp(gctx, ctx context.Context, opts *demoOptions, svc *demo.Service, target *url.URL) (*results.File, error) {
	data := demo.Tape()
	r, err := tape.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("demo tape: %w", err)
	}
	steps := int(opts.StepDuration.Round(time.Second) / time.Second)
	window, _ := replay.ParseWindow(fmt.Sprintf("peak:%ds", steps))
	plan, err := replay.Load(gctx, r, replay.PlanOptions{Window: window, Target: target})
	if err != nil {
		return nil, fmt.Errorf("demo tape: %w", err)
	}
	mix := make(map[string]int64)
	for _, c := range plan.Conns {
		for _, q := range c.Reqs {
			k := plan.Routes[q.Route]
			mix[k.Method+" "+k.Route]++
		}
	}
	truth := results.Round3(svc.Capacity(mix) / plan.Rate())
	slos, _ := results.ParseSLOs(nil)
	abort, _ := replay.ParseAbort("off") // the demo goes past the breaking point on purpose
	flags := &replayFlags{Timeout: 5 * time.Second, MaxConns: replay.DefaultMaxConns, MaxInflight: replay.DefaultMaxInflight,
		Seed: 1, LagBound: replay.DefaultLagBound}
	s := &setup{target: target, plan: plan, mode: replay.Clone, pacing: replay.Session, abort: abort, slos: slos}
	f := flags.file("ramp", "(built-in demo tape)", s)
	f.TruthCapacityScale = &truth
	settle := min(2*time.Second, opts.StepDuration/4)
	ro := replay.RampOptions{
		From: 1, Step: 1, To: 10, StepDuration: opts.StepDuration, Settle: settle, Cooldown: 2 * time.Second,
		SLOs: slos, Saturation: 0.9, Refine: opts.Refine, Mode: replay.Clone, Seed: 1,
		Run: flags.options(s, replay.Schedule{}, 0),
	}
	err = executeRamp(ctx, opts.IO, s, ro, f, 0)
	if err == nil && gctx.Err() != nil && ctx.Err() == nil {
		err = errors.New("the demo service stopped")
	}
	return f, err
}
