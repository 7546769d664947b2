package capture

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/herd-replay/herd/tape"
)

// Rotation says when a Rotator starts its next file. Zero fields never
// rotate.
type Rotation struct {
	Size  int64         // bytes written to the current file
	Every time.Duration // packet time since the current file's first exchange
}

// Rotator is a Sink that writes tape files, starting a new one when the
// current one reaches a size or spans a duration. Without rotation it
// writes exactly the path it was given; with rotation, OUT.tape becomes
// OUT-0001.tape, OUT-0002.tape ... Each file is a complete tape whose
// counters (STAT block) are that file's share of the capture's: the
// counters of all files add up to the capture's.
type Rotator struct {
	path  string
	meta  tape.Meta
	wopt  tape.WriterOptions
	rot   Rotation
	stats func() tape.Stats

	w       *tape.Writer
	files   []string // closed and current
	start   int64    // ReqStart of the current file's first exchange
	base    tape.Stats
	written int64 // bytes of the closed files
}

// NewRotator creates the first tape file.
func NewRotator(path string, meta tape.Meta, wopt tape.WriterOptions, rot Rotation) (*Rotator, error) {
	r := &Rotator{path: path, meta: meta, wopt: wopt, rot: rot}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// BindStats implements StatsSink.
func (r *Rotator) BindStats(f func() tape.Stats) { r.stats = f }

func (r *Rotator) rotating() bool { return r.rot.Size > 0 || r.rot.Every > 0 }

// name returns the path of file n (from 1).
func (r *Rotator) name(n int) string {
	if !r.rotating() {
		return r.path
	}
	ext := filepath.Ext(r.path)
	return fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(r.path, ext), n, ext)
}

func (r *Rotator) open() error {
	n := len(r.files) + 1
	name := r.name(n)
	meta := r.meta
	if r.rotating() {
		meta.Notes = append(append([]string(nil), meta.Notes...), fmt.Sprintf("file %d of a rotated capture", n))
	}
	w, err := tape.Create(name, meta, r.wopt)
	if err != nil {
		return err
	}
	r.w, r.start = w, 0
	r.files = append(r.files, name)
	return nil
}

// Write implements Sink.
func (r *Rotator) Write(e *tape.Exchange) error {
	if r.w == nil {
		return errors.New("tape rotator closed")
	}
	if r.start != 0 && r.due(e.ReqStart) {
		if err := r.next(); err != nil {
			return err
		}
	}
	if r.start == 0 {
		r.start = e.ReqStart
	}
	return r.w.Write(e)
}

func (r *Rotator) due(ts int64) bool {
	return (r.rot.Size > 0 && r.w.Size() >= r.rot.Size) ||
		(r.rot.Every > 0 && ts-r.start >= int64(r.rot.Every))
}

// next closes the current file with its share of the counters and opens
// the next one.
func (r *Rotator) next() error {
	if r.stats != nil {
		cur := r.stats()
		r.w.SetStats(statsDelta(cur, r.base))
		r.base = cur
	}
	size := r.w.Size()
	if err := r.w.Close(); err != nil {
		r.w = nil
		return err
	}
	r.written += size
	return r.open()
}

// Size returns the bytes written over all files, the current one's
// buffered records included.
func (r *Rotator) Size() int64 {
	if r.w == nil {
		return r.written
	}
	return r.written + r.w.Size()
}

// Files lists the files written so far.
func (r *Rotator) Files() []string { return append([]string(nil), r.files...) }

// Close stores the last file's share of final (the capture's counters at
// the end) and closes it.
func (r *Rotator) Close(final tape.Stats) error {
	if r.w == nil {
		return nil
	}
	r.w.SetStats(statsDelta(final, r.base))
	err := r.w.Close()
	r.written += r.w.Size()
	r.w = nil
	return err
}

// statsDelta is cur minus base, counter by counter, without zeros.
func statsDelta(cur, base tape.Stats) tape.Stats {
	sub := func(c, b map[string]int64) map[string]int64 {
		out := make(map[string]int64, len(c))
		for k, v := range c {
			if d := v - b[k]; d != 0 {
				out[k] = d
			}
		}
		return out
	}
	return tape.Stats{Counters: sub(cur.Counters, base.Counters), Discarded: sub(cur.Discarded, base.Discarded)}
}
