// Command genimport writes a large input for herd import in one of the
// formats it reads (gor, har, clf, alb): the traffic of
// internal/importgen, streamed to the file.
//
//	go run ./bench/genimport -format gor -size 1GiB -o big.gor
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/herd-replay/herd/internal/importgen"
	"github.com/herd-replay/herd/internal/units"
)

func main() {
	format := flag.String("format", "gor", "input format: "+strings.Join(importgen.Formats, ", "))
	size := flag.String("size", "1GiB", "at least this many bytes")
	out := flag.String("o", "", "file to write (required)")
	flag.Parse()
	if err := run(*format, *size, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genimport:", err)
		os.Exit(1)
	}
}

func run(format, size, out string) error {
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	n, err := units.ParseBytes(size)
	if err != nil {
		return err
	}
	r, err := importgen.Reader(format, n)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.Copy(w, r); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
