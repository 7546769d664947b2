// Package capture turns packets into tape exchanges: it reads pcap and
// pcapng files (or a live Linux interface through AF_PACKET), reassembles
// both directions of every TCP connection with gopacket's reassembly,
// parses HTTP/1.x requests and responses out of the two byte streams, pairs
// them in order, redacts secrets, and writes one tape.Exchange per request.
//
// Nothing is dropped silently: every packet, connection, byte range and
// message that does not become an exchange is counted in Stats, by reason.
// Time inside the capture is packet time: idle connections are flushed and
// gaps given up on by the timestamps of the packets, never the wall clock,
// so a file gives the same tape however fast it is read.
//
// The package knows nothing of the command line, progress bars, replay or
// reports: it takes a context, Options, a packet Source and a Sink, and
// returns Stats and an error.
package capture
