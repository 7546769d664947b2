// Command ratetape writes a tape of constant-rate keep-alive traffic: conns
// connections, each sending GET / at a fixed interval, staggered so that
// the whole tape runs at rate requests per second. bench/replay.sh replays
// it at multiples of that rate.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/herd-replay/herd/tape"
)

func main() {
	out := flag.String("o", "", "tape to write")
	conns := flag.Int("conns", 100, "connections")
	rate := flag.Float64("rate", 1000, "requests per second of the whole tape")
	dur := flag.Duration("duration", 12*time.Second, "length of the tape")
	flag.Parse()
	if *out == "" || *conns < 1 || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "usage: ratetape -o FILE [-conns N] [-rate R] [-duration D]")
		os.Exit(2)
	}
	start := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	interval := time.Duration(float64(*conns) / *rate * float64(time.Second))
	var exs []tape.Exchange
	for c := 0; c < *conns; c++ {
		offset := time.Duration(c) * interval / time.Duration(*conns)
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(c >> 8), byte(c)}), 40000)
		for i := 0; offset+time.Duration(i)*interval < *dur; i++ {
			at := start + int64(offset+time.Duration(i)*interval)
			exs = append(exs, tape.Exchange{
				ConnID: uint64(c + 1), Seq: uint32(i), Client: client, Server: netip.MustParseAddrPort("10.1.0.1:80"),
				ReqStart: at, ReqEnd: at + 1000, RespStart: at + 50_000, RespEnd: at + 60_000,
				Method: "GET", Target: "/", Proto: "HTTP/1.1", Status: 200, RespProto: "HTTP/1.1", RespBodyLen: 2,
				ReqHeader: []tape.Field{{Name: "Host", Value: "bench"}, {Name: "User-Agent", Value: "ratetape"}},
			})
		}
	}
	if err := tape.WriteFile(*out, tape.Meta{Source: tape.Source{Kind: "synthetic"}}, tape.WriterOptions{NoSync: true, FlushInterval: -1}, exs); err != nil {
		fmt.Fprintln(os.Stderr, "ratetape:", err)
		os.Exit(1)
	}
}
