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
	"text/tabwriter"

	"github.com/herd-replay/herd/internal/demo"
	"github.com/herd-replay/herd/replay"
)

func main() {
	strict := flag.Bool("strict", false, "replay with strict pacing instead of session pacing")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setting\tpacing\t1x req/s\ttruth\tmeasured\terror\tfirst failure\tfailure/truth\t")
	for _, s := range demo.AccuracySettings() {
		if *strict {
			s.Pacing = replay.Strict
		}
		m, err := demo.Accuracy(ctx, s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "capacity:", err)
			os.Exit(1)
		}
		fmt.Fprintf(tw, "%s\t%v\t%.1f\t%.3fx\t%.3fx\t%+.1f%%\t%.2fx\t%.2f\t\n",
			s.Name, s.Pacing, m.Window1x, m.Truth, m.Capacity, m.ErrPercent, m.FirstFail, m.FirstFail/m.Truth)
		tw.Flush()
	}
}
