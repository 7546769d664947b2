package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// statusView shows a long-running command's progress on stderr: on a
// terminal a bar (over total bytes when they are known, a spinner
// otherwise) followed by line(); elsewhere line() as a status line every
// few seconds. herd record and herd import use it.
type statusView struct {
	io    IO
	name  string
	total int64
	every time.Duration
	line  func() string
	done  func() int64 // progress towards total, for the bar

	stopc chan struct{}
	wg    sync.WaitGroup
	p     *mpb.Progress
	bar   *mpb.Bar
}

func newStatusView(io IO, name string, total int64, every time.Duration, line func() string, done func() int64) *statusView {
	return &statusView{io: io, name: name, total: total, every: every, line: line, done: done, stopc: make(chan struct{})}
}

func (v *statusView) start() {
	if v.io.ErrTTY {
		v.p = mpb.New(mpb.WithOutput(v.io.Err), mpb.WithWidth(40), mpb.WithRefreshRate(250*time.Millisecond), mpb.WithAutoRefresh())
		info := decor.Any(func(decor.Statistics) string { return v.line() })
		if v.total > 0 {
			v.bar = v.p.AddBar(v.total, mpb.PrependDecorators(decor.Percentage(decor.WCSyncSpace)), mpb.AppendDecorators(info))
		} else {
			v.bar = v.p.New(0, mpb.SpinnerStyle(), mpb.PrependDecorators(decor.Name(v.name+" ")), mpb.AppendDecorators(info))
		}
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		tick := v.every
		if v.bar != nil {
			tick = 250 * time.Millisecond
		}
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-v.stopc:
				return
			case <-t.C:
				if v.bar != nil {
					if v.total > 0 && v.done != nil {
						v.bar.SetCurrent(min(v.done(), v.total-1))
					}
					continue
				}
				fmt.Fprintf(v.io.Err, "herd: %s: %s\n", v.name, v.line())
			}
		}
	}()
}

func (v *statusView) stop() {
	close(v.stopc)
	v.wg.Wait()
	if v.p != nil {
		if v.total > 0 {
			v.bar.SetCurrent(v.total)
		}
		v.bar.Abort(false)
		v.p.Wait()
	}
}
