// Command capacity ramps herd's demo service in several settings of reader
// slots, query time and route mix, and prints the capacity herd measured
// next to the service's analytic capacity. It is how the accuracy figures
// in docs/benchmarks.md are made; it only uses 127.0.0.1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/herd-replay/herd/internal/demo"
	"github.com/herd-replay/herd/replay"
)

func main() {
	strict := flag.Bool("strict", false, "replay with strict pacing instead of session pacing")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	const row = "%-52s %-8s %9s %8s %9s %7s %14s %14s\n"
	fmt.Printf(row, "setting", "pacing", "1x req/s", "truth", "measured", "error", "first failure", "failure/truth")
	for _, s := range demo.AccuracySettings() {
		if *strict {
			s.Pacing = replay.Strict
		}
		m, err := demo.Accuracy(ctx, s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "capacity:", err)
			os.Exit(1)
		}
		fmt.Printf(row, s.Name, s.Pacing, fmt.Sprintf("%.1f", m.Window1x), fmt.Sprintf("%.3fx", m.Truth),
			fmt.Sprintf("%.3fx", m.Capacity), fmt.Sprintf("%+.1f%%", m.ErrPercent), fmt.Sprintf("%.2fx", m.FirstFail),
			fmt.Sprintf("%.2f", m.FirstFail/m.Truth))
	}
}
