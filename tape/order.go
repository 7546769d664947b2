package tape

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"sort"
)

// Ordered reads the records of a time window in order of request start
// (then connection id, then sequence), the order in which a replay needs
// them, while holding in memory only the chunks whose time ranges overlap
// the one being read. Records are stored roughly in the order they
// completed, so a chunk may hold a request that started long before its
// other records (a slow response); such a chunk is read when its earliest
// request is due, and its records are handed out as their turn comes.
type Ordered struct {
	ctx      context.Context
	r        *Reader
	from, to int64
	chunks   []ChunkInfo // overlapping the window, by First
	next     int         // the next chunk to read
	pending  recordHeap
	err      error
}

// Ordered starts reading the records whose request started in [from, to)
// (Unix ns) in start order. Damaged chunks are skipped and recorded in
// Damage, as Window does.
func (r *Reader) Ordered(ctx context.Context, from, to int64) (*Ordered, error) {
	all, err := r.Chunks(ctx)
	if err != nil {
		return nil, err
	}
	o := &Ordered{ctx: ctx, r: r, from: from, to: to}
	for _, ci := range all {
		if ci.Last >= from && ci.First < to {
			o.chunks = append(o.chunks, ci)
		}
	}
	sort.SliceStable(o.chunks, func(i, j int) bool { return o.chunks[i].First < o.chunks[j].First })
	return o, nil
}

// Next returns the next record, or io.EOF after the last. The record is
// valid until the caller drops it; its byte slices must not be modified.
func (o *Ordered) Next() (*Exchange, error) {
	for o.err == nil {
		// Every record not yet read starts at or after the next chunk's
		// First: what is pending before that is next, in order.
		limit := int64(1<<63 - 1)
		if o.next < len(o.chunks) {
			limit = o.chunks[o.next].First
		}
		if len(o.pending) > 0 && o.pending[0].ReqStart < limit {
			return heap.Pop(&o.pending).(*Exchange), nil
		}
		if o.next >= len(o.chunks) {
			o.err = io.EOF
			break
		}
		ci := o.chunks[o.next]
		o.next++
		recs, err := o.r.ReadChunk(o.ctx, ci)
		if err != nil {
			if o.ctx.Err() != nil {
				o.err = o.ctx.Err()
				break
			}
			var ce *CorruptError
			var te *TruncatedError
			if errors.As(err, &ce) || errors.As(err, &te) {
				o.r.noteDamage(err)
				continue
			}
			o.err = err
			break
		}
		for i := range recs {
			if recs[i].ReqStart >= o.from && recs[i].ReqStart < o.to {
				heap.Push(&o.pending, &recs[i])
			}
		}
	}
	return nil, o.err
}

// Held is how many records are read and not yet handed out: the overlap
// of the chunks' time ranges, which bounds what Ordered keeps in memory.
func (o *Ordered) Held() int { return len(o.pending) }

type recordHeap []*Exchange

func (h recordHeap) Len() int { return len(h) }
func (h recordHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.ReqStart != b.ReqStart {
		return a.ReqStart < b.ReqStart
	}
	if a.ConnID != b.ConnID {
		return a.ConnID < b.ConnID
	}
	return a.Seq < b.Seq
}
func (h recordHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)   { *h = append(*h, x.(*Exchange)) }
func (h *recordHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
