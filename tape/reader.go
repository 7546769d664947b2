package tape

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// reasonPayloadCRC marks damage confined to a payload: the block header was
// verified, so its length can be trusted to skip to the next block.
const reasonPayloadCRC = "payload checksum mismatch"

// ChunkInfo locates one chunk of records.
type ChunkInfo struct {
	Offset int64 // offset of the chunk's block header
	Count  int   // records in it
	First  int64 // smallest request start, Unix ns
	Last   int64 // largest request start, Unix ns
}

// Reader reads a tape. Next walks every record in file order; Chunks,
// ReadChunk and Window give random access through the index. Methods other
// than Next may be called concurrently.
type Reader struct {
	ra   io.ReaderAt
	size int64
	file *os.File

	meta    Meta
	metaErr error // reported once by Next
	metaBad error // the damage to META, kept for MetaErr
	stats   *Stats

	indexed bool
	chunks  []ChunkInfo // from the index, when there is one
	rates   *Rates      // from the index, when it stored them

	cur cursor

	mu     sync.Mutex
	damage []error
}

// Open opens the tape at path.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open tape: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open tape: %w", err)
	}
	r, err := NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open tape %q: %w", path, err)
	}
	r.file = f
	return r, nil
}

// NewReader reads a tape of the given size from ra.
func NewReader(ra io.ReaderAt, size int64) (*Reader, error) {
	r := &Reader{ra: ra, size: size}
	var h [fileHeaderSize]byte
	if size < fileHeaderSize {
		if size >= int64(len(fileMagic)) {
			if _, err := ra.ReadAt(h[:len(fileMagic)], 0); err != nil {
				return nil, err
			}
			if !bytes.Equal(h[:len(fileMagic)], fileMagic[:]) {
				return nil, ErrNotTape
			}
		}
		return nil, &TruncatedError{Offset: 0, Size: size}
	}
	if _, err := ra.ReadAt(h[:], 0); err != nil {
		return nil, err
	}
	if !bytes.Equal(h[:8], fileMagic[:]) {
		return nil, ErrNotTape
	}
	if binary.LittleEndian.Uint32(h[12:]) != crc(h[:12]) {
		return nil, &CorruptError{Offset: 0, Reason: "file header checksum mismatch"}
	}
	v, compat := binary.LittleEndian.Uint16(h[8:]), binary.LittleEndian.Uint16(h[10:])
	if !readable(v, compat, MinVersion, MaxVersion) {
		return nil, &UnsupportedVersionError{Version: v, Compat: compat}
	}
	r.cur = cursor{r: r, off: fileHeaderSize}
	r.readMeta()
	if r.metaErr != nil {
		r.metaBad = r.metaErr
		r.noteDamage(fmt.Errorf("metadata block: %w", r.metaErr))
	}
	r.readIndex()
	return r, nil
}

// readable reports whether a reader of format versions lo..hi reads a file
// of version v whose oldest able reader is compat: its own version is one
// the reader knows, or the file declares that such a reader can read it.
func readable(v, compat, lo, hi uint16) bool {
	return (v >= lo && v <= hi) || (compat >= lo && compat <= hi)
}

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}

// Meta returns the tape's metadata. When its block was damaged, Meta is
// the zero value and MetaErr says so: a caller must not present the zero
// value's defaults (redaction off, no source) as facts about the tape.
func (r *Reader) Meta() Meta { return r.meta }

// MetaErr returns the damage that made the metadata unreadable, or nil.
func (r *Reader) MetaErr() error { return r.metaBad }

// Stats returns the capture counters, present when the tape was closed
// cleanly.
func (r *Reader) Stats() (Stats, bool) {
	if r.stats == nil {
		return Stats{}, false
	}
	return *r.stats, true
}

// Indexed reports whether the tape has a valid index, which means that its
// writer closed it cleanly.
func (r *Reader) Indexed() bool { return r.indexed }

// Size is the size of the tape file in bytes.
func (r *Reader) Size() int64 { return r.size }

// Damage returns the damage found so far by Chunks, ReadChunk, Window and
// Rates, which skip damaged chunks and keep going.
func (r *Reader) Damage() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.damage...)
}

func (r *Reader) noteDamage(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.damage {
		if d.Error() == err.Error() {
			return
		}
	}
	r.damage = append(r.damage, err)
}

// readMeta reads the META block and places the cursor after it. Damage to
// it is kept for the first call to Next, which then goes on with the chunks.
func (r *Reader) readMeta() {
	const off = fileHeaderSize
	h, payload, err := r.readBlock(off)
	var te *TruncatedError
	var ce *CorruptError
	switch {
	case errors.As(err, &te):
		return // the cursor reports the torn block
	case errors.As(err, &ce) && ce.Reason == reasonPayloadCRC:
		r.metaErr = err
		r.cur.off = off + blockHeaderSize + int64(h.payloadLen)
	case err != nil:
		r.metaErr = err
		r.cur.off = r.resync(off + 1)
	case h.typ != typeMeta:
		// Leave the cursor here: the block may be a chunk worth reading.
		r.metaErr = &CorruptError{Offset: off, Reason: "first block is not META"}
	default:
		r.metaErr = r.decodeJSON(off, h, payload, &r.meta)
		r.cur.off = off + blockHeaderSize + int64(h.payloadLen)
	}
}

func (r *Reader) decodeJSON(off int64, h blockHeader, payload []byte, v any) error {
	raw, reason := decompress(payload, h.rawLen)
	if reason != "" {
		return &CorruptError{Offset: off, Reason: reason}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &CorruptError{Offset: off, Reason: "json: " + err.Error()}
	}
	return nil
}

// readBlock reads and verifies the block at off: header bounds and both
// checksums. Payload damage is a CorruptError; running out of file is a
// TruncatedError.
func (r *Reader) readBlock(off int64) (blockHeader, []byte, error) {
	h, err := r.readHeader(off)
	if err != nil {
		return h, nil, err
	}
	payload, err := r.readPayload(off, h)
	return h, payload, err
}

// readPayload reads the payload of the block whose verified header h is at
// off, and checks its CRC.
func (r *Reader) readPayload(off int64, h blockHeader) ([]byte, error) {
	payload := make([]byte, h.payloadLen)
	if _, err := r.ra.ReadAt(payload, off+blockHeaderSize); err != nil {
		return nil, fmt.Errorf("read tape at %d: %w", off, err)
	}
	if crc(payload) != h.payloadCRC {
		return nil, &CorruptError{Offset: off, Reason: reasonPayloadCRC}
	}
	return payload, nil
}

// blockAt is one step of a walk over the blocks: the verified header of the
// block at off and the offset of the next one. At the end of the blocks (the
// end of the file, or the trailer) it returns io.EOF; for a block the file
// ends inside, a *TruncatedError; for a damaged header, a *CorruptError with
// next set past the damage, where the next intact header is.
func (r *Reader) blockAt(off int64) (h blockHeader, next int64, err error) {
	if off >= r.size {
		return h, off, io.EOF
	}
	if _, ok := r.isTrailer(off); ok {
		return h, off, io.EOF
	}
	h, err = r.readHeader(off)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		return h, r.resync(off + 1), err
	case err != nil:
		return h, off, err
	}
	return h, off + blockHeaderSize + int64(h.payloadLen), nil
}

// final reports whether a walk over the blocks ends at err.
func final(err error) bool {
	var te *TruncatedError
	return err == io.EOF || errors.As(err, &te)
}

func (r *Reader) readHeader(off int64) (blockHeader, error) {
	if r.size-off < blockHeaderSize {
		return blockHeader{}, &TruncatedError{Offset: off, Size: r.size}
	}
	var b [blockHeaderSize]byte
	if _, err := r.ra.ReadAt(b[:], off); err != nil {
		return blockHeader{}, fmt.Errorf("read tape at %d: %w", off, err)
	}
	h, reason := parseBlockHeader(b[:])
	if reason != "" {
		return h, &CorruptError{Offset: off, Reason: reason}
	}
	if r.size-off-blockHeaderSize < int64(h.payloadLen) {
		return h, &TruncatedError{Offset: off, Size: r.size}
	}
	return h, nil
}

// isTrailer reports whether a valid trailer starts at off and ends the file.
func (r *Reader) isTrailer(off int64) (int64, bool) {
	if r.size-off != trailerSize {
		return 0, false
	}
	var t [trailerSize]byte
	if _, err := r.ra.ReadAt(t[:], off); err != nil {
		return 0, false
	}
	if !bytes.Equal(t[:8], trailerMagic[:]) || binary.LittleEndian.Uint32(t[16:]) != crc(t[:16]) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(t[8:])), true
}

// readIndex loads the index if the file ends with a valid trailer; any
// problem leaves the reader in scanning mode, which reads the same records.
func (r *Reader) readIndex() {
	if r.size < fileHeaderSize+trailerSize {
		return
	}
	indexOff, ok := r.isTrailer(r.size - trailerSize)
	if !ok || indexOff < fileHeaderSize || indexOff > r.size-trailerSize-blockHeaderSize {
		return
	}
	h, payload, err := r.readBlock(indexOff)
	if err != nil || h.typ != typeIndex {
		return
	}
	raw, reason := decompress(payload, h.rawLen)
	if reason != "" {
		return
	}
	chunks, statOff, rates, ok := parseIndex(raw, indexOff)
	if !ok {
		return
	}
	if statOff >= 0 {
		sh, sp, err := r.readBlock(statOff)
		if err != nil || sh.typ != typeStat {
			return
		}
		var st Stats
		if r.decodeJSON(statOff, sh, sp, &st) != nil {
			return
		}
		r.stats = &st
	}
	r.indexed, r.chunks, r.rates = true, chunks, rates
}

func parseIndex(raw []byte, indexOff int64) (chunks []ChunkInfo, statOff int64, rates *Rates, ok bool) {
	d := decoder{s: string(raw), end: len(raw)}
	n := d.bounded("chunks", MaxIndexChunks)
	if d.err != nil || n > uint64(len(raw))/4 {
		return nil, 0, nil, false
	}
	chunks = make([]ChunkInfo, n)
	var off, first int64
	for i := range chunks {
		off += int64(d.bounded("offset", uint64(indexOff)))
		count := d.bounded("count", MaxChunkRecords)
		first += d.varint("first")
		span := d.bounded("span", 1<<62)
		if d.err != nil || off >= indexOff || count == 0 {
			return nil, 0, nil, false
		}
		chunks[i] = ChunkInfo{Offset: off, Count: int(count), First: first, Last: first + int64(span)}
	}
	statOff = int64(d.bounded("stat", uint64(indexOff))) - 1
	ns := d.bounded("seconds", MaxIndexSeconds+1)
	if d.err != nil || ns > uint64(d.end-d.pos)/2+1 {
		return nil, 0, nil, false
	}
	if ns > 0 {
		rates = &Rates{Seconds: make([]int64, ns-1), Counts: make([]int64, ns-1)}
		var sec int64
		for i := range rates.Seconds {
			sec += d.varint("second")
			rates.Seconds[i] = sec
			rates.Counts[i] = int64(d.bounded("count", 1<<32))
		}
	}
	if d.err != nil || d.pos != d.end {
		return nil, 0, nil, false
	}
	return chunks, statOff, rates, true
}

// decodeChunk verifies and decodes the records of a CHNK block.
func decodeChunk(off int64, h blockHeader, payload []byte) ([]Exchange, error) {
	raw, reason := decompress(payload, h.rawLen)
	if reason != "" {
		return nil, &CorruptError{Offset: off, Reason: reason}
	}
	d := decoder{s: string(raw), b: raw, end: len(raw)}
	base := d.varint("base")
	out := make([]Exchange, h.count)
	for i := range out {
		n := d.bounded("record length", MaxRecord)
		if d.err == nil && (n == 0 || n > uint64(len(raw)-d.pos)) {
			d.fail("record length")
		}
		if d.err != nil {
			return nil, &CorruptError{Offset: off, Reason: d.err.Error()}
		}
		end := d.pos + int(n)
		rd := decoder{s: d.s, b: d.b, pos: d.pos, end: end}
		if err := rd.record(&out[i], base); err != nil {
			return nil, &CorruptError{Offset: off, Reason: fmt.Sprintf("record %d: %v", i, err)}
		}
		if out[i].ReqStart < h.first || out[i].ReqStart > h.last {
			return nil, &CorruptError{Offset: off, Reason: fmt.Sprintf("record %d starts outside the chunk's time range", i)}
		}
		d.pos = end
	}
	if d.pos != len(raw) {
		return nil, &CorruptError{Offset: off, Reason: "bytes after the last record"}
	}
	return out, nil
}

// Next returns the next record in file order. At the end it returns io.EOF
// or, for a file that ends inside a block, a *TruncatedError. A damaged
// block yields a *CorruptError; calling Next again continues after it.
// The returned exchange is valid until the caller drops it; its byte slices
// must not be modified.
func (r *Reader) Next(ctx context.Context) (*Exchange, error) {
	if r.metaErr != nil {
		err := r.metaErr
		r.metaErr = nil
		return nil, err
	}
	return r.cur.next(ctx)
}

// cursor walks blocks in file order.
type cursor struct {
	r       *Reader
	off     int64
	pending []Exchange
	final   error // io.EOF or *TruncatedError once reached
}

func (c *cursor) next(ctx context.Context) (*Exchange, error) {
	for len(c.pending) == 0 {
		if c.final != nil {
			return nil, c.final
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.advance(); err != nil {
			return nil, err
		}
	}
	e := &c.pending[0]
	c.pending = c.pending[1:]
	return e, nil
}

// advance reads the block at c.off. It fills c.pending from a chunk, sets
// c.final at the end, or returns the damage it found (after moving past it).
func (c *cursor) advance() error {
	off := c.off
	h, next, err := c.r.blockAt(off)
	var ce *CorruptError
	switch {
	case final(err):
		c.final = err
		return nil
	case errors.As(err, &ce):
		c.off = next
		return err
	case err != nil:
		return err // I/O: try the same block again
	}
	c.off = next
	if h.typ != typeChunk {
		return nil // META, STAT and INDX were read at open; unknown types are skipped
	}
	recs, err := c.r.chunkAt(off, h)
	if err != nil {
		return err
	}
	c.pending = recs
	return nil
}

// chunkAt reads, verifies and decodes the chunk whose header h is at off.
func (r *Reader) chunkAt(off int64, h blockHeader) ([]Exchange, error) {
	payload, err := r.readPayload(off, h)
	if err != nil {
		return nil, err
	}
	return decodeChunk(off, h, payload)
}

// resync finds the next offset at or after from that holds a known block
// type followed by a valid header checksum, or the end of the file.
func (r *Reader) resync(from int64) int64 {
	window := min(int64(1<<20), max(r.size-from, 0))
	buf := make([]byte, window+blockHeaderSize)
	for off := from; off < r.size; off += window {
		n, err := r.ra.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return r.size
		}
		for i := 0; i+4 <= n && int64(i) < window; i++ {
			if !knownType(buf[i : i+4]) {
				continue
			}
			if i+blockHeaderSize > n {
				// A header cut by the end of the file: let the caller find
				// it torn.
				return off + int64(i)
			}
			if _, reason := parseBlockHeader(buf[i : i+blockHeaderSize]); reason == "" {
				return off + int64(i)
			}
		}
		if n < len(buf) {
			break
		}
	}
	if t := r.size - trailerSize; t >= from {
		if _, ok := r.isTrailer(t); ok {
			return t
		}
	}
	return r.size
}

// Chunks lists the tape's chunks, from the index or, without one, by
// walking block headers (payloads are verified later, by ReadChunk).
func (r *Reader) Chunks(ctx context.Context) ([]ChunkInfo, error) {
	if r.indexed {
		return r.chunks, nil
	}
	var out []ChunkInfo
	for off := int64(fileHeaderSize); ; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, next, err := r.blockAt(off)
		var ce *CorruptError
		switch {
		case err == io.EOF:
			return out, nil
		case final(err):
			r.noteDamage(err)
			return out, nil
		case errors.As(err, &ce):
			r.noteDamage(err)
			off = next
			continue
		case err != nil:
			return nil, err
		}
		if h.typ == typeChunk {
			out = append(out, ChunkInfo{Offset: off, Count: int(h.count), First: h.first, Last: h.last})
		}
		off = next
	}
}

// ReadChunk reads and verifies one chunk.
func (r *Reader) ReadChunk(ctx context.Context, ci ChunkInfo) ([]Exchange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := r.readHeader(ci.Offset)
	if err == nil && h.typ != typeChunk {
		err = &CorruptError{Offset: ci.Offset, Reason: "index points at a block that is not a chunk"}
	}
	if err != nil {
		return nil, err
	}
	return r.chunkAt(ci.Offset, h)
}

// Window calls fn for every readable record whose request started in
// [from, to) (Unix ns), in file order, reading only the chunks whose time
// range overlaps it. Damaged chunks are skipped and recorded in Damage.
func (r *Reader) Window(ctx context.Context, from, to int64, fn func(*Exchange) error) error {
	chunks, err := r.Chunks(ctx)
	if err != nil {
		return err
	}
	for _, ci := range chunks {
		if ci.Last < from || ci.First >= to {
			continue
		}
		recs, err := r.ReadChunk(ctx, ci)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ce *CorruptError
			var te *TruncatedError
			if errors.As(err, &ce) || errors.As(err, &te) {
				r.noteDamage(err)
				continue
			}
			return err
		}
		for i := range recs {
			if recs[i].ReqStart >= from && recs[i].ReqStart < to {
				if err := fn(&recs[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// All calls fn for every readable record, like Window over all time.
func (r *Reader) All(ctx context.Context, fn func(*Exchange) error) error {
	return r.Window(ctx, -1<<63, 1<<63-1, fn)
}

// Rates returns the number of requests started in each second, from the
// index or, without one, by reading every chunk.
func (r *Reader) Rates(ctx context.Context) (Rates, error) {
	if r.rates != nil {
		return *r.rates, nil
	}
	counts := make(map[int64]int64)
	err := r.All(ctx, func(e *Exchange) error {
		counts[UnixSecond(e.ReqStart)]++
		return nil
	})
	if err != nil {
		return Rates{}, err
	}
	return ratesFromMap(counts), nil
}
