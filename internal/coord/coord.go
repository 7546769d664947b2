// Package coord makes the N shards of a sharded ramp (herd ramp --shard i/N
// --coordinate DIR) take every decision together, through files in a
// directory they all read and write: a ReadWriteMany volume in Kubernetes,
// any local directory on one machine. It owns that protocol and nothing
// else: it runs no step and sends no request.
//
// The protocol, in files written whole under a temporary name and renamed
// into place (readers see a file complete or not at all):
//
//   - ready-I.json: shard I loaded its plan; it names the run's settings,
//     which every shard checks are its own. The shards start together, a
//     second after the last one is ready.
//   - step-K-I.json: shard I's results of its step K (histograms and
//     counts, without the timeline). Once all N are there, each shard
//     merges them exactly and evaluates the merged step against the SLOs:
//     the verdict every shard then acts on is the one a single herd sending
//     all the traffic would have reached, and the one herd report merge
//     recomputes. Any shard herd-limited makes the step herd-limited for
//     all (they run it again together). The next step starts half a second
//     after the last shard's file, on every shard.
//   - stop-I.json: shard I stopped: its emergency stop fired, it was
//     interrupted, or it gave up waiting. Every other shard polls for these
//     during a step and stops sending within the poll interval (250 ms).
//   - recovery-step-K-I.json, recovery-stop-I.json: the same for the
//     recovery phase (herd ramp --recovery), which the shards run together
//     after the breaking step, or after an emergency stop when the first
//     stop of the ramp was one (Group.Recovering). A stop during it stops
//     every shard's recovery phase; the shards' recovery steps are joined
//     like the others.
//
// A shard that never writes its file is waited for up to Options.Timeout;
// then the others stop and name it. The consistency needed is what NFS
// gives with close-to-open semantics: a file renamed into the directory by
// one client is listed by every other within a second or so (see
// docs/kubernetes.md for the mount options).
package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/herd-replay/herd/internal/results"
)

// Defaults of Options.
const (
	DefaultTimeout = 2 * time.Minute
	DefaultPoll    = 250 * time.Millisecond
	// startLead is how long after the last shard is ready they all start.
	startLead = time.Second
	// stepLead is how long after the last shard's step file the next step
	// starts: every shard must have seen that file by then.
	stepLead = 500 * time.Millisecond
)

// Options configure one shard's part in a coordinated ramp.
type Options struct {
	Dir    string
	Shard  int // this shard's index, from 0
	Shards int // N
	// Timeout bounds every wait for another shard: to be ready, to finish
	// a step.
	Timeout time.Duration
	// Poll is how often the directory is read while waiting, and during a
	// step for another shard's stop.
	Poll time.Duration
	// SLOs and Saturation judge the merged steps, as the ramp judges its
	// own.
	SLOs       []results.SLO
	Saturation float64
	// Settings name the run (tape, target, steps, SLOs ...): every shard
	// must have the same, or they are not parts of one run.
	Settings map[string]string
	// Labels name the steps in messages: Labels(k) is step k's multiple.
	Label func(step int) string
}

// Group is one shard's handle on the others. Its methods are called from
// one goroutine, the ramp's; its watchers run their own.
type Group struct {
	o Options

	mu       sync.Mutex
	phase    string // the prefix of the current phase's files: "" or "recovery-"
	stopped  bool   // this shard published its stop in this phase
	peerStop *Stop  // the first other shard's stop seen in this phase

	closed chan struct{}
	watch  sync.WaitGroup
}

// Stop is a shard's stop: who and why. Emergency marks the stop of a
// shard whose emergency stop fired, after which the shards may go on to
// the recovery phase; any other stop ends the run.
type Stop struct {
	Shard     int       `json:"shard"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
	Emergency bool      `json:"emergency,omitempty"`
}

type readyFile struct {
	Shard    int               `json:"shard"`
	Shards   int               `json:"shards"`
	Settings map[string]string `json:"settings"`
	At       time.Time         `json:"at"`
}

type stepFile struct {
	Shard int           `json:"shard"`
	At    time.Time     `json:"at"`
	Step  *results.Step `json:"step"`
}

// ShardError is a failure to coordinate that names the shards at fault.
type ShardError struct{ Msg string }

func (e *ShardError) Error() string { return e.Msg }

func (o *Options) defaults() error {
	switch {
	case o.Dir == "":
		return errors.New("coordination needs a directory")
	case o.Shards < 1 || o.Shard < 0 || o.Shard >= o.Shards:
		return fmt.Errorf("shard %d of %d: need 0 <= shard < shards", o.Shard, o.Shards)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Label == nil {
		o.Label = func(k int) string { return fmt.Sprintf("step %d", k+1) }
	}
	return nil
}

func (g *Group) name(i int) string { return fmt.Sprintf("%d/%d", i, g.o.Shards) }

// Join announces this shard in o.Dir, waits until every shard is there
// with the same settings, and returns the group and the time at which all
// start. A directory that already holds this shard's files (an earlier
// run's, or another process given the same index) is refused: each run
// needs a directory of its own.
func Join(ctx context.Context, o Options) (*Group, time.Time, error) {
	if err := o.defaults(); err != nil {
		return nil, time.Time{}, err
	}
	g := &Group{o: o, closed: make(chan struct{})}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, time.Time{}, fmt.Errorf("coordination directory: %w", err)
	}
	mine := filepath.Join(o.Dir, fmt.Sprintf("ready-%d.json", o.Shard))
	if _, err := os.Stat(mine); err == nil {
		return nil, time.Time{}, &ShardError{Msg: fmt.Sprintf("%s already holds the files of shard %s (an earlier run, or two shards with one index): give every run an empty directory of its own", o.Dir, g.name(o.Shard))}
	}
	if err := g.write(mine, readyFile{Shard: o.Shard, Shards: o.Shards, Settings: o.Settings, At: time.Now().UTC()}); err != nil {
		return nil, time.Time{}, err
	}
	deadline := time.Now().Add(o.Timeout)
	for {
		var last time.Time
		var missing []int
		for i := 0; i < o.Shards; i++ {
			var r readyFile
			ok, err := readJSON(filepath.Join(o.Dir, fmt.Sprintf("ready-%d.json", i)), &r)
			if err != nil {
				return nil, time.Time{}, err
			}
			if !ok {
				missing = append(missing, i)
				continue
			}
			if msg := g.sameRun(r); msg != "" {
				g.publishStop(msg)
				return nil, time.Time{}, &ShardError{Msg: msg}
			}
			last = maxTime(last, r.At)
		}
		if stop, err := g.peerStopped(); err != nil {
			return nil, time.Time{}, err
		} else if stop != nil {
			return nil, time.Time{}, &ShardError{Msg: fmt.Sprintf("shard %s stopped before the start: %s", g.name(stop.Shard), stop.Reason)}
		}
		if len(missing) == 0 {
			// An interrupt at any moment, between steps too (a cooldown,
			// the wait for the start), stops the other shards.
			g.watch.Add(1)
			go func() {
				defer g.watch.Done()
				select {
				case <-ctx.Done():
					g.publishStop("interrupted")
				case <-g.closed:
				}
			}()
			return g, last.Add(startLead), nil
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s not ready within %v (no ready file in %s)", g.names(missing), o.Timeout, o.Dir)
			g.publishStop(msg)
			return nil, time.Time{}, &ShardError{Msg: msg}
		}
		if err := sleep(ctx, o.Poll); err != nil {
			g.publishStop("interrupted before the start")
			return nil, time.Time{}, err
		}
	}
}

// Stop tells the other shards that this one stopped, for reason (an error
// outside any step).
func (g *Group) Stop(reason string) { g.publishStop(reason) }

// Close ends the group's watch for an interrupt. Call it once the ramp is
// over.
func (g *Group) Close() {
	close(g.closed)
	g.watch.Wait()
}

// sameRun explains how another shard's ready file shows it is not a part
// of this run, or returns "".
func (g *Group) sameRun(r readyFile) string {
	if r.Shards != g.o.Shards {
		return fmt.Sprintf("shard %d/%d and this shard %s split the run differently", r.Shard, r.Shards, g.name(g.o.Shard))
	}
	keys := make([]string, 0, len(g.o.Settings))
	for k := range g.o.Settings {
		keys = append(keys, k)
	}
	for k := range r.Settings {
		if _, ok := g.o.Settings[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a, b := g.o.Settings[k], r.Settings[k]; a != b {
			return fmt.Sprintf("shard %s runs another ramp: %s is %q there and %q on shard %s", g.name(r.Shard), k, b, a, g.name(g.o.Shard))
		}
	}
	return ""
}

// During returns the context step k runs under, cancelled within the poll
// interval when another shard publishes its stop, and the hook this
// shard's emergency stop calls to publish its own at once. When ctx ends
// (Ctrl-C, SIGTERM), this shard's stop is published too. The returned
// cancel function ends the watch.
func (g *Group) During(ctx context.Context, k int) (context.Context, func(reason string), context.CancelFunc) {
	stepCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(g.o.Poll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				g.publishStop("interrupted during " + g.label(k))
				return
			case <-t.C:
				// A directory that cannot be read is waited out: the
				// barrier after the step times out if it stays so.
				if stop, _ := g.peerStopped(); stop != nil {
					cancel(&ShardError{Msg: g.stopReason(stop)})
					return
				}
			}
		}
	}()
	onAbort := func(reason string) {
		g.publish(fmt.Sprintf("emergency stop during %s: %s", g.label(k), reason), true)
	}
	return stepCtx, onAbort, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

// Join publishes this shard's step k and waits for every other shard's,
// then makes st's verdict the joint one:
//
//   - another shard stopped (emergency stop, interrupt, a shard missing):
//     st is marked aborted with its reason;
//   - every shard finished the step: st's Passed, Violations and
//     FailedRoute become those of the merged step; st is herd-limited if
//     any shard was, with a note naming it.
//
// When ctx ends while waiting, st is marked interrupted. Join returns
// when every shard should start its next step.
func (g *Group) Join(ctx context.Context, k int, st *results.Step) {
	cp := *st
	cp.Timeline = nil // not needed to judge the step; it is most of the bytes
	at := time.Now().UTC()
	if err := g.write(g.stepPath(k, g.o.Shard), stepFile{Shard: g.o.Shard, At: at, Step: &cp}); err != nil {
		g.abort(st, fmt.Sprintf("coordination: %v", err))
		return
	}
	g.mu.Lock()
	peer := g.peerStop
	g.mu.Unlock()
	switch {
	case st.Interrupted && ctx.Err() == nil && peer != nil:
		// The step was cut short by another shard's stop, not by this
		// shard's interrupt.
		st.Interrupted = false
		g.abort(st, g.stopReason(peer))
		return
	case st.Interrupted:
		g.publishStop("interrupted during " + g.label(k))
		return
	case st.Aborted:
		g.publish(fmt.Sprintf("emergency stop during %s: %s", g.label(k), st.AbortReason), true)
		return
	}
	deadline := time.Now().Add(g.o.Timeout)
	for {
		steps, missing, err := g.readSteps(k)
		if err != nil {
			g.abort(st, fmt.Sprintf("coordination: %v", err))
			return
		}
		// Every step there wins over a stop: a shard that finished its
		// ramp after this step says so, and this step is still whole.
		if len(missing) == 0 {
			g.joint(st, steps)
			last := time.Time{}
			for _, s := range steps {
				last = maxTime(last, s.At)
			}
			if sleepUntil(ctx, last.Add(stepLead)) != nil {
				st.Interrupted = true
				g.publishStop("interrupted after " + g.label(k))
			}
			return
		}
		if stop, err := g.peerStopped(); err == nil && stop != nil {
			g.abort(st, g.stopReason(stop))
			return
		}
		if time.Now().After(deadline) {
			g.abort(st, fmt.Sprintf("%s did not finish %s within %v", g.names(missing), g.label(k), g.o.Timeout))
			return
		}
		if sleep(ctx, g.o.Poll) != nil {
			st.Interrupted = true
			g.publishStop("interrupted waiting for the other shards after " + g.label(k))
			return
		}
	}
}

// joint makes st's verdict that of all the shards' steps together.
func (g *Group) joint(st *results.Step, steps []stepFile) {
	for _, s := range steps {
		if s.Shard == g.o.Shard {
			continue
		}
		switch {
		case s.Step.Aborted:
			g.abort(st, fmt.Sprintf("shard %s: emergency stop: %s", g.name(s.Shard), s.Step.AbortReason))
			return
		case s.Step.Interrupted:
			g.abort(st, fmt.Sprintf("shard %s was interrupted", g.name(s.Shard)))
			return
		}
	}
	files := make([]*results.File, len(steps))
	slos := make([]string, len(g.o.SLOs))
	for i, s := range g.o.SLOs {
		slos[i] = s.Text
	}
	for i, s := range steps {
		files[i] = &results.File{
			Schema: results.Schema, Kind: "ramp",
			Params: results.Params{Shard: g.name(s.Shard), SLOs: slos, Saturation: g.o.Saturation},
			Steps:  []results.Step{*s.Step},
		}
	}
	merged, err := results.Merge(files...)
	if err != nil {
		g.abort(st, fmt.Sprintf("the shards' steps do not merge: %v", err))
		return
	}
	m := merged.Steps[0]
	st.Passed, st.Violations, st.FailedRoute = m.Passed, m.Violations, m.FailedRoute
	for _, s := range steps {
		if s.Shard != g.o.Shard && s.Step.Generator.Limited {
			st.Generator.Limited = true
			st.Generator.Notes = append(st.Generator.Notes, fmt.Sprintf("shard %s was the limit: %s", g.name(s.Shard), strings.Join(s.Step.Generator.Notes, "; ")))
		}
	}
}

// abort marks st stopped for reason and tells the other shards.
func (g *Group) abort(st *results.Step, reason string) {
	st.Aborted, st.AbortReason = true, reason
	g.publishStop(reason)
}

func (g *Group) stopReason(s *Stop) string {
	return fmt.Sprintf("shard %s stopped: %s", g.name(s.Shard), s.Reason)
}

// publishStop writes this shard's stop file of the current phase, once.
func (g *Group) publishStop(reason string) { g.publish(reason, false) }

func (g *Group) publish(reason string, emergency bool) {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	phase := g.phase
	g.mu.Unlock()
	// Best effort: a shard that cannot write is found missing at the next
	// barrier instead.
	_ = g.write(filepath.Join(g.o.Dir, fmt.Sprintf("%sstop-%d.json", phase, g.o.Shard)),
		Stop{Shard: g.o.Shard, Reason: reason, At: time.Now().UTC(), Emergency: emergency})
}

// label names step k in messages; the recovery phase by its name.
func (g *Group) label(k int) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.phase != "" {
		return "the recovery phase"
	}
	return g.o.Label(k)
}

// Recovering starts the recovery phase: the steps and stops that follow
// are the recovery's, and a stop of the ramp before it no longer stops
// them. It refuses when the ramp's first stop was not an emergency stop (a
// shard interrupted, missing or failed runs no recovery phase, and the
// others would wait for it), naming that stop.
func (g *Group) Recovering() error {
	stops, err := g.stops("")
	if err != nil {
		return err
	}
	g.mu.Lock()
	mine := g.stopped
	g.mu.Unlock()
	if len(stops) > 0 && !stops[0].Emergency {
		return &ShardError{Msg: fmt.Sprintf("no recovery phase: shard %s stopped: %s", g.name(stops[0].Shard), stops[0].Reason)}
	}
	if len(stops) == 0 && mine {
		// This shard's stop is not readable: the others may not have
		// seen it either.
		return &ShardError{Msg: "no recovery phase: this shard's stop file cannot be read"}
	}
	g.mu.Lock()
	g.phase, g.stopped, g.peerStop = "recovery-", false, nil
	g.mu.Unlock()
	return nil
}

// stops reads every stop file of a phase, the earliest first.
func (g *Group) stops(phase string) ([]Stop, error) {
	ents, err := os.ReadDir(g.o.Dir)
	if err != nil {
		return nil, fmt.Errorf("read coordination directory: %w", err)
	}
	var stops []Stop
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, phase+"stop-") && strings.HasSuffix(n, ".json") {
			var s Stop
			if ok, err := readJSON(filepath.Join(g.o.Dir, n), &s); err == nil && ok {
				stops = append(stops, s)
			}
		}
	}
	sort.SliceStable(stops, func(i, j int) bool { return stops[i].At.Before(stops[j].At) })
	return stops, nil
}

// peerStopped returns another shard's stop, if one was published, and
// remembers the first seen.
func (g *Group) peerStopped() (*Stop, error) {
	g.mu.Lock()
	if g.peerStop != nil {
		defer g.mu.Unlock()
		return g.peerStop, nil
	}
	phase := g.phase
	g.mu.Unlock()
	// One directory listing per poll, whatever N: cheaper on a network
	// file system than N lookups.
	ents, err := os.ReadDir(g.o.Dir)
	if err != nil {
		return nil, fmt.Errorf("read coordination directory: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, phase+"stop-") && strings.HasSuffix(n, ".json") && n != fmt.Sprintf("%sstop-%d.json", phase, g.o.Shard) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		var s Stop
		if ok, err := readJSON(filepath.Join(g.o.Dir, n), &s); err != nil || !ok {
			continue
		}
		g.mu.Lock()
		if g.peerStop == nil {
			g.peerStop = &s
		}
		s = *g.peerStop
		g.mu.Unlock()
		return &s, nil
	}
	return nil, nil
}

func (g *Group) stepPath(k, shard int) string {
	g.mu.Lock()
	phase := g.phase
	g.mu.Unlock()
	return filepath.Join(g.o.Dir, fmt.Sprintf("%sstep-%d-%d.json", phase, k, shard))
}

// readSteps reads the shards' files of step k, by shard, and lists the
// shards whose file is not there yet.
func (g *Group) readSteps(k int) ([]stepFile, []int, error) {
	var steps []stepFile
	var missing []int
	for i := 0; i < g.o.Shards; i++ {
		var s stepFile
		ok, err := readJSON(g.stepPath(k, i), &s)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			missing = append(missing, i)
			continue
		}
		if s.Step == nil || s.Shard != i {
			return nil, nil, fmt.Errorf("%s holds no step of shard %s", g.stepPath(k, i), g.name(i))
		}
		steps = append(steps, s)
	}
	return steps, missing, nil
}

func (g *Group) names(shards []int) string {
	parts := make([]string, len(shards))
	for i, s := range shards {
		parts[i] = g.name(s)
	}
	if len(parts) == 1 {
		return "shard " + parts[0]
	}
	return "shards " + strings.Join(parts, ", ")
}

// write stores v as JSON at path atomically: a temporary file in the same
// directory, synced, then renamed over path.
func (g *Group) write(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".tmp-%d-%s", g.o.Shard, hex.EncodeToString(rnd[:])))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readJSON reads path into v; ok is false when the file does not exist.
func readJSON(path string, v any) (ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	if d := time.Until(t); d > 0 {
		return sleep(ctx, d)
	}
	return ctx.Err()
}
