//go:build unix

package replay

import (
	"net"
	"syscall"
)

// peekSocket says what a TCP connection holds without reading it or
// waiting: one recv with MSG_PEEK on the socket, which Go keeps
// non-blocking.
func peekSocket(c net.Conn) idleState {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return idleUsable
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return idleEnded
	}
	var b [1]byte
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return true // one look, never a wait
	}); err != nil {
		return idleEnded
	}
	switch {
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
		return idleUsable
	case rerr != nil || n == 0:
		return idleEnded // reset, or the target's FIN
	}
	return idleBytes
}
