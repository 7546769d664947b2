package demo

import (
	_ "embed"
)

//go:generate go run ./gentape -preset sample -o ../../testdata/sample.tape
//go:generate go run ./gentape -preset demo -o demo.tape

// demoTape is the recording herd demo replays (DemoTraffic).
//
//go:embed demo.tape
var demoTape []byte

// Tape returns the bytes of the embedded demo tape.
func Tape() []byte { return demoTape }
