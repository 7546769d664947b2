// Command loadgen is the traffic of bench/agent.sh: a minimal HTTP/1.1
// server (-serve) and a client that sends GETs at a fixed rate over
// keep-alive connections (-rate), both on loopback, cheap enough that the
// capture agent measured beside them gets the CPU it needs.
//
//	go run ./bench/loadgen -serve 127.0.0.1:18090
//	go run ./bench/loadgen -addr 127.0.0.1:18090 -rate 10000 -conns 50 -duration 10s
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

var response = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n")

func main() {
	serve := flag.String("serve", "", "serve on this address instead of sending")
	addr := flag.String("addr", "127.0.0.1:18090", "server to send to (loopback only)")
	rate := flag.Int("rate", 1000, "requests per second, in all")
	conns := flag.Int("conns", 50, "keep-alive connections")
	dur := flag.Duration("duration", 10*time.Second, "how long to send (at most 5m)")
	flag.Parse()
	if *serve != "" {
		if err := runServer(*serve); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "loadgen: -addr must be a loopback address")
		os.Exit(2)
	}
	if *dur > 5*time.Minute || *rate <= 0 || *conns <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: want -rate > 0, -conns > 0, -duration <= 5m")
		os.Exit(2)
	}
	sent, err := runClient(*addr, *rate, *conns, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	fmt.Printf("sent %d requests in %v: %.0f req/s\n", sent, *dur, float64(sent)/dur.Seconds())
}

func runServer(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			r := bufio.NewReaderSize(c, 16<<10)
			for {
				// GETs without bodies: a request ends at its blank line.
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						break
					}
				}
				if _, err := c.Write(response); err != nil {
					return
				}
			}
		}()
	}
}

// runClient sends rate requests per second for dur over conns connections,
// each waiting for its response before the next request (as a keep-alive
// client does); a connection that falls behind sends at once.
func runClient(addr string, rate, conns int, dur time.Duration) (int64, error) {
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	interval := time.Duration(float64(time.Second) * float64(conns) / float64(rate))
	start := time.Now()
	end := start.Add(dur)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			req := []byte(fmt.Sprintf("GET /items/%d HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: loadgen\r\nAccept: */*\r\n\r\n", i))
			buf := make([]byte, len(response))
			next := start.Add(interval * time.Duration(i) / time.Duration(conns))
			for next.Before(end) {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if _, err := c.Write(req); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					errs <- err
					return
				}
				sent.Add(1)
				next = next.Add(interval)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return sent.Load(), errors.Join(all...)
}
