package pcapgen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w *bufio.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// KeepAlive writes a capture of keep-alive HTTP/1.1 traffic of at least
// limit bytes: nconns concurrent connections, each carrying perConn
// requests (one in ten a POST with a JSON body, the rest GETs) answered
// with 1 to 31 KiB bodies, then closed and replaced. The output depends
// only on the arguments.
func KeepAlive(out io.Writer, limit int64, nconns, perConn int) error {
	cw := &countingWriter{w: bufio.NewWriterSize(out, 1<<20)}
	w, err := NewWriter(cw, Link{Type: layers.LinkTypeEthernet}, time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), 0)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 64<<10)
	for i := range body {
		body[i] = "abcdefghijklmnopqrstuvwxyz0123456789{}\":,"[rng.IntN(41)]
	}
	type state struct {
		c    *Conn
		left int
	}
	conns := make([]state, nconns)
	port := 10000
	open := func(i int) error {
		port++
		if port > 60000 {
			port = 10001
		}
		cli := fmt.Sprintf("10.1.%d.%d:%d", i/250, i%250+1, port)
		c := w.NewConn(cli, "10.9.0.1:8080", rng.Uint32(), rng.Uint32())
		c.Gap = 5 * time.Microsecond
		conns[i] = state{c: c, left: perConn}
		return c.Handshake()
	}
	for i := range conns {
		if err := open(i); err != nil {
			return err
		}
	}
	for n := 0; cw.n < limit; n++ {
		i := n % nconns
		s := &conns[i]
		var req []byte
		id := rng.IntN(100000)
		if rng.IntN(10) == 0 {
			req = Request("POST", "/api/orders", []string{"Content-Type: application/json", "User-Agent: bench/1.0", "Authorization: Bearer secret-token-" + strconv.Itoa(i)}, body[:200+rng.IntN(800)])
		} else {
			req = Request("GET", fmt.Sprintf("/api/items/%d?view=full&lang=en", id), []string{"Accept: application/json", "User-Agent: bench/1.0", "Cookie: session=" + strconv.Itoa(i)}, nil)
		}
		if err := s.c.Send(true, req); err != nil {
			return err
		}
		resp := Response(200, []string{"Content-Type: application/json", "Cache-Control: no-store"}, body[:1024+rng.IntN(30<<10)])
		if err := s.c.Send(false, resp); err != nil {
			return err
		}
		s.left--
		if s.left == 0 {
			if err := s.c.Close(); err != nil {
				return err
			}
			if err := open(i); err != nil {
				return err
			}
		}
	}
	for i := range conns {
		if err := conns[i].c.Close(); err != nil {
			return err
		}
	}
	return cw.w.Flush()
}
