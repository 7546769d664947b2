package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/version"
)

// Settings are what a replay and a ramp share: where and how requests are
// sent, and what the run is held to. The plan says what is sent.
type Settings struct {
	Target      *url.URL
	Mode        Mode
	Seed        uint64
	Pacing      Pacing
	Timeout     time.Duration // per request, from its send; always on
	MaxConns    int
	MaxInflight int
	Abort       AbortRule
	LagBound    time.Duration
	TLS         *tls.Config
	Engine      Engine   // how requests are sent (EngineAuto: the event loops where they apply)
	Protocol    Protocol // HTTP/1.1 or HTTP/2 (see Protocol)
	// Client emulation (see Options): what the recorded clients did when
	// the target failed them.
	ClientTimeout time.Duration
	Retry         RetryPolicy
	RetryBudget   float64
	// MaxRate caps the requests sent per second (Options.MaxRate); 0: no
	// cap.
	MaxRate float64
	// SLOs every step is held to; nil holds it to none.
	SLOs []results.SLO
	// MaxRun refuses a run planned to last longer (DefaultMaxRun when 0).
	MaxRun time.Duration
	// TapeName names the tape in the results.
	TapeName string
	Raw      io.Writer
	Progress func(Progress)
	// Ready is called once the run is planned and checked, before anything
	// is sent: a caller shows the outline, or waits for a start time. An
	// error it returns ends the run before it starts.
	Ready func(Outline) error
}

// maxRate is a rate no herd process can send (several times more than the
// best measured): a plan above it is refused rather than started and
// called generator-limited.
const maxRate = 1e6

// DefaultMaxRun bounds how long a run may be planned to last unless told
// otherwise: a tape that spans days must not start a days-long run by
// default.
const DefaultMaxRun = 24 * time.Hour

// Outline is what a run will do, known before it starts.
type Outline struct {
	Kind      string        // "replay" or "ramp"
	Requests  int64         // requests of one pass at 1x
	Window    time.Duration // one pass at 1x
	Conns     int           // recorded connections in the window
	PeakConns int64         // replayed connections open at once, at the highest multiple
	Duration  time.Duration // the whole run, without cooldowns for a ramp
	Steps     int           // ramp: main steps planned
	Scale     float64       // replay: the multiple; ramp: the highest
	Planned   int64         // replay: requests scheduled
	MaxRate   float64       // the rate cap (Settings.MaxRate); 0: none
}

// checkRoutes refuses an SLO on a route the plan does not measure: an
// objective that can never be checked must not pass silently.
func (o *Settings) checkRoutes(p *Plan) error {
	for _, s := range o.SLOs {
		if s.Route == "" {
			continue
		}
		found := false
		for _, k := range p.Routes {
			if k.Route == s.Route && (s.Method == "" || s.Method == k.Method) {
				found = true
				break
			}
		}
		if !found {
			var some []string
			for i, k := range p.Routes {
				if i == 5 {
					some = append(some, "...")
					break
				}
				some = append(some, k.Method+" "+k.Route)
			}
			return &OptionError{Option: "slo", Err: fmt.Errorf("SLO %q names a route the replayed window does not measure (its routes: %s)",
				s.Text, strings.Join(some, ", "))}
		}
	}
	return nil
}

func (o *Settings) check() error {
	switch {
	case o.Target == nil:
		return &OptionError{Option: "target", Err: errors.New("no target")}
	case o.Target.Scheme != "http" && o.Target.Scheme != "https":
		return &OptionError{Option: "target", Err: fmt.Errorf("target %q: the scheme must be http or https", o.Target)}
	case o.Timeout < 0:
		return &OptionError{Option: "timeout", Err: errors.New("the timeout must be positive: it is always on")}
	case o.MaxConns < 0 || o.MaxInflight < 0:
		return &OptionError{Option: "max_conns", Err: errors.New("the connection and in-flight bounds must be positive")}
	case o.MaxRun < 0:
		return &OptionError{Option: "max_run", Err: errors.New("the longest run must be positive")}
	case o.ClientTimeout < 0:
		return &OptionError{Option: "client_timeout", Err: errors.New("the client timeout must not be negative")}
	case o.RetryBudget < 0 || o.RetryBudget > 10:
		return &OptionError{Option: "retry_budget", Err: errors.New("the retry budget is a fraction of first attempts between 0 and 10")}
	case o.MaxRate < 0 || math.IsInf(o.MaxRate, 0) || math.IsNaN(o.MaxRate):
		return &OptionError{Option: "max_rate", Err: errors.New("the rate cap must be a positive number of requests per second")}
	}
	if o.Engine == EngineLoop {
		if ok, why := loopApplies(o.Target, o.Protocol, nil); !ok {
			return &OptionError{Option: "engine", Err: errors.New(why), Hint: "use the goroutine engine (or auto)"}
		}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.LagBound <= 0 {
		o.LagBound = DefaultLagBound
	}
	if o.MaxRun == 0 {
		o.MaxRun = DefaultMaxRun
	}
	return nil
}

// step is the options of one step of the run.
func (o *Settings) step(s Schedule, settle time.Duration) Options {
	return Options{Target: o.Target, Schedule: s, Pacing: o.Pacing, Settle: settle, Timeout: o.Timeout,
		MaxConns: o.MaxConns, MaxInflight: o.MaxInflight, Abort: o.Abort, LagBound: o.LagBound, TLS: o.TLS,
		Engine: o.Engine, Protocol: o.Protocol, Raw: o.Raw, Progress: o.Progress, ClientTimeout: o.ClientTimeout, Retry: o.Retry, RetryBudget: o.RetryBudget,
		MaxRate: o.MaxRate}
}

// checkConns refuses a plan that cannot run: more replayed connections
// open at once than the bound allows, or than the machine has ephemeral
// ports towards one target.
func (o *Settings) checkConns(p *Plan, s Schedule) (int64, error) {
	if rate := p.Rate() * s.Scale; rate > maxRate {
		return 0, &OptionError{Option: "scale", Err: fmt.Errorf("at %gx the plan offers %.3g req/s, beyond what one herd process can send (%.0g req/s at the very best)",
			s.Scale, rate, maxRate), Hint: "lower the multiple, or shard the run over several machines"}
	}
	peak := s.PeakConns(p)
	if peak > int64(o.MaxConns) {
		return peak, &OptionError{Option: "scale", Err: fmt.Errorf(
			"at %gx the plan needs about %d connections open at once (the recording peaks at %d in %s mode), above the bound of %d connections",
			s.Scale, peak, NewSchedule(s.Mode, 1, s.Seed, p.Length, 0).PeakConns(p), s.Mode, o.MaxConns),
			Hint: "lower the multiple, or raise the connection bound (and the open-file limit)"}
	}
	if ports := ephemeralPorts(); ports > 0 && peak > ports {
		return peak, &OptionError{Option: "scale", Err: fmt.Errorf(
			"at %gx the plan needs about %d connections open at once, more than the %d ephemeral ports this machine has towards one target",
			s.Scale, peak, ports), Hint: "lower the multiple, or shard the run over several machines"}
	}
	return peak, nil
}

func (o *Settings) checkDuration(d time.Duration) error {
	if d > o.MaxRun {
		return &OptionError{Option: "max_run", Err: fmt.Errorf("the run would last %v, longer than the bound of %v",
			d.Round(time.Second), o.MaxRun),
			Hint: "replay a shorter window (peak:60s), shorten the recording's idle stretches (the idle bound), set a duration, or raise the bound"}
	}
	return nil
}

// ReplayOptions are a single replay at one multiple.
type ReplayOptions struct {
	Settings
	Scale float64
	// Duration of the run, repeating (clone) or looping (compress) the
	// window; zero plays it once.
	Duration time.Duration
}

// Replay replays the plan once at o.Scale and returns its complete
// results: the window, the parameters, the one step evaluated against the
// SLOs, and the verdict. An interrupted or stopped run returns what was
// measured, marked so, with a nil error.
func Replay(ctx context.Context, p *Plan, o ReplayOptions) (*results.File, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if !(o.Scale > 0) || math.IsInf(o.Scale, 0) {
		return nil, &OptionError{Option: "scale", Err: fmt.Errorf("the multiple must be positive (got %g)", o.Scale)}
	}
	if o.Duration < 0 {
		return nil, &OptionError{Option: "duration", Err: errors.New("the duration must not be negative")}
	}
	if err := o.checkRoutes(p); err != nil {
		return nil, err
	}
	if err := o.checkProtocol(p); err != nil {
		return nil, err
	}
	sched := PlanSchedule(p, o.Mode, o.Scale, o.Seed, o.Duration)
	if err := o.checkDuration(sched.Duration); err != nil {
		return nil, err
	}
	peak, err := o.checkConns(p, sched)
	if err != nil {
		return nil, err
	}
	planned, _ := sched.CountDue(p, 0)
	if o.Ready != nil {
		err := o.Ready(Outline{Kind: "replay", Requests: p.Requests, Window: p.Length, Conns: p.Connections(),
			PeakConns: peak, Duration: sched.Duration, Scale: o.Scale, Planned: planned, MaxRate: o.MaxRate})
		if err != nil {
			return nil, err
		}
	}
	f := newFile("replay", p, &o.Settings)
	f.Params.StepS = sched.Duration.Seconds()
	st, err := Run(ctx, p, o.step(sched, 0))
	if err != nil {
		return nil, err
	}
	evaluate(st, o.SLOs, 0)
	f.Steps = append(f.Steps, *st)
	f.Aborted, f.AbortReason, f.Interrupted = st.Aborted, st.AbortReason, st.Interrupted
	results.Analyze(f)
	return f, nil
}

// evaluate holds a finished step to the SLOs. An interrupted step is
// neither passed nor failed: it is not judged.
func evaluate(st *results.Step, slos []results.SLO, saturation float64) {
	if st.Interrupted {
		st.Passed, st.Violations, st.FailedRoute = false, []string{}, ""
		return
	}
	results.Evaluate(st, slos, saturation)
}

// newFile starts the results of a run of the plan with settings o.
func newFile(kind string, p *Plan, o *Settings) *results.File {
	po := p.Options
	names := make([]string, 0, len(po.SetHeaders))
	for _, h := range po.SetHeaders {
		names = append(names, h.Name)
	}
	slos := make([]string, 0, len(o.SLOs))
	for _, x := range o.SLOs {
		slos = append(slos, x.Text)
	}
	f := &results.File{
		Schema: results.Schema, Kind: kind, HerdVersion: version.String(), HerdCommit: version.CommitID(), Target: targetText(p, o.Target), Tape: o.TapeName,
		StartedAt: time.Now().UTC(),
		Window: results.Window{
			Spec: p.Spec, Start: time.Unix(0, p.Start).UTC(), DurationS: p.Length.Seconds(),
			Requests: int64(math.Round(float64(p.Requests) * p.weight())), RPS: results.Round3(p.Rate()), Conns: int64(p.Connections()), Skipped: p.Skipped,
			RecordedS: results.Round3(p.Recorded.Seconds()), IdleRemovedS: results.Round3(p.IdleRemoved.Seconds()),
			MaxIdleS: p.MaxIdle.Seconds(), Clamped: p.Clamped, SampleWeight: p.SampleWeight,
		},
		Params: results.Params{
			ScaleMode: o.Mode.String(), Pacing: o.Pacing.String(), TimeoutS: o.Timeout.Seconds(), SLOs: slos,
			Protocol: o.Protocol.String(),
			MaxConns: o.MaxConns, MaxInflight: o.MaxInflight, Seed: o.Seed, AbortOn: o.Abort.Text,
			ReadOnly: po.ReadOnly, SetHeaders: names, KeepHost: po.KeepHost, SendTrunc: po.SendTruncated,
			GOMAXPROCS: GOMAXPROCS(), DispatchLagS: o.LagBound.Seconds(), Shard: po.Shard.String(),
			Engine:         o.Engine.Resolve(o.Target, o.Protocol, p).String(),
			ClientTimeoutS: o.ClientTimeout.Seconds(), RetryBudget: o.RetryBudget,
		},
		Steps: []results.Step{},
	}
	if o.Retry.On() {
		f.Params.RetryPolicy = o.Retry.Text
	}
	filterParams(&f.Params, po, o.MaxRate)
	return f
}
