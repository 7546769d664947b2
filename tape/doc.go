// Package tape owns the tape file format: HTTP exchange records, the writer
// that appends them in independently verifiable zstd chunks, the reader that
// recovers everything intact from a damaged or torn file, and the index and
// per-second request counts that locate the busiest window.
//
// The byte layout is specified in docs/tape-format.md; this package must
// follow it exactly. It knows nothing of packets, replay or rendering.
package tape
