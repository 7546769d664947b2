package pcapgen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"
)

// Chunk is one read of a relayed connection: the bytes one side sent, as
// the relay received them, and when.
type Chunk struct {
	FromClient bool
	Data       []byte
	At         time.Duration // since the relay started
}

// Relay is a TCP relay on 127.0.0.1 that records every byte a real client
// and server exchange through it, so that a test can write the
// conversation as a capture: the bytes are exactly what real
// implementations sent (HTTP/2 frames, HPACK, TLS records), and only the
// packet framing is synthetic.
type Relay struct {
	ln    net.Listener
	to    string
	start time.Time

	mu    sync.Mutex
	conns [][]Chunk // per accepted connection, in order of reads
	wg    sync.WaitGroup
}

// NewRelay listens on 127.0.0.1 and relays every connection to the server
// at addr until Close.
func NewRelay(addr string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, to: addr, start: time.Now()}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is where clients connect.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		idx := len(r.conns)
		r.conns = append(r.conns, nil)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.relay(c, idx)
		}()
	}
}

func (r *Relay) relay(c net.Conn, idx int) {
	defer c.Close()
	s, err := net.Dial("tcp", r.to)
	if err != nil {
		return
	}
	defer s.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.copy(s, c, idx, true) }()
	go func() { defer wg.Done(); r.copy(c, s, idx, false) }()
	wg.Wait()
}

// copy forwards src to dst, recording each read before it is forwarded,
// so the record of a conversation is causal: an answer is never recorded
// before what it answers.
func (r *Relay) copy(dst, src net.Conn, idx int, fromClient bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.conns[idx] = append(r.conns[idx], Chunk{FromClient: fromClient, Data: append([]byte(nil), buf[:n]...), At: time.Since(r.start)})
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				tc.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
	}
}

// Close stops listening, waits for the relayed connections to end, and
// returns what each carried, in the order they were accepted.
func (r *Relay) Close() [][]Chunk {
	r.ln.Close()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// WriteConversation writes recorded connections as TCP connections from
// ports 40000, 40001 ... of client to server: a handshake before each
// one's first bytes, its chunks at their recorded times (in MSS-sized
// segments), and the FIN exchange after its last.
func WriteConversation(w *Writer, client, server string, conns [][]Chunk) error {
	type event struct {
		at    time.Duration
		conn  int
		chunk int // -1: handshake, len(chunks): close
	}
	var evs []event
	for i, cs := range conns {
		if len(cs) == 0 {
			continue
		}
		evs = append(evs, event{cs[0].At, i, -1}, event{cs[len(cs)-1].At, i, len(cs)})
		for j, c := range cs {
			evs = append(evs, event{c.At, i, j})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		if evs[i].conn != evs[j].conn {
			return evs[i].conn < evs[j].conn
		}
		return evs[i].chunk < evs[j].chunk
	})
	tcs := make([]*Conn, len(conns))
	var now time.Duration
	for _, ev := range evs {
		if ev.at > now {
			w.Advance(ev.at - now)
			now = ev.at
		}
		c := tcs[ev.conn]
		var err error
		switch {
		case ev.chunk < 0:
			c = w.NewConn(fmt.Sprintf("%s:%d", client, 40000+ev.conn), server, uint32(1000+ev.conn*100000), uint32(5000+ev.conn*100000))
			c.Gap = 0
			tcs[ev.conn] = c
			err = c.Handshake()
		case ev.chunk == len(conns[ev.conn]):
			err = c.Close()
		default:
			ch := conns[ev.conn][ev.chunk]
			err = c.Send(ch.FromClient, ch.Data)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
