package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/report"
	"github.com/spf13/cobra"
)

type reportOptions struct {
	IO     IO
	Path   string
	Format string
	Output string
	Steps  []string
	Force  bool
}

func newReportCmd(io IO) *cobra.Command {
	opts := &reportOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "report RESULTS.json",
		Short: "Render a results file: text, JSON, HTML with charts, HdrHistogram, CSV, OpenMetrics",
		Long: `Render the results file of herd replay or herd ramp (--json FILE) in one of
several formats, at any time after the run: every figure is rebuilt from
the file, which keeps the HDR histograms and the per-second timeline.

  text         the compact table herd replay and herd ramp print (default)
  json         the results file itself (schema 1, docs/results-format.md)
  html         one self-contained page with SVG charts: the verdict, throughput
               and latency by scale, the capacity curve (latency against achieved
               req/s), errors by class, the HDR percentile distribution with the
               SLOs, latency and offered against achieved per second, routes in
               the order they degraded with their throughput; works offline
  hgrm         HdrHistogram percentile distribution per step, in milliseconds,
               for HdrHistogram's plotter (one step per file: use --step)
  csv          a row per step and per route
  openmetrics  OpenMetrics text exposition, for Prometheus and other scrapers

The output goes to standard output, or to -o FILE (written whole or not at
all). Subcommands compare two runs (a CI gate) and merge shards.`,
		Example: `  # The capacity report to attach to a release ticket:
  herd report ramp.json --format html -o capacity.html

  # The latency distribution of the 2x step, for HdrHistogram's plotter:
  herd report ramp.json --format hgrm --step 2x -o ramp-2x.hgrm

  # The run's figures as OpenMetrics, for Prometheus to scrape from a web server:
  herd report ramp.json --format openmetrics -o /srv/metrics/herd`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("%s needs one results file (got %d arguments); subcommands: compare, merge", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			err := runReport(cmd.Context(), opts)
			// A mistyped subcommand reads as a missing file: say so.
			if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(opts.Path, "./") {
				if s := cmd.SuggestionsFor(opts.Path); len(s) > 0 {
					err = fmt.Errorf("%w (did you mean herd report %s?)", err, s[0])
				}
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.Format, "format", "text", "output format: "+strings.Join(report.Formats, ", "))
	fs.StringVarP(&opts.Output, "output", "o", "", "write to this file instead of standard output")
	fs.BoolVar(&opts.Force, "force", false, forceUsage)
	fs.StringArrayVar(&opts.Steps, "step", nil, "with --format hgrm: only the step at this multiple, e.g. 2x (repeatable)")
	cmd.AddCommand(newReportCompareCmd(io), newReportMergeCmd(io))
	return cmd
}

func runReport(ctx context.Context, opts *reportOptions) error {
	if !slices.Contains(report.Formats, opts.Format) {
		return usageErrorf("--format %q: use one of %s", opts.Format, strings.Join(report.Formats, ", "))
	}
	if len(opts.Steps) > 0 && opts.Format != "hgrm" {
		return usageErrorf("--step selects the steps of --format hgrm only; the other formats show the whole run")
	}
	g, err := guardOutputs(opts.Force, []string{opts.Path}, output{"-o", opts.Output})
	if err != nil {
		return err
	}
	f, err := results.ReadFile(opts.Path)
	if err != nil {
		return err
	}
	if len(opts.Steps) > 0 {
		if f, err = selectSteps(f, opts.Steps); err != nil {
			return err
		}
	}
	return writeOutput(opts.IO, g, "-o", opts.Output, func(w io.Writer) error { return report.Write(w, f, opts.Format) })
}

// selectSteps returns a copy of f with only the steps at the multiples
// given, in the file's order; a multiple with no step is a usage error
// that lists the steps there are.
func selectSteps(f *results.File, scales []string) (*results.File, error) {
	out := *f
	out.Steps = nil
	for _, s := range scales {
		k, err := parseScale(s)
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("--step: %w", err)}
		}
		found := false
		for i := range f.Steps {
			if math.Abs(f.Steps[i].Scale-k) < 1e-9 {
				out.Steps = append(out.Steps, f.Steps[i])
				found = true
			}
		}
		if !found {
			names := make([]string, len(f.Steps))
			for i := range f.Steps {
				names[i] = f.Steps[i].Label()
			}
			return nil, usageErrorf("--step %s: no step at %gx; the steps are %s", s, k, strings.Join(names, ", "))
		}
	}
	return &out, nil
}

// readResults reads results files, naming the one that fails.
func readResults(paths []string) ([]*results.File, error) {
	files := make([]*results.File, len(paths))
	for i, p := range paths {
		f, err := results.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files[i] = f
	}
	return files, nil
}
