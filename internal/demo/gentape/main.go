// Command gentape writes herd's synthetic sample tapes. It is run by
// go generate; the tapes it writes are committed, and a test checks that
// they match what it writes today.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/herd-replay/herd/internal/demo"
)

func main() {
	out := flag.String("o", "", "tape to write")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: gentape -o FILE")
		os.Exit(2)
	}
	if err := demo.WriteTraffic(*out, demo.SampleTraffic(), "sample"); err != nil {
		fmt.Fprintln(os.Stderr, "gentape:", err)
		os.Exit(1)
	}
}
