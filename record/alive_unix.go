//go:build unix

package record

import (
	"crypto/tls"
	"net"
	"syscall"
)

// alive reports whether an idle upstream connection is still open: a
// closed one reads as EOF (or an error) at once, an open one would block.
// It peeks without consuming and without waiting.
func alive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Only "nothing to read yet" means open. EOF is closed, and data
		// from an idle upstream answers nothing: no good either.
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && open
}
