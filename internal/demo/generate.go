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

// TapeName names the embedded demo tape in results.
const TapeName = "(built-in demo tape)"

// Tape returns the bytes of the embedded demo tape.
func Tape() []byte { return demoTape }
