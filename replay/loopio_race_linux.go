//go:build linux && race

package replay

import "syscall"

// Under the race detector the loops read and write through package
// syscall, whose annotations make a write and the read of its bytes in
// another goroutine (a test's server) happen in that order, as they do
// for Go's own network connections.

func sysRead(fd int, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(fd, b)
	return max(n, 0), errno(err)
}

func sysWrite(fd int, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(fd, b)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}
