package replay

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// timerfd is a precisionTimer on a Linux timerfd read through the
// runtime's poller: the goroutine blocks without holding a thread and
// wakes within microseconds of the deadline.
type timerfd struct {
	fd     int
	f      *os.File
	base   int64 // CLOCK_MONOTONIC at clockEpoch
	buf    [8]byte
	close_ sync.Once
}

func newPrecisionTimer() precisionTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newGoTimer()
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		unix.Close(fd)
		return newGoTimer()
	}
	// Both clocks are CLOCK_MONOTONIC; their offset is fixed.
	base := ts.Nano() - nanotime()
	return &timerfd{fd: fd, f: os.NewFile(uintptr(fd), "timerfd"), base: base}
}

func (t *timerfd) arm(due int64) {
	abs := max(due+t.base, 1) // zero would disarm
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(abs)}
	unix.TimerfdSettime(t.fd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

func (t *timerfd) wait() bool {
	_, err := t.f.Read(t.buf[:])
	return err == nil
}

func (t *timerfd) close() { t.close_.Do(func() { t.f.Close() }) }
