package results

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Summarize recomputes every figure of st that follows from its counters
// and histograms, the way replay computes them at the end of a step:
// offered and achieved rates over the measured period, error and mismatch
// rates, the percentiles of every histogram, each route's error rate and
// percentiles (routes sorted by request count), and each timeline second's
// percentiles. It leaves the SLO evaluation to Evaluate.
func Summarize(st *Step) error {
	var hists []*hdr.Histogram
	for _, x := range st.Hists() {
		h, err := Decode(*x.Encoded)
		if err != nil {
			return fmt.Errorf("%s histogram: %w", x.Name, err)
		}
		hists = append(hists, h)
	}
	routes := make([]*hdr.Histogram, len(st.Routes))
	for i := range st.Routes {
		r := &st.Routes[i]
		h, err := Decode(r.Histogram)
		if err != nil {
			return fmt.Errorf("route %s %s: %w", r.Method, r.Route, err)
		}
		routes[i] = h
	}
	summarize(st, hists, routes)
	if err := summarizeAttempts(st); err != nil {
		return err
	}
	if err := summarizeTargets(st); err != nil {
		return err
	}
	if err := summarizeConnect(st); err != nil {
		return err
	}
	// A second at a time: a long step has many, and replay bounds its
	// memory by keeping them encoded.
	for i := range st.Timeline {
		s := &st.Timeline[i]
		h, err := Decode(s.Histogram)
		if err != nil {
			return fmt.Errorf("timeline second %d: %w", s.T, err)
		}
		s.summarize(h)
	}
	return nil
}

// summarizeAttempts sets the attempt latency figures from their histogram,
// present only when clients were emulated.
func summarizeAttempts(st *Step) error {
	st.AttemptLatencyMS = nil
	if st.Histograms.Attempt == "" {
		return nil
	}
	h, err := Decode(st.Histograms.Attempt)
	if err != nil {
		return fmt.Errorf("attempt histogram: %w", err)
	}
	p := Summary(h)
	st.AttemptLatencyMS = &p
	return nil
}

// summarize is Summarize but for the timeline, with the histograms
// decoded: hists in the order of st.Hists, routes[i] that of st.Routes[i].
// Merge, which has them, calls it rather than decode what it just encoded.
func summarize(st *Step, hists, routes []*hdr.Histogram) {
	if st.Attempts > 0 {
		st.Amplification = Round3(float64(st.Attempts) / float64(max(st.Sent, 1)))
	}
	st.OfferedRPS = Rate(st.Planned, st.DurationS)
	st.AchievedRPS = Rate(st.Good, st.DurationS)
	st.ErrorRate = Fraction(st.Errors, st.Sent)
	st.MismatchRate = Fraction(st.Mismatches, st.Completed)
	for i, x := range st.Hists() {
		*x.Percentiles = Summary(hists[i])
	}
	for i := range st.Routes {
		r := &st.Routes[i]
		r.ErrorRate = Fraction(r.Errors, r.Sent)
		r.LatencyMS = Summary(routes[i])
	}
	st.Routes = SortedRoutes(st.Routes)
}

// summarizeConnect sets ConnectMS from its histogram, when there is one.
func summarizeConnect(st *Step) error {
	if st.Histograms.Connect == "" {
		st.ConnectMS = nil
		return nil
	}
	h, err := Decode(st.Histograms.Connect)
	if err != nil {
		return fmt.Errorf("connect histogram: %w", err)
	}
	p := Summary(h)
	st.ConnectMS = &p
	return nil
}

// summarize sets the second's percentiles from its histogram h.
func (s *Second) summarize(h *hdr.Histogram) {
	sum := Summary(h)
	s.P50MS, s.P99MS, s.MaxMS = sum.P50, sum.P99, sum.Max
}

// Merge combines the results of one plan run as several shards, or as
// several copies at once, into the results of the whole: counts add,
// histograms merge without loss, every statistic is recomputed from the
// merged data (Summarize), each step is evaluated again against the
// file's SLOs and the analysis (breaking point, capacity, verdict) is
// redone. The window's request and connection counts add too, so the 1x
// rate is that of all the traffic the shards replayed together.
//
// Files that are not parts of one plan are refused: a different kind,
// target, tape, window, plan setting or list of steps, or the same shard
// (or, without shards, the same run) twice.
func Merge(files ...*File) (*File, error) {
	if len(files) == 0 {
		return nil, errors.New("merge: no results")
	}
	for i, f := range files[1:] {
		if err := compatible(files[0], f); err != nil {
			return nil, &IncompatibleError{Index: i + 1, Err: err}
		}
	}
	if err := distinctRuns(files); err != nil {
		return nil, err
	}
	first := files[0]
	out := *first
	out.Params.SLOs = slices.Clone(first.Params.SLOs)
	out.Params.SetHeaders = slices.Clone(first.Params.SetHeaders)
	out.Window.Skipped = Counts{}
	out.Window.Requests, out.Window.Conns = 0, 0
	out.Params.MaxConns, out.Params.MaxInflight, out.Params.GOMAXPROCS = 0, 0, 0
	out.Aborted, out.AbortReason, out.Interrupted = false, "", false
	if first.Recovery != nil {
		// Judged again by Analyze from the merged recovery step.
		r := *first.Recovery
		out.Recovery = &r
	}
	var shards []string
	for _, f := range files {
		if f.StartedAt.Before(out.StartedAt) {
			out.StartedAt = f.StartedAt
		}
		out.Window.Requests += f.Window.Requests
		out.Window.Conns += f.Window.Conns
		addCounts(out.Window.Skipped, f.Window.Skipped)
		out.Params.MaxConns += f.Params.MaxConns
		out.Params.MaxInflight += f.Params.MaxInflight
		out.Params.GOMAXPROCS += f.Params.GOMAXPROCS
		out.Aborted = out.Aborted || f.Aborted
		out.Interrupted = out.Interrupted || f.Interrupted
		if out.AbortReason == "" {
			out.AbortReason = f.AbortReason
		}
		if f.Params.Shard != "" {
			shards = append(shards, f.Params.Shard)
		}
		if out.TruthCapacityScale == nil {
			out.TruthCapacityScale = f.TruthCapacityScale
		}
	}
	out.Window.RPS = Rate(out.Window.Requests, out.Window.DurationS)
	// By index (0/4,1/4,...), whatever the order of the files.
	slices.SortFunc(shards, func(a, b string) int {
		ia, _ := strconv.Atoi(strings.Split(a, "/")[0])
		ib, _ := strconv.Atoi(strings.Split(b, "/")[0])
		return cmp.Or(cmp.Compare(ia, ib), cmp.Compare(a, b))
	})
	out.Params.Shard = strings.Join(shards, ",")
	// The SLOs the run was held to are in the file (herd records the
	// defaults it applied); a file without any is evaluated against none,
	// not against today's defaults.
	slos, err := ParseSLOs(first.Params.SLOs)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	out.Steps = make([]Step, len(first.Steps))
	for i := range first.Steps {
		parts := make([]*Step, len(files))
		for j, f := range files {
			parts[j] = &f.Steps[i]
		}
		st, err := mergeSteps(parts, files)
		if err != nil {
			return nil, fmt.Errorf("merge step %d (%gx): %w", i+1, first.Steps[i].Scale, err)
		}
		Evaluate(st, slos, first.Params.Saturation)
		out.Steps[i] = *st
	}
	Analyze(&out)
	return &out, nil
}

// IncompatibleError is Merge's refusal of files[Index], which is not a
// part of the same run as files[0].
type IncompatibleError struct {
	Index int
	Err   error
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("results %d and 1 are not parts of one run: %v", e.Index+1, e.Err)
}

func (e *IncompatibleError) Unwrap() error { return e.Err }

// compatible explains why b is not a part of the same plan as a, or
// returns nil.
func compatible(a, b *File) error {
	differ := func(what string, x, y any) error {
		return fmt.Errorf("%s differs: %v and %v", what, x, y)
	}
	switch {
	case a.Schema != b.Schema:
		return differ("schema", a.Schema, b.Schema)
	case a.Kind != b.Kind:
		return differ("kind", a.Kind, b.Kind)
	case a.Target != b.Target:
		return differ("target", a.Target, b.Target)
	case filepath.Base(a.Tape) != filepath.Base(b.Tape):
		return differ("tape", a.Tape, b.Tape)
	case a.Window.Spec != b.Window.Spec:
		return differ("window", a.Window.Spec, b.Window.Spec)
	case !a.Window.Start.Equal(b.Window.Start):
		return differ("window start", a.Window.Start.Format(time.RFC3339Nano), b.Window.Start.Format(time.RFC3339Nano))
	case a.Window.DurationS != b.Window.DurationS:
		return differ("window length (s)", a.Window.DurationS, b.Window.DurationS)
	}
	pa, pb := a.Params, b.Params
	for _, c := range []struct {
		name string
		x, y any
	}{
		{"--scale-mode", pa.ScaleMode, pb.ScaleMode},
		{"--pacing", pa.Pacing, pb.Pacing},
		{"--timeout (s)", pa.TimeoutS, pb.TimeoutS},
		{"--settle (s)", pa.SettleS, pb.SettleS},
		{"step duration (s)", pa.StepS, pb.StepS},
		{"--slo", strings.Join(pa.SLOs, " "), strings.Join(pb.SLOs, " ")},
		{"--saturation", pa.Saturation, pb.Saturation},
		{"--seed", pa.Seed, pb.Seed},
		{"--read-only", pa.ReadOnly, pb.ReadOnly},
		{"--keep-host", pa.KeepHost, pb.KeepHost},
		{"--send-truncated", pa.SendTrunc, pb.SendTrunc},
		{"--server", strings.Join(pa.Servers, " "), strings.Join(pb.Servers, " ")},
		{"--target-map", strings.Join(pa.TargetMap, " "), strings.Join(pb.TargetMap, " ")},
		{"--include", strings.Join(pa.Include, " "), strings.Join(pb.Include, " ")},
		{"--exclude", strings.Join(pa.Exclude, " "), strings.Join(pb.Exclude, " ")},
		{"--rewrite-path", strings.Join(pa.RewritePath, " "), strings.Join(pb.RewritePath, " ")},
		{"--max-rate", pa.MaxRate, pb.MaxRate},
	} {
		if c.x != c.y {
			return differ(c.name, c.x, c.y)
		}
	}
	if len(a.Steps) != len(b.Steps) {
		return fmt.Errorf("steps differ: %s and %s", stepList(a.Steps), stepList(b.Steps))
	}
	for i := range a.Steps {
		x, y := &a.Steps[i], &b.Steps[i]
		if math.Abs(x.Scale-y.Scale) > 1e-9 || x.Refinement != y.Refinement || x.Retry != y.Retry ||
			x.DurationS != y.DurationS || x.SettleS != y.SettleS {
			return fmt.Errorf("step %d differs: %s for %gs and %s for %gs (steps %s and %s)", i+1,
				x.Label(), x.DurationS, y.Label(), y.DurationS, stepList(a.Steps), stepList(b.Steps))
		}
	}
	return nil
}

func stepList(steps []Step) string {
	names := make([]string, len(steps))
	for i := range steps {
		names[i] = steps[i].Label()
	}
	return "[" + strings.Join(names, " ") + "]"
}

// distinctRuns refuses the same results twice (the same shard, or the
// same start to the nanosecond), and shards of different splits (1/4 with
// 2/3).
func distinctRuns(files []*File) error {
	seen := map[string]bool{}
	total := ""
	for _, f := range files {
		s := f.Params.Shard
		if s == "" {
			continue
		}
		if seen[s] {
			return fmt.Errorf("shard %s appears twice: merge each shard's results once", s)
		}
		seen[s] = true
		if _, n, ok := strings.Cut(s, "/"); ok {
			if total != "" && n != total {
				return fmt.Errorf("shards of different splits: %s of %s and %s", s, n, total)
			}
			total = n
		}
	}
	// Without shards, the start tells two runs apart.
	started := map[time.Time]int{}
	for i, f := range files {
		if f.Params.Shard != "" || f.StartedAt.IsZero() {
			continue
		}
		if j, ok := started[f.StartedAt]; ok {
			return fmt.Errorf("results %d and %d are the same run twice (started at %s): merge each shard's results once",
				j+1, i+1, f.StartedAt.Format(time.RFC3339Nano))
		}
		started[f.StartedAt] = i
	}
	return nil
}

// mergeSteps adds the parts of one step, which compatible has matched.
func mergeSteps(parts []*Step, files []*File) (*Step, error) {
	first := parts[0]
	st := &Step{
		Scale: first.Scale, Refinement: first.Refinement, Retry: first.Retry, StartedAt: first.StartedAt,
		BeyondBreak: first.BeyondBreak, Recovery: first.Recovery,
		DurationS: first.DurationS, SettleS: first.SettleS,
		ErrorClasses: Counts{}, NotSent: Counts{}, Violations: []string{},
		Generator: Generator{Notes: []string{}},
	}
	hists := make([]*hdr.Histogram, len(st.Hists()))
	for j := range hists {
		hists[j] = NewHist()
	}
	routes := map[[2]string]*routeSum{}
	seconds := map[int64]*secondSum{}
	var attempt *hdr.Histogram
	var targets targetSums
	cores := 0.0
	for i, p := range parts {
		if p.StartedAt.Before(st.StartedAt) {
			st.StartedAt = p.StartedAt
		}
		st.Planned += p.Planned
		st.Sent += p.Sent
		st.Completed += p.Completed
		st.Errors += p.Errors
		st.Mismatches += p.Mismatches
		st.Good += p.Good
		st.Written += p.Written
		st.Retried += p.Retried
		st.Unsolicited += p.Unsolicited
		st.Remaining += p.Remaining
		st.Attempts += p.Attempts
		if len(p.Retries) > 0 {
			if st.Retries == nil {
				st.Retries = Counts{}
			}
			addCounts(st.Retries, p.Retries)
		}
		if p.Histograms.Attempt != "" {
			if attempt == nil {
				attempt = NewHist()
			}
			if err := DecodeInto(attempt, p.Histograms.Attempt); err != nil {
				return nil, fmt.Errorf("attempt histogram: %w", err)
			}
		}
		addCounts(st.ErrorClasses, p.ErrorClasses)
		addCounts(st.NotSent, p.NotSent)
		if err := targets.add(p.Targets); err != nil {
			return nil, err
		}
		for class, msg := range p.FirstErrors {
			// The first part's message; shards have no common clock to
			// say which came first.
			if st.FirstErrors == nil {
				st.FirstErrors = map[string]string{}
			}
			if _, ok := st.FirstErrors[class]; !ok {
				st.FirstErrors[class] = msg
			}
		}
		for j, x := range p.Hists() {
			if err := DecodeInto(hists[j], *x.Encoded); err != nil {
				return nil, fmt.Errorf("%s histogram: %w", x.Name, err)
			}
		}
		for _, r := range p.Routes {
			k := [2]string{r.Method, r.Route}
			rs := routes[k]
			if rs == nil {
				rs = &routeSum{Route: Route{Method: r.Method, Route: r.Route}, hist: NewHist()}
				routes[k] = rs
			}
			rs.Sent += r.Sent
			rs.Completed += r.Completed
			rs.Errors += r.Errors
			rs.Mismatches += r.Mismatches
			if err := DecodeInto(rs.hist, r.Histogram); err != nil {
				return nil, fmt.Errorf("route %s %s: %w", r.Method, r.Route, err)
			}
		}
		for _, s := range p.Timeline {
			ss := seconds[s.T]
			if ss == nil {
				ss = &secondSum{Second: Second{T: s.T}, hist: NewTimelineHist()}
				seconds[s.T] = ss
			}
			ss.Finished += s.Finished
			ss.Due += s.Due
			ss.Sent += s.Sent
			ss.Completed += s.Completed
			ss.Errors += s.Errors
			ss.Mismatches += s.Mismatches
			ss.Attempts += s.Attempts
			if err := DecodeInto(ss.hist, s.Histogram); err != nil {
				return nil, fmt.Errorf("timeline second %d: %w", s.T, err)
			}
		}
		st.Generator.Limited = st.Generator.Limited || p.Generator.Limited
		for _, n := range p.Generator.Notes {
			if shard := files[i].Params.Shard; shard != "" {
				n = "shard " + shard + ": " + n
			}
			if !slices.Contains(st.Generator.Notes, n) {
				st.Generator.Notes = append(st.Generator.Notes, n)
			}
		}
		st.Aborted = st.Aborted || p.Aborted
		st.Interrupted = st.Interrupted || p.Interrupted
		if st.AbortReason == "" {
			st.AbortReason = p.AbortReason
		}
		cores += p.CPU
	}
	st.CPU = Round3(cores)
	for j, x := range st.Hists() {
		*x.Encoded = Encode(hists[j])
	}
	// The routes come in map order; summarize sorts them (SortedRoutes is
	// a total order, so none of the map's order is left).
	var routeHists []*hdr.Histogram
	for _, rs := range routes {
		// A route with no latency has no histogram, as replay writes it.
		if rs.hist.TotalCount() > 0 {
			rs.Histogram = Encode(rs.hist)
		}
		st.Routes = append(st.Routes, rs.Route)
		routeHists = append(routeHists, rs.hist)
	}
	summarize(st, hists, routeHists)
	st.Targets = targets.results()
	if err := summarizeTargets(st); err != nil {
		return nil, err
	}
	if attempt != nil {
		st.Histograms.Attempt = Encode(attempt)
		if err := summarizeAttempts(st); err != nil {
			return nil, err
		}
	}
	if err := mergeHTTP2(st, parts); err != nil {
		return nil, err
	}
	for _, ss := range slices.SortedFunc(maps.Values(seconds), func(a, b *secondSum) int { return cmp.Compare(a.T, b.T) }) {
		ss.Histogram = Encode(ss.hist)
		ss.summarize(ss.hist)
		st.Timeline = append(st.Timeline, ss.Second)
	}
	return st, nil
}

type routeSum struct {
	Route
	hist *hdr.Histogram
}

type secondSum struct {
	Second
	hist *hdr.Histogram
}

// mergeHTTP2 merges the connect histograms and HTTP/2 counts of parts
// that have them.
func mergeHTTP2(st *Step, parts []*Step) error {
	connect := NewHist()
	any := false
	for _, p := range parts {
		if p.Histograms.Connect != "" {
			any = true
			if err := DecodeInto(connect, p.Histograms.Connect); err != nil {
				return fmt.Errorf("connect histogram: %w", err)
			}
		}
		if p.HTTP2 != nil {
			if st.HTTP2 == nil {
				st.HTTP2 = &HTTP2{}
			}
			st.HTTP2.Resent += p.HTTP2.Resent
			st.HTTP2.SlotWaits += p.HTTP2.SlotWaits
		}
	}
	if any {
		st.Histograms.Connect = Encode(connect)
	}
	return summarizeConnect(st)
}

func addCounts(dst, src Counts) {
	for k, v := range src {
		dst[k] += v
	}
}
