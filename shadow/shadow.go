// Package shadow replays live traffic to a target as it is captured (herd
// shadow, the main mode of GoReplay): packets from a live interface become
// requests (package capture), and each request is sent to the target at
// its recorded time plus a fixed delay, k times over in clone mode, and
// measured as herd replay measures, in steps of an interval (package
// replay's live replay). It owns the wiring between the two: which
// requests go on (only those the capture saw whole), when each is due,
// what is redacted, how the recorded status reaches the replay, and when
// capture stops. It imports capture and replay; neither imports it, and
// it knows nothing of the command line.
package shadow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/replay"
	"github.com/herd-replay/herd/tape"
)

// DefaultDelay is how long after its recorded start a request is sent.
const DefaultDelay = time.Second

// minMaxLate is the least lateness allowed to a request, whatever the
// delay: a delay of zero still leaves a request the time it takes to
// capture and hand over.
const minMaxLate = 250 * time.Millisecond

// Options configure a shadowing run.
type Options struct {
	// Interface and Ports say what is captured live (capture.OpenLive);
	// Source, when set, is read instead (it is closed at the end).
	Interface string
	Ports     []int
	Source    capture.Source
	// BufferSize is the kernel ring of the live capture (capture's default
	// when zero).
	BufferSize int
	// MaxBody is how much of each request body is kept, hence sent: a
	// longer one is cut (and skipped as body_truncated unless the plan
	// options send truncated bodies). capture.DefaultMaxBody when zero.
	MaxBody int64
	// Redact says which secrets are replaced before a request is sent, as
	// capture replaces them on a tape (the zero value redacts the
	// defaults).
	Redact redact.Options
	// Delay is how long after its recorded start each request is due
	// (DefaultDelay when zero; negative for none).
	Delay time.Duration
	// Plan renders the requests for the target: target or target map,
	// filters, staging values.
	Plan replay.PlanOptions
	// Live is the live replay: the settings of a replay, the multiple,
	// the interval, the duration. Its Start is set here (now plus the
	// delay), and its MaxLate defaults to the delay (at least 250 ms): a
	// request is sent no later than one more delay after it was due.
	Live replay.LiveOptions
	// Capture, when set, is called with the capture's counters now and
	// then, from the capture's goroutine.
	Capture func(capture.Stats)
}

// Stats are what a run counted besides its results.
type Stats struct {
	Capture    capture.Stats
	Live       replay.LiveStats
	Redactions map[string]int64
}

// Run shadows until o.Live.Duration or until ctx is done, and returns
// the results, one step per interval. The emergency stop ends it (the
// results say so). An error of the capture ends it too, and is returned
// with the results measured so far.
func Run(ctx context.Context, o Options) (*results.File, Stats, error) {
	var stats Stats
	if o.Source != nil {
		defer o.Source.Close() // ours to close, whatever happens
	}
	delay := o.Delay
	switch {
	case delay == 0:
		delay = DefaultDelay
	case delay < 0:
		delay = 0
	}
	if o.Source == nil && len(o.Ports) == 0 {
		return nil, stats, errors.New("live capture needs at least one port")
	}
	red, err := redact.New(o.Redact)
	if err != nil {
		return nil, stats, err
	}
	lo := o.Live
	lo.Start = time.Now().Add(delay)
	if lo.MaxLate == 0 {
		lo.MaxLate = max(delay, minMaxLate)
	}
	live, err := replay.NewLive(o.Plan, lo)
	if err != nil {
		return nil, stats, err
	}
	src := o.Source
	if src == nil {
		src, err = capture.OpenLive(capture.LiveOptions{Interface: o.Interface, Ports: o.Ports, BufferSize: o.BufferSize})
		if err != nil {
			return nil, stats, err
		}
		defer src.Close()
	}

	copts := capture.Options{
		Ports:   o.Ports,
		MaxBody: o.MaxBody,
		// The requests are redacted on their way to the target, below;
		// the exchanges the capture writes only carry their status.
		Redact: redact.Options{Disabled: true},
		OnRequest: func(e *tape.Exchange) {
			c := *e
			c.ReqHeader = slices.Clone(e.ReqHeader)
			c.ReqBody = slices.Clone(e.ReqBody)
			red.Exchange(&c)
			live.Add(&c, time.Unix(0, e.ReqStart).Add(delay))
		},
	}
	capCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	if end := live.End(); !end.IsZero() {
		// Nothing captured later is due in a step.
		t := time.AfterFunc(time.Until(end.Add(-delay)), stopCapture)
		defer t.Stop()
	}
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	var wg sync.WaitGroup
	var capErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		st, err := capture.Run(capCtx, src, copts, statusSink{live}, o.Capture)
		stats.Capture = st
		if err != nil && capCtx.Err() == nil {
			capErr = fmt.Errorf("capture: %w", err)
			stopRun(capErr)
		}
	}()
	f, err := live.Run(runCtx)
	stopCapture()
	wg.Wait()
	stats.Live = live.Stats()
	stats.Redactions = red.Counters()
	if err != nil {
		return nil, stats, err
	}
	f.Tape = "live"
	if o.Interface != "" {
		f.Tape = fmt.Sprintf("live:%s:%v", o.Interface, o.Ports)
	}
	return f, stats, capErr
}

// statusSink passes the status of each exchange the capture writes to the
// live replay, for requests not sent yet: a different status from the
// target is then a mismatch.
type statusSink struct{ live *replay.Live }

func (s statusSink) Write(e *tape.Exchange) error {
	if e.HasResponse() && e.Status > 0 {
		s.live.Status(e.ConnID, e.Seq, e.Status)
	}
	return nil
}
