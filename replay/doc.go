// Package replay sends a tape's requests to a target on the recorded
// schedule, scaled, over real keep-alive connections that mirror the
// recorded client connections, and measures each request from the moment
// it was due (so a slow target cannot hide its slowness by delaying the
// generator). It also runs ramps: steps at rising multiples until the
// target breaks. It reads tapes through package tape and writes results
// through internal/results; it knows nothing of the CLI, capture or report.
//
// What an attempt at a request counts as when the target misbehaves (its
// error class, whether it may be resent, whether bytes that arrived are a
// response at all) is decided in one place, outcome.go, and counted in
// another, the aggregator: an engine only reports what it observed.
//
// Only the target's host and port are ever contacted: responses are read
// by herd's own HTTP/1.x client, or its own HTTP/2 connection (on x/net's
// framer), neither of which follows redirects, and requests recorded in
// absolute form are rewritten to origin form.
package replay
