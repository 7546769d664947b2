// Command gentape writes herd's synthetic tapes: the sample in testdata and
// the demo's embedded recording. It is run by go generate; the tapes it
// writes are committed, and a test checks that they match what it writes
// today.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/herd-replay/herd/internal/demo"
)

func main() {
	out := flag.String("o", "", "tape to write")
	preset := flag.String("preset", "sample", "sample or demo")
	flag.Parse()
	presets := map[string]func() demo.TrafficOptions{"sample": demo.SampleTraffic, "demo": demo.DemoTraffic}
	opts, ok := presets[*preset]
	if *out == "" || !ok {
		fmt.Fprintln(os.Stderr, "usage: gentape -preset sample|demo -o FILE")
		os.Exit(2)
	}
	if err := demo.WriteTraffic(*out, opts(), *preset); err != nil {
		fmt.Fprintln(os.Stderr, "gentape:", err)
		os.Exit(1)
	}
}
