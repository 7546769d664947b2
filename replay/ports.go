package replay

import (
	"os"
	"strconv"
	"strings"
)

// ephemeralPorts is how many local ports the machine hands out for
// outgoing connections (Linux's ip_local_port_range), which bounds the
// connections open at once to one target address; 0 when unknown.
func ephemeralPorts() int64 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	return parsePortRange(string(b))
}

func parsePortRange(s string) int64 {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0
	}
	lo, err1 := strconv.ParseInt(f[0], 10, 64)
	hi, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || hi < lo {
		return 0
	}
	return hi - lo + 1
}
