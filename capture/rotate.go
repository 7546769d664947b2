package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/herd-replay/herd/tape"
)

// Rotation says when a Rotator starts its next file. Zero fields never
// rotate.
type Rotation struct {
	Size  int64         // bytes written to the current file
	Every time.Duration // packet time since the current file's first exchange
	// Keep and KeepSize bound the closed files kept on disk: after each
	// rotation the oldest are deleted until at most Keep files, and at
	// most KeepSize bytes, remain, the file being written included (it is
	// never deleted). Zero keeps everything.
	Keep     int
	KeepSize int64
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

	w          *tape.Writer
	start      int64 // ReqStart of the current file's first exchange
	base       tape.Stats
	sampleNote string // why the sampling rate is what it is, once changed

	// What another goroutine may read (Info) while the capture writes.
	mu      sync.Mutex
	files   []string // closed and current, deleted ones excepted
	sizes   []int64  // of files, the current one's 0 until it is closed
	opened  int      // files created so far
	deleted int      // files deleted by the retention rule
	written int64    // bytes of the closed files, deleted ones included
	current int64    // bytes of the current file so far
}

// RotatorInfo is what a Rotator has done so far.
type RotatorInfo struct {
	Opened  int   // tape files created, the current one included
	Deleted int   // closed files deleted by Rotation.Keep or KeepSize
	Bytes   int64 // bytes written to tape files, deleted ones included
	Current string
}

// Info returns what the rotator has done so far. It is safe to call from
// any goroutine.
func (r *Rotator) Info() RotatorInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := RotatorInfo{Opened: r.opened, Deleted: r.deleted, Bytes: r.written + r.current}
	if r.w != nil && len(r.files) > 0 {
		in.Current = r.files[len(r.files)-1]
	}
	return in
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
	n := r.opened + 1
	name := r.name(n)
	meta := r.meta
	if r.rotating() {
		meta.Notes = append(append([]string(nil), meta.Notes...), fmt.Sprintf("file %d of a rotated capture", n))
	}
	if r.sampleNote != "" {
		meta.Notes = append(meta.Notes, r.sampleNote)
	}
	w, err := tape.Create(name, meta, r.wopt)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.w, r.start = w, 0
	r.files = append(r.files, name)
	r.sizes = append(r.sizes, 0)
	r.opened = n
	r.current = 0
	r.mu.Unlock()
	return nil
}

// retain deletes the oldest closed files beyond Rotation.Keep and
// KeepSize. The newest file, being written or just closed, is never
// deleted.
func (r *Rotator) retain() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := r.current // the file being written, so far
	for _, s := range r.sizes {
		total += s
	}
	for len(r.files) > 1 {
		over := (r.rot.Keep > 0 && len(r.files) > r.rot.Keep) || (r.rot.KeepSize > 0 && total > r.rot.KeepSize)
		if !over {
			return nil
		}
		if err := os.Remove(r.files[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("retention: %w", err)
		}
		total -= r.sizes[0]
		r.files, r.sizes = r.files[1:], r.sizes[1:]
		r.deleted++
	}
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
	if err := r.w.Write(e); err != nil {
		return err
	}
	r.mu.Lock()
	r.current = r.w.Size()
	r.mu.Unlock()
	return nil
}

func (r *Rotator) due(ts int64) bool {
	return (r.rot.Size > 0 && r.w.Size() >= r.rot.Size) ||
		(r.rot.Every > 0 && ts-r.start >= int64(r.rot.Every))
}

// next closes the current file with its share of the counters, opens the
// next one and applies the retention rule.
func (r *Rotator) next() error {
	if err := r.closeCurrent(); err != nil {
		return err
	}
	if err := r.open(); err != nil {
		return err
	}
	return r.retain()
}

// closeCurrent closes the file being written with its share of the
// counters so far.
func (r *Rotator) closeCurrent() error {
	if r.stats != nil {
		cur := r.stats()
		r.w.SetStats(statsDelta(cur, r.base))
		r.base = cur
	}
	size := r.w.Size()
	err := r.w.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	name := r.files[len(r.files)-1]
	if fi, serr := os.Stat(name); serr == nil {
		size = fi.Size() // with the index and trailer Close wrote
	}
	r.w = nil
	r.written += size
	r.current = 0
	r.sizes[len(r.sizes)-1] = size
	return err
}

// SetSamplePct implements SampleSink: a change of the sampling rate starts
// a new file, so that each file's metadata states the one rate its
// connections were chosen at (a connection already recorded goes on in
// the new file).
func (r *Rotator) SetSamplePct(pct float64, why string) error {
	if r.w == nil {
		return errors.New("tape rotator closed")
	}
	if !r.rotating() {
		return fmt.Errorf("the sampling rate changed to %g%% (%s), and a tape states one rate: rotate files to let it change", pct, why)
	}
	r.meta.Source.SamplePct = pct
	r.sampleNote = fmt.Sprintf("sampling set to %g%% of connections: %s", pct, why)
	return r.next()
}

// Size returns the bytes written over all files, the current one's
// buffered records included.
func (r *Rotator) Size() int64 {
	if r.w == nil {
		return r.written
	}
	return r.written + r.w.Size()
}

// Files lists the files written so far that are still there (retention
// deletes the oldest).
func (r *Rotator) Files() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.files...)
}

// Close stores the last file's share of final (the capture's counters at
// the end) and closes it.
func (r *Rotator) Close(final tape.Stats) error {
	if r.w == nil {
		return nil
	}
	r.stats = func() tape.Stats { return final }
	if err := r.closeCurrent(); err != nil {
		return err
	}
	if r.rotating() {
		return r.retain()
	}
	return nil
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
