package tape

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/herd-replay/herd/internal/version"
)

// WriterOptions tune when chunks are cut. The zero value is the default.
//
// A chunk is the unit of loss: one flipped byte costs the chunk it falls
// in. So chunks are cut by size and by recorded time as well as by count
// and by wall-clock time: a capture of a file, written in well under a
// second, still spans many chunks when it is large enough to matter.
type WriterOptions struct {
	ChunkRecords  int           // cut a chunk after this many records (4096)
	ChunkBytes    int           // or this many uncompressed bytes (256 KiB)
	ChunkSpan     time.Duration // or when its requests span this much recorded time (10 s)
	FlushInterval time.Duration // or this long after a record was buffered (1 s; negative: never)
	NoSync        bool          // skip fsync after each chunk (tests, benchmarks)
	// NoReplace keeps a file that appeared at the tape's name while it was
	// written: Close then leaves the tape as NAME.partial and says so,
	// instead of renaming over it.
	NoReplace bool
}

// Default chunk bounds.
const (
	DefaultChunkRecords = 4096
	DefaultChunkBytes   = 256 << 10
	DefaultChunkSpan    = 10 * time.Second
)

func (o *WriterOptions) defaults() {
	if o.ChunkRecords <= 0 || o.ChunkRecords > MaxChunkRecords {
		o.ChunkRecords = DefaultChunkRecords
	}
	if o.ChunkBytes <= 0 || o.ChunkBytes > MaxRaw-MaxRecord-16 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.ChunkSpan <= 0 {
		o.ChunkSpan = DefaultChunkSpan
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = time.Second
	}
}

// Writer appends exchanges to a tape. Methods are safe for concurrent use;
// a background flush cuts a chunk at least every FlushInterval so that a
// crash loses at most that much. Writes go to local storage and never wait
// on the network, so they take no context: a caller that is cancelled
// simply calls Close.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	f    *os.File // set when the writer owns a file
	path string   // final name; the file is path+".partial" until Close
	opt  WriterOptions

	off     int64  // bytes written so far
	raw     []byte // chunk being built: base timestamp, then records
	count   int
	base    int64 // request start of the chunk's first record
	first   int64 // smallest request start in the chunk
	last    int64 // largest
	scratch []byte

	chunks  []chunkInfo
	seconds map[int64]uint32
	stats   *Stats
	err     error // sticky: once a write failed, the tape is not extended

	stop chan struct{}
	done chan struct{}
}

type chunkInfo struct {
	off         int64
	count       uint32
	first, last int64
}

// PartialSuffix is appended to a tape's name while it is being written.
const PartialSuffix = ".partial"

// Create starts a tape at path: it writes path+".partial" with mode 0600
// and renames it to path on Close.
func Create(path string, meta Meta, opt WriterOptions) (*Writer, error) {
	f, err := os.OpenFile(path+PartialSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create tape: %w", err)
	}
	w, err := newWriter(f, meta, opt)
	if err != nil {
		f.Close()
		os.Remove(path + PartialSuffix)
		return nil, err
	}
	w.f, w.path = f, path
	return w, nil
}

// NewWriter writes a tape to w. Close does not close w.
func NewWriter(w io.Writer, meta Meta, opt WriterOptions) (*Writer, error) {
	return newWriter(w, meta, opt)
}

func newWriter(out io.Writer, meta Meta, opt WriterOptions) (*Writer, error) {
	opt.defaults()
	meta.FormatVersion = MaxVersion
	if meta.HerdVersion == "" {
		meta.HerdVersion = version.String()
	}
	if meta.HerdCommit == "" {
		meta.HerdCommit = version.CommitID()
	}
	if meta.Created.IsZero() {
		meta.Created = time.Now().UTC()
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode tape metadata: %w", err)
	}
	if len(js) > MaxJSONBlock {
		return nil, fmt.Errorf("tape metadata is %d bytes, limit %d", len(js), MaxJSONBlock)
	}
	w := &Writer{w: out, opt: opt, seconds: make(map[int64]uint32)}
	if err := w.emit(appendFileHeader(nil)); err != nil {
		return nil, err
	}
	if err := w.writeBlock(blockHeader{typ: typeMeta}, js); err != nil {
		return nil, err
	}
	if opt.FlushInterval > 0 {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.flushLoop()
	}
	return w, nil
}

// flushLoop cuts a chunk every FlushInterval while records are buffered;
// Close stops it.
func (w *Writer) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(w.opt.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if w.count > 0 {
				w.flushLocked()
			}
			w.mu.Unlock()
		}
	}
}

// Write appends e. The exchange is copied; the caller may reuse it.
func (w *Writer) Write(e *Exchange) error {
	if err := validate(e); err != nil {
		return fmt.Errorf("write exchange %d/%d: %w", e.ConnID, e.Seq, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.count == 0 {
		w.base, w.first, w.last = e.ReqStart, e.ReqStart, e.ReqStart
		w.raw = binary.AppendVarint(w.raw[:0], w.base)
	}
	w.scratch = appendRecord(w.scratch[:0], e, w.base)
	if len(w.scratch) > MaxRecord {
		return fmt.Errorf("write exchange %d/%d: record is %d bytes, limit %d", e.ConnID, e.Seq, len(w.scratch), MaxRecord)
	}
	w.raw = binary.AppendUvarint(w.raw, uint64(len(w.scratch)))
	w.raw = append(w.raw, w.scratch...)
	w.count++
	w.first, w.last = min(w.first, e.ReqStart), max(w.last, e.ReqStart)
	w.seconds[UnixSecond(e.ReqStart)]++
	if w.count >= w.opt.ChunkRecords || len(w.raw) >= w.opt.ChunkBytes || w.last-w.first >= int64(w.opt.ChunkSpan) {
		return w.flushLocked()
	}
	return nil
}

// UnixSecond is the Unix second holding the nanosecond timestamp ns (the
// floor, for times before 1970 too): the seconds of Rates and Window.
func UnixSecond(ns int64) int64 {
	s := ns / 1e9
	if ns%1e9 < 0 {
		s--
	}
	return s
}

// Flush cuts a chunk of whatever is buffered and syncs it to storage.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.count == 0 {
		return nil
	}
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	h := blockHeader{typ: typeChunk, count: uint32(w.count), first: w.first, last: w.last}
	off := w.off
	if err := w.writeBlock(h, w.raw); err != nil {
		return err
	}
	w.chunks = append(w.chunks, chunkInfo{off: off, count: h.count, first: h.first, last: h.last})
	w.raw, w.count = w.raw[:0], 0
	if w.f != nil && !w.opt.NoSync {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("sync tape: %w", err)
			return w.err
		}
	}
	return nil
}

// writeBlock compresses raw and writes it as one block of type h.typ.
func (w *Writer) writeBlock(h blockHeader, raw []byte) error {
	buf := make([]byte, blockHeaderSize, blockHeaderSize+len(raw)/2+64)
	buf = zstdEncoder().EncodeAll(raw, buf)
	payload := buf[blockHeaderSize:]
	h.payloadLen, h.rawLen, h.payloadCRC = uint32(len(payload)), uint32(len(raw)), crc(payload)
	h.append(buf[:0])
	return w.emit(buf)
}

func (w *Writer) emit(b []byte) error {
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write tape: %w", err)
	}
	return w.err
}

// SetStats records the capture's counters; Close stores them in the tape.
func (w *Writer) SetStats(s Stats) {
	w.mu.Lock()
	w.stats = &s
	w.mu.Unlock()
}

// Size returns the bytes written so far plus those buffered (uncompressed).
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.off + int64(len(w.raw))
}

// publish gives the finished NAME.partial its name. With NoReplace it
// links rather than renames, so that an existing NAME is never replaced
// (a filesystem without hard links falls back to checking, then renaming).
func (w *Writer) publish() error {
	partial := w.path + PartialSuffix
	if !w.opt.NoReplace {
		if err := os.Rename(partial, w.path); err != nil {
			return fmt.Errorf("rename tape: %w", err)
		}
		return nil
	}
	err := os.Link(partial, w.path)
	switch {
	case err == nil:
		return os.Remove(partial)
	case errors.Is(err, os.ErrExist):
		return fmt.Errorf("%s appeared while the tape was written and is kept: the tape is %s (complete)", w.path, partial)
	}
	if _, serr := os.Lstat(w.path); serr == nil {
		return fmt.Errorf("%s appeared while the tape was written and is kept: the tape is %s (complete)", w.path, partial)
	}
	if rerr := os.Rename(partial, w.path); rerr != nil {
		return fmt.Errorf("rename tape: %w", rerr)
	}
	return nil
}

// Close flushes buffered records, writes the counters, the index and the
// trailer, syncs, and renames NAME.partial to NAME. After a failed write the
// partial file is left in place: every chunk in it is readable.
func (w *Writer) Close() error {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.finishLocked()
	if w.f != nil {
		if cerr := w.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close tape: %w", cerr)
		}
		if err == nil {
			err = w.publish()
		}
		w.f = nil
	}
	if w.err == nil {
		w.err = errors.New("tape writer closed")
	}
	return err
}

func (w *Writer) finishLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.count > 0 {
		if err := w.flushLocked(); err != nil {
			return err
		}
	}
	var statOff int64 = -1
	if w.stats != nil {
		js, err := json.Marshal(w.stats)
		if err != nil {
			return fmt.Errorf("encode tape stats: %w", err)
		}
		if len(js) <= MaxJSONBlock {
			statOff = w.off
			if err := w.writeBlock(blockHeader{typ: typeStat}, js); err != nil {
				return err
			}
		}
	}
	indexOff := w.off
	if err := w.writeBlock(blockHeader{typ: typeIndex}, w.indexPayload(statOff)); err != nil {
		return err
	}
	t := append([]byte(nil), trailerMagic[:]...)
	t = binary.LittleEndian.AppendUint64(t, uint64(indexOff))
	t = binary.LittleEndian.AppendUint32(t, crc(t))
	if err := w.emit(t); err != nil {
		return err
	}
	if w.f != nil && !w.opt.NoSync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("sync tape: %w", err)
		}
	}
	return nil
}

func (w *Writer) indexPayload(statOff int64) []byte {
	b := binary.AppendUvarint(nil, uint64(len(w.chunks)))
	var prevOff, prevFirst int64
	for _, c := range w.chunks {
		b = binary.AppendUvarint(b, uint64(c.off-prevOff))
		b = binary.AppendUvarint(b, uint64(c.count))
		b = binary.AppendVarint(b, c.first-prevFirst)
		b = binary.AppendUvarint(b, uint64(c.last-c.first))
		prevOff, prevFirst = c.off, c.first
	}
	b = binary.AppendUvarint(b, uint64(statOff+1))
	secs := make([]int64, 0, len(w.seconds))
	for s := range w.seconds {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	if len(secs) > MaxIndexSeconds {
		// Too many distinct seconds to index (a capture spanning months):
		// say so with 0, and readers count them by scanning.
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(secs))+1)
	var prev int64
	for _, s := range secs {
		b = binary.AppendVarint(b, s-prev)
		b = binary.AppendUvarint(b, uint64(w.seconds[s]))
		prev = s
	}
	return b
}

// WriteFile writes exchanges to a new tape at path, closed cleanly.
func WriteFile(path string, meta Meta, opt WriterOptions, exchanges []Exchange) error {
	w, err := Create(path, meta, opt)
	if err != nil {
		return err
	}
	for i := range exchanges {
		if err := w.Write(&exchanges[i]); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}
