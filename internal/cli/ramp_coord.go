package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/internal/coord"
	"github.com/herd-replay/herd/replay"
	"github.com/spf13/pflag"
)

// coordFlags are herd ramp's flags for shards that act together.
type coordFlags struct {
	Coordinate        string
	CoordinateTimeout time.Duration
}

func (c *coordFlags) addCoordFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Coordinate, "coordinate", "", "with --shard: a directory every shard reads and writes (a ReadWriteMany volume), empty for each run; the shards start together, judge every step on all their traffic, and all stop within 2 s when one stops")
	fs.DurationVar(&c.CoordinateTimeout, "coordinate-timeout", coord.DefaultTimeout, "with --coordinate: how long to wait for another shard to be ready or to finish a step before stopping and naming it")
}

// coordinate joins the other shards of the run when --coordinate is set:
// it waits until every shard is ready with the same settings, hooks the
// group into the ramp and moves s.startAt to the joint start. The caller
// calls done with the ramp's error once it is over: an error stops the
// other shards too.
func (o *rampOptions) coordinate(ctx context.Context, s *setup, window string, ro *replay.RampOptions) (done func(error), err error) {
	done = func(error) {}
	if o.Coordinate == "" {
		return done, nil
	}
	shard := s.plan.Shard
	if shard.Count == 0 {
		return done, usageErrorf("--coordinate needs --shard i/N (or auto/N): it joins the N shards of one run")
	}
	if o.CoordinateTimeout <= 0 {
		return done, usageErrorf("--coordinate-timeout must be positive")
	}
	g, start, err := coord.Join(ctx, coord.Options{
		Dir: o.Coordinate, Shard: shard.Index, Shards: shard.Count, Timeout: o.CoordinateTimeout,
		SLOs: s.settings.SLOs, Saturation: ro.Saturation, Settings: o.runSettings(s, window),
		Label: func(k int) string { return fmt.Sprintf("step %d", k+1) },
	})
	if err != nil {
		return done, fmt.Errorf("--coordinate %s: %w", o.Coordinate, err)
	}
	ro.Shards = g
	if start.After(s.startAt) {
		s.startAt = start
	}
	fmt.Fprintf(o.IO.Err, "herd: shard %s: all %d shards ready in %s; the ramp starts at %s\n",
		shard, shard.Count, o.Coordinate, s.startAt.UTC().Format(time.RFC3339Nano))
	return func(err error) {
		// A shard whose ramp ended, for whatever reason, says so: the
		// others, if they were to go on (a step this machine could not
		// run), stop at once instead of waiting out the timeout.
		why := "its ramp ended"
		if err != nil {
			why = err.Error()
		}
		g.Stop(why)
		g.Close()
	}, nil
}

// runSettings are what every shard of one run must agree on: what
// herd report merge checks afterwards, checked before the first request.
func (o *rampOptions) runSettings(s *setup, window string) map[string]string {
	f := strconv.FormatFloat
	g := func(x float64) string { return f(x, 'g', -1, 64) }
	slos := make([]string, len(s.settings.SLOs))
	for i, x := range s.settings.SLOs {
		slos[i] = x.Text
	}
	st, po := s.settings, s.plan
	return map[string]string{
		"tape":          baseName(o.Tape),
		"target":        st.Target.String(),
		"window":        window,
		"scale-mode":    st.Mode.String(),
		"pacing":        st.Pacing.String(),
		"from":          g(o.From),
		"step":          g(o.Step),
		"to":            g(o.To),
		"step-duration": o.StepDuration.String(),
		"settle":        o.Settle.String(),
		"cooldown":      o.Cooldown.String(),
		"refine":        strconv.Itoa(o.Refine),
		"saturation":    g(o.Saturation),
		"slo":           strings.Join(slos, " "),
		"seed":          strconv.FormatUint(st.Seed, 10),
		"timeout":       st.Timeout.String(),
		"abort-on":      st.Abort.Text,
		"read-only":     strconv.FormatBool(po.ReadOnly),
		"shards":        strconv.Itoa(po.Shard.Count),
		"start-at":      o.StartAt,
	}
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}
