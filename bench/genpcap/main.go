// Command genpcap writes a large synthetic capture of keep-alive HTTP/1.1
// traffic for the capture benchmark (bench/capture.sh): many concurrent
// connections, each carrying a run of GET and POST requests answered with
// bodies of a few to tens of kilobytes, in MSS-sized segments with ACKs.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/internal/pcapgen"
)

func main() {
	out := flag.String("o", "", "output pcap file")
	size := flag.String("size", "512MiB", "stop once the file is this large (MiB or GiB)")
	conns := flag.Int("conns", 64, "concurrent connections")
	perConn := flag.Int("requests", 200, "requests per connection before it is closed and replaced")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "genpcap: -o is required")
		os.Exit(2)
	}
	limit, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genpcap:", err)
		os.Exit(2)
	}
	if err := generate(*out, limit, *conns, *perConn); err != nil {
		fmt.Fprintln(os.Stderr, "genpcap:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "GiB"):
		mult, s = 1<<30, strings.TrimSuffix(s, "GiB")
	case strings.HasSuffix(s, "MiB"):
		mult, s = 1<<20, strings.TrimSuffix(s, "MiB")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

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

func generate(path string, limit int64, nconns, perConn int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cw := &countingWriter{w: bufio.NewWriterSize(f, 1<<20)}
	w, err := pcapgen.NewWriter(cw, pcapgen.Link{Type: layers.LinkTypeEthernet}, time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), 0)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 64<<10)
	for i := range body {
		body[i] = "abcdefghijklmnopqrstuvwxyz0123456789{}\":,"[rng.IntN(41)]
	}
	type state struct {
		c    *pcapgen.Conn
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
			req = pcapgen.Request("POST", "/api/orders", []string{"Content-Type: application/json", "User-Agent: bench/1.0", "Authorization: Bearer secret-token-" + strconv.Itoa(i)}, body[:200+rng.IntN(800)])
		} else {
			req = pcapgen.Request("GET", fmt.Sprintf("/api/items/%d?view=full&lang=en", id), []string{"Accept: application/json", "User-Agent: bench/1.0", "Cookie: session=" + strconv.Itoa(i)}, nil)
		}
		if err := s.c.Send(true, req); err != nil {
			return err
		}
		resp := pcapgen.Response(200, []string{"Content-Type: application/json", "Cache-Control: no-store"}, body[:1024+rng.IntN(30<<10)])
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
