package cli

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/report"
	"github.com/spf13/cobra"
)

type reportCompareOptions struct {
	IO               IO
	Base, Candidate  string
	MaxRegression    []string
	MaxCapacityDrop  string
	LatencySlack     time.Duration
	RouteMinRequests int64
	JUnit            string
	HTML             string
	Force            bool
}

func newReportCompareCmd(io IO) *cobra.Command {
	def := report.DefaultCompareOptions()
	opts := &reportCompareOptions{IO: io, MaxCapacityDrop: results.FmtPct(def.MaxCapacityDrop),
		LatencySlack: time.Duration(def.LatencySlackMS * float64(time.Millisecond)), RouteMinRequests: def.RouteMinRequests}
	var bounds []string
	for _, m := range report.CompareMetrics {
		if v, ok := def.MaxRegression[m]; ok {
			bounds = append(bounds, m+"="+results.FmtPct(v))
		}
	}
	cmd := &cobra.Command{
		Use:   "compare BASE.json CANDIDATE.json",
		Short: "Compare two runs side by side; exit 3 on a regression (a CI gate)",
		Long: fmt.Sprintf(`Compare a candidate run with a base run (say, the release candidate with the
last release, replaying the same tape) and exit 3 when the candidate
regressed, 0 when it did not: a pre-release gate for CI.

Steps are matched by scale (of a scale run twice, the later step counts),
routes by method and route template. What is checked:

  capacity        the candidate's capacity (req/s) fell by more than
                  --max-capacity-drop (default %s); not checked when the
                  candidate never saturated the target (its capacity is then
                  only a lower bound)
  breaking point  the candidate breaks at a lower scale than the base, or at
                  a scale the base held
  SLOs            a step that met its SLOs in the base failed in the candidate
  metrics         per matched step, and per route with at least
                  --route-min-requests requests in both runs, each
                  --max-regression bound: latency metrics (p50 p90 p95 p99
                  p999 max mean) may rise by that percentage of the base's
                  value, and by at least --latency-slack before it counts;
                  errors and mismatches may rise by that many percentage
                  points of their rate. Default: %s.
                  Given bounds replace the defaults; --max-regression none
                  checks no metric.

Steps where herd itself was the limit, or that were stopped, are shown but
not checked. The runs should replay the same window with the same SLOs;
herd notes it when they do not. --junit writes every check as a JUnit test
case (regressions as failures) for CI test reports. --html writes a
self-contained page that draws both runs on the same axes (throughput, p99
and errors by scale, both capacity curves, both latency distributions)
above every check; --html - writes it to standard output in place of the
text. Neither overwrites a file without --force, nor ever an input.`, opts.MaxCapacityDrop, strings.Join(bounds, " and ")),
		Example: `  # The release gate: the candidate against the last release's run.
  herd report compare release-1.4.json candidate.json --junit compare.xml

  # Stricter on latency, tolerant on capacity:
  herd report compare base.json cand.json --max-regression p50=5% --max-regression p99=10% \
      --max-regression errors=0.1% --max-capacity-drop 20%

  # The page to attach to the release ticket: both runs on the same axes.
  herd report compare release-1.4.json candidate.json --html compare.html

  # Only capacity, the breaking point and each step's SLO outcome:
  herd report compare base.json cand.json --max-regression none`,
		Args: exactArgs(2, "a base and a candidate results file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Base, opts.Candidate = args[0], args[1]
			return runReportCompare(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&opts.MaxRegression, "max-regression", nil, "METRIC=PCT: how much worse the candidate may be (repeatable; default "+strings.Join(bounds, ", ")+")")
	fs.StringVar(&opts.MaxCapacityDrop, "max-capacity-drop", opts.MaxCapacityDrop, "PCT the capacity may fall, or off")
	fs.DurationVar(&opts.LatencySlack, "latency-slack", opts.LatencySlack, "latency rises smaller than this are never regressions")
	fs.Int64Var(&opts.RouteMinRequests, "route-min-requests", opts.RouteMinRequests, "check a route at a scale only with this many requests in both runs")
	fs.StringVar(&opts.JUnit, "junit", "", "also write the checks as JUnit XML to this file")
	fs.StringVar(&opts.HTML, "html", "", "also write the comparison as a self-contained HTML page to this file; - for standard output instead of the text")
	fs.BoolVar(&opts.Force, "force", false, forceUsage)
	return cmd
}

// compareOptions turns the flags into report.CompareOptions.
func (opts *reportCompareOptions) compareOptions() (report.CompareOptions, error) {
	o := report.DefaultCompareOptions()
	o.BaseName, o.CandidateName = opts.Base, opts.Candidate
	if len(opts.MaxRegression) > 0 {
		o.MaxRegression = map[string]float64{}
	}
	for _, m := range opts.MaxRegression {
		if strings.TrimSpace(m) == "none" {
			continue
		}
		name, v, ok := strings.Cut(m, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || !slices.Contains(report.CompareMetrics, name) {
			return o, usageErrorf("--max-regression %q: use METRIC=PCT with METRIC one of %s, e.g. p99=10%%", m, strings.Join(report.CompareMetrics, " "))
		}
		f, err := parsePercent(v)
		if err != nil {
			return o, usageErrorf("--max-regression %q: %v", m, err)
		}
		o.MaxRegression[name] = f
	}
	if strings.TrimSpace(opts.MaxCapacityDrop) == "off" {
		o.MaxCapacityDrop = -1
	} else {
		f, err := parsePercent(opts.MaxCapacityDrop)
		if err != nil || f > 1 {
			return o, usageErrorf("--max-capacity-drop %q: use a percentage from 0%% to 100%%, or off", opts.MaxCapacityDrop)
		}
		o.MaxCapacityDrop = f
	}
	if opts.LatencySlack < 0 || opts.RouteMinRequests < 1 {
		return o, usageErrorf("--latency-slack must not be negative and --route-min-requests must be at least 1")
	}
	o.LatencySlackMS = float64(opts.LatencySlack) / float64(time.Millisecond)
	o.RouteMinRequests = opts.RouteMinRequests
	return o, nil
}

// parsePercent reads 10% (or 10) as 0.1.
func parsePercent(s string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a percentage such as 10%%", s)
	}
	return v / 100, nil
}

func runReportCompare(ctx context.Context, opts *reportCompareOptions) error {
	o, err := opts.compareOptions()
	if err != nil {
		return err
	}
	g, err := guardOutputs(opts.Force, []string{opts.Base, opts.Candidate}, output{"--junit", opts.JUnit}, output{"--html", opts.HTML})
	if err != nil {
		return err
	}
	files, err := readResults([]string{opts.Base, opts.Candidate})
	if err != nil {
		return err
	}
	c := report.Compare(files[0], files[1], o)
	if opts.HTML != "-" {
		if err := c.WriteText(opts.IO.Out); err != nil {
			return err
		}
	}
	if opts.HTML != "" {
		if err := writeOutput(opts.IO, g, "--html", opts.HTML, c.WriteHTML); err != nil {
			return err
		}
	}
	if opts.JUnit != "" {
		if err := writeOutput(opts.IO, g, "--junit", opts.JUnit, c.WriteJUnit); err != nil {
			return err
		}
	}
	if reg := c.Regressions(); len(reg) > 0 {
		return &RequirementError{Msg: fmt.Sprintf("%d regressions against %s, the first: %s %s: %s", len(reg), opts.Base, reg[0].Scope, reg[0].Name, reg[0].Detail)}
	}
	return nil
}
