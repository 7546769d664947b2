package h1

import (
	"bytes"
	"testing"
)

// FuzzChunked: the decoder never panics, and feeding the same bytes in
// two pieces gives what feeding them at once gives.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint16(3))
	f.Add([]byte("a;x=y\r\n0123456789\r\n0\r\nT: 1\r\n\r\n"), uint16(11))
	f.Fuzz(func(t *testing.T, data []byte, at uint16) {
		run := func(pieces ...[]byte) (string, int, bool, bool) {
			var d ChunkedDecoder
			var out bytes.Buffer
			total := 0
			for _, p := range pieces {
				n, done, err := d.Feed(p, func(b []byte) { out.Write(b) })
				total += n
				if n > len(p) {
					t.Fatalf("consumed %d of %d bytes", n, len(p))
				}
				if err != nil || done {
					return out.String(), total, done, err != nil
				}
			}
			return out.String(), total, false, false
		}
		cut := int(at) % (len(data) + 1)
		a1, n1, d1, e1 := run(data)
		a2, n2, d2, e2 := run(data[:cut], data[cut:])
		if a1 != a2 || n1 != n2 || d1 != d2 || e1 != e2 {
			t.Fatalf("whole: %q %d %v %v; split at %d: %q %d %v %v", a1, n1, d1, e1, cut, a2, n2, d2, e2)
		}
	})
}

// FuzzHead: parsing a head never panics and keeps every field's bytes.
func FuzzHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\nA:b\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (Head, error){ParseRequest, ParseResponse} {
			h, err := parse(data)
			if err != nil {
				continue
			}
			for _, fl := range h.Fields {
				if !bytes.Contains(data, []byte(fl.Name)) || !bytes.Contains(data, []byte(fl.Value)) {
					t.Fatalf("field %q: %q not in the input", fl.Name, fl.Value)
				}
			}
		}
	})
}
