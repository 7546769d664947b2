// Package record is a recording reverse proxy: clients talk to it, it
// forwards every request to one upstream and writes each exchange to a
// tape. It serves HTTP/1.x and HTTP/2 (over TLS by ALPN, or in clear text
// with prior knowledge), one tape connection per client connection, with
// timestamps taken where the proxy sees the bytes.
//
// It is built not to hurt the service behind it. Bodies stream through
// and are never held whole (at most a prefix is kept for the tape, like
// capture's --max-body). Every wait on the upstream or a client has a
// timeout. Memory is bounded: past its bounds the proxy stops recording
// exchanges, never stops forwarding them. The tape is written by one
// goroutine behind a bounded queue, so a slow or failing disk costs
// recorded exchanges, counted by reason, and never a request. Upgrade
// (WebSocket) and CONNECT tunnels are passed through and counted; their
// bytes are not recorded.
//
// The package knows nothing of the command line, replay or reports: it
// takes a context, a listener, Options and a Sink, and returns Stats.
package record
