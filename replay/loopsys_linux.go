package replay

import (
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls of the event loops. The ones that never block (the sockets
// are non-blocking) go through RawSyscall, which skips the scheduler's
// bookkeeping of a call that might; only the epoll wait blocks.

func sysClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// epollWait waits for events up to timeout (negative: forever). It asks
// for the wait in nanoseconds (epoll_pwait2) and falls back, on kernels
// older than 5.11, to epoll_wait's milliseconds, rounded down: the loop
// then polls the last fraction of a millisecond.
func epollWait(epfd int, events []unix.EpollEvent, timeout time.Duration) (int, syscall.Errno) {
	if !noPwait2 {
		var ts *unix.Timespec
		if timeout >= 0 {
			t := unix.NsecToTimespec(int64(timeout))
			ts = &t
		}
		n, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)),
			uintptr(unsafe.Pointer(ts)), 0, 0)
		if e != unix.ENOSYS {
			return int(n), e
		}
		noPwait2 = true
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	var n uintptr
	var e syscall.Errno
	if ms == 0 {
		n, _, e = unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	} else {
		n, _, e = unix.Syscall6(unix.SYS_EPOLL_WAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
	}
	return int(n), e
}

// noPwait2 is set once the kernel has said it lacks epoll_pwait2; every
// loop reads it after that, so a race on it only costs one more ENOSYS.
var noPwait2 bool

// target is where the event loops connect: the target's address, resolved
// once per step (the goroutine engine resolves on each dial, through Go's
// resolver; a run is short against a DNS change).
type target struct {
	addr   *net.TCPAddr
	sa     unix.Sockaddr
	family int
	err    error // resolution failed: every dial fails with it
}

// sockOpen makes a non-blocking TCP socket and starts connecting it:
// done says the connection is already established (as it can be on
// loopback); otherwise it completes when the socket turns writable.
func (t *target) sockOpen() (fd int, done bool, err error) {
	if t.err != nil {
		return -1, false, t.err
	}
	fd, err = unix.Socket(t.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, false, &net.OpError{Op: "dial", Net: "tcp", Addr: t.addr, Err: os.NewSyscallError("socket", err)}
	}
	// What Go's dialer sets on its connections: no Nagle delay, and TCP
	// keep-alive probes after 30 s idle.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 30)
	switch err := unix.Connect(fd, t.sa); err {
	case nil:
		return fd, true, nil
	case unix.EINPROGRESS, unix.EINTR:
		return fd, false, nil
	default:
		sysClose(fd)
		return -1, false, t.dialError(err)
	}
}

// connectResult is the outcome of a connection in progress, once its
// socket turned writable (or failed).
func (t *target) connectResult(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return t.dialError(err)
	}
	if v != 0 {
		return t.dialError(syscall.Errno(v))
	}
	return nil
}

// dialError words a failed connect as Go's dialer does: "dial tcp
// 127.0.0.1:0: connect: connection refused".
func (t *target) dialError(err error) error {
	if err == os.ErrDeadlineExceeded {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: t.addr, Err: err}
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: t.addr, Err: os.NewSyscallError("connect", err)}
}

// ioError words a failed read or write as Go's net package does.
func (t *target) ioError(op string, fd int, err error) error {
	var local net.Addr
	if sa, e := unix.Getsockname(fd); e == nil {
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			local = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
		case *unix.SockaddrInet6:
			local = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
		}
	}
	if en, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, en)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: local, Addr: t.addr, Err: err}
}

// own is a copy of t for one loop: a unix.Sockaddr keeps scratch space
// that connect writes into.
func (t target) own() target {
	if t.addr != nil {
		t.sa, t.family = sockaddr(t.addr.IP, t.addr.Port)
	}
	return t
}

func sockaddr(ip net.IP, port int) (unix.Sockaddr, int) {
	if v4 := ip.To4(); v4 != nil {
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], v4)
		return sa, unix.AF_INET
	}
	sa := &unix.SockaddrInet6{Port: port}
	copy(sa.Addr[:], ip.To16())
	return sa, unix.AF_INET6
}
