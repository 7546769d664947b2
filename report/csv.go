package report

import (
	"encoding/csv"
	"io"
	"strconv"

	"github.com/herd-replay/herd/internal/results"
)

// csvHeader are the columns of WriteCSV. Rows of level "step" describe a
// whole step; rows of level "route" one route of the step above them,
// with the step-only columns left empty.
var csvHeader = []string{
	"step", "scale", "refinement", "retry", "level", "method", "route",
	"duration_s", "planned", "offered_rps", "achieved_rps",
	"sent", "completed", "errors", "error_rate", "mismatches", "mismatch_rate",
	"p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
	"schedule_lag_p99_ms", "passed", "generator_limited",
}

// WriteCSV writes one table: a row per step, each followed by a row per
// route of that step. Numbers are plain (no units, no thousands
// separators), latencies in milliseconds, rates as fractions.
func WriteCSV(w io.Writer, f *results.File) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for i := range f.Steps {
		st := &f.Steps[i]
		head := []string{strconv.Itoa(i + 1), num(st.Scale), strconv.FormatBool(st.Refinement), strconv.FormatBool(st.Retry)}
		row := append(head[:4:4], "step", "", "",
			num(st.DurationS), integer(st.Planned), num(st.OfferedRPS), num(st.AchievedRPS),
			integer(st.Sent), integer(st.Completed), integer(st.Errors), num(st.ErrorRate), integer(st.Mismatches), num(st.MismatchRate))
		row = append(row, percentileCells(st.LatencyMS)...)
		row = append(row, num(st.ScheduleLagMS.P99), strconv.FormatBool(st.Passed), strconv.FormatBool(st.Generator.Limited))
		if err := cw.Write(row); err != nil {
			return err
		}
		for _, r := range st.Routes {
			row := append(head[:4:4], "route", r.Method, r.Route, "", "", "", "",
				integer(r.Sent), integer(r.Completed), integer(r.Errors), num(r.ErrorRate), integer(r.Mismatches),
				num(results.Fraction(r.Mismatches, r.Completed)))
			row = append(row, percentileCells(r.LatencyMS)...)
			row = append(row, "", "", "")
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func percentileCells(p results.Percentiles) []string {
	return []string{num(p.P50), num(p.P90), num(p.P95), num(p.P99), num(p.P999), num(p.Max), num(p.Mean)}
}

func num(v float64) string   { return strconv.FormatFloat(v, 'f', -1, 64) }
func integer(n int64) string { return strconv.FormatInt(n, 10) }
