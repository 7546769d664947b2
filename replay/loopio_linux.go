//go:build linux && !race

package replay

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The sockets are non-blocking: their reads and writes never wait, so
// they skip the scheduler's bookkeeping of a call that might.

func sysRead(fd int, b []byte) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), e
}

func sysWrite(fd int, b []byte) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), e
}
