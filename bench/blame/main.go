// Command blame ramps herd's demo service several times and prints, for
// each run, where it broke and which route the verdict blamed (or that the
// routes degraded together), so that the blame can be seen to be stable
// from run to run. It only uses 127.0.0.1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/herd-replay/herd/internal/demo"
)

func main() {
	runs := flag.Int("runs", 5, "ramps per setting")
	step := flag.Duration("step", 6*time.Second, "step duration")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	base := demo.DefaultService()
	fixed := base
	fixed.Fixed = true
	for _, svc := range []struct {
		name string
		cfg  demo.ServiceConfig
	}{{"as it was", base}, {"fixed", fixed}} {
		for i := 0; i < *runs; i++ {
			s := demo.Setting{Name: svc.name, Service: svc.cfg, From: 2, Step: 0.5, To: 8, StepDur: *step, Settle: time.Second}
			m, err := demo.Accuracy(ctx, s)
			if err != nil {
				fmt.Fprintln(os.Stderr, "blame:", err)
				os.Exit(1)
			}
			bp := m.File.BreakingPoint
			if bp == nil {
				fmt.Printf("%-10s run %d: no breaking point up to 8x\n", svc.name, i+1)
				continue
			}
			route := bp.Route
			if route == "" {
				route = "(none)"
			}
			fmt.Printf("%-10s run %d: breaks at %gx, route %-24s %s\n", svc.name, i+1, bp.Scale, route, bp.Blame)
		}
	}
}
