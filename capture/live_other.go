//go:build !linux

package capture

import (
	"fmt"
	"runtime"
)

// OpenLive is only available on Linux (AF_PACKET); elsewhere, capture with
// tcpdump and read the file.
func OpenLive(opts LiveOptions) (Source, error) {
	return nil, fmt.Errorf("live capture needs Linux (AF_PACKET); on %s, record with tcpdump -w and use --pcap", runtime.GOOS)
}
