package replay

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls of the event loops. The ones that never block (the sockets
// are non-blocking) go through RawSyscall, which skips the scheduler's
// bookkeeping of a call that might; only the epoll wait blocks.

func sysClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// poller is an event loop's epoll set, waited on through Go's own
// network poller: the loop's goroutine parks like any other while nothing
// is ready, holding no P and no thread (a goroutine blocked in epoll_wait
// would hold both, and have the runtime's monitor take the P back every
// few microseconds). Due times wake it through a timerfd in the set,
// with the precision of a kernel timer.
type poller struct {
	epfd   int
	f      *os.File
	rc     syscall.RawConn
	tfd    int   // the timerfd
	tslot  int32 // its token in the set
	armed  int64 // replay-clock time the timerfd is armed for; 0 when not
	offset int64 // CLOCK_MONOTONIC minus the replay clock
}

// timerToken marks the timerfd's events.
const timerToken = -1

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	p := &poller{epfd: epfd, tfd: -1}
	fail := func(err error) (*poller, error) {
		p.close()
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		return fail(fmt.Errorf("epoll: %w", err))
	}
	p.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("timerfd: %w", err))
	}
	// The offset from the closest pair of readings of a few: a reading
	// preempted between the two clocks would put every due time early
	// or late by the preemption.
	best := int64(-1)
	for range 5 {
		var ts unix.Timespec
		t0 := nanotime()
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return fail(err)
		}
		t1 := nanotime()
		if gap := t1 - t0; best < 0 || gap < best {
			best, p.offset = gap, ts.Nano()-(t0+gap/2)
		}
	}
	// Edge-triggered: each expiry is one event, and the timerfd need not
	// be read.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: timerToken}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p.tfd, &ev); err != nil {
		return fail(fmt.Errorf("epoll: %w", err))
	}
	p.f = os.NewFile(uintptr(epfd), "epoll")
	if p.rc, err = p.f.SyscallConn(); err != nil {
		return fail(err)
	}
	return p, nil
}

func (p *poller) close() {
	if p.tfd >= 0 {
		unix.Close(p.tfd)
	}
	if p.f != nil {
		p.f.Close()
	} else {
		unix.Close(p.epfd)
	}
}

// poll returns the events ready now, without waiting.
func (p *poller) poll(events []unix.EpollEvent) int {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0 // EINTR: the loop comes back
	}
	for i := range int(n) {
		if events[i].Fd == timerToken {
			// The timer fired and is spent: the next wait arms it
			// again, even for the same time. It may have fired early
			// by an error in the clocks' offset, and an edge-triggered
			// timer that is not armed again never wakes the loop.
			p.armed = 0
		}
	}
	return int(n)
}

// wait returns the events ready by the replay-clock time until: at once
// those ready now, else it parks until one is or until is reached.
func (p *poller) wait(events []unix.EpollEvent, until int64) int {
	if until != p.armed {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(until+p.offset, 1))}
		unix.TimerfdSettime(p.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil)
		p.armed = until
	}
	n := 0
	p.rc.Read(func(uintptr) bool {
		n = p.poll(events)
		return n > 0
	})
	return n
}

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
