package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/herd-replay/herd/internal/results"
	"github.com/spf13/cobra"
)

type reportMergeOptions struct {
	IO     IO
	Paths  []string
	Output string
	Force  bool
}

func newReportMergeCmd(io IO) *cobra.Command {
	opts := &reportMergeOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "merge A.json B.json... -o MERGED.json",
		Short: "Merge the results of shards of one run into the results of the whole",
		Long: `Merge results files of one plan run as several shards (herd replay or herd
ramp run at once on several machines, each with the same tape, window and
settings) into one results file, exactly: counts add, HDR histograms merge without
loss, and every statistic (rates, percentiles, error rates, the per-second
timeline, per route) is recomputed from the merged data. Each step is
evaluated again against the run's SLOs, and the breaking point, capacity
and verdict are recomputed. The window's request and connection counts
add up, so the 1x rate is that of all the shards' traffic together.

Files that are not parts of one run are refused with the difference named:
another tape, window, target, plan setting (scale mode, pacing, timeout,
settle, step length, SLOs, seed...) or list of steps, or the same shard
twice. The merged results go to -o FILE (or standard output); render them
with herd report.`,
		Example: `  # Four shards of a ramp, run as a Kubernetes Indexed Job:
  herd report merge shard-0.json shard-1.json shard-2.json shard-3.json -o ramp.json
  herd report ramp.json --format html -o ramp.html`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("%s needs at least two results files (got %d)", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			return runReportMerge(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "write the merged results to this file instead of standard output")
	cmd.Flags().BoolVar(&opts.Force, "force", false, forceUsage)
	return cmd
}

func runReportMerge(ctx context.Context, opts *reportMergeOptions) error {
	g, err := guardOutputs(opts.Force, opts.Paths, output{"-o", opts.Output})
	if err != nil {
		return err
	}
	files, err := readResults(opts.Paths)
	if err != nil {
		return err
	}
	merged, err := results.Merge(files...)
	var ie *results.IncompatibleError
	if errors.As(err, &ie) {
		return fmt.Errorf("%s and %s are not parts of one run: %w", opts.Paths[0], opts.Paths[ie.Index], ie.Err)
	}
	if err != nil {
		return err
	}
	if err := writeOutput(opts.IO, g, "-o", opts.Output, merged.Write); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Err, "herd: merged %d results: %s\n", len(files), merged.Verdict)
	return nil
}
