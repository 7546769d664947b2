// Command genpcap writes a large synthetic capture of keep-alive HTTP/1.1
// traffic for the capture benchmark (bench/capture.sh): many concurrent
// connections, each carrying a run of GET and POST requests answered with
// bodies of a few to tens of kilobytes, in MSS-sized segments with ACKs.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

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

func generate(path string, limit int64, conns, perConn int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pcapgen.KeepAlive(f, limit, conns, perConn); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
