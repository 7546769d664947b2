// Command genpcap writes a large synthetic capture of keep-alive HTTP/1.1
// traffic for the capture benchmark (bench/capture.sh): many concurrent
// connections, each carrying a run of GET and POST requests answered with
// bodies of a few to tens of kilobytes, in MSS-sized segments with ACKs.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/internal/units"
)

func main() {
	out := flag.String("o", "", "output pcap file")
	size := flag.String("size", "512MiB", "stop once the file is this large (e.g. 64MiB, 1GiB, 500MB)")
	conns := flag.Int("conns", 64, "concurrent connections")
	perConn := flag.Int("requests", 200, "requests per connection before it is closed and replaced")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "genpcap: -o is required")
		os.Exit(2)
	}
	limit, err := units.ParseBytes(*size)
	if err == nil && limit <= 0 {
		err = fmt.Errorf("size %q: want a positive size", *size)
	}
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
