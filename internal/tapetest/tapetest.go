// Package tapetest reads tapes back in tests: the ways in check what they
// wrote against what the servers and clients saw. Only tests import it.
package tapetest

import (
	"context"
	"testing"

	"github.com/herd-replay/herd/tape"
)

// Read returns every exchange of the tape at path, in file order, and its
// metadata. Damage fails the test.
func Read(tb testing.TB, path string) ([]tape.Exchange, tape.Meta) {
	tb.Helper()
	r, err := tape.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var exs []tape.Exchange
	if err := r.All(context.Background(), func(e *tape.Exchange) error {
		exs = append(exs, *e)
		return nil
	}); err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	if d := r.Damage(); len(d) > 0 {
		tb.Fatalf("read %s: damage %v", path, d)
	}
	return exs, r.Meta()
}
