//go:build unix

package replay

import "syscall"

// RaiseFileLimit raises this process's open-file soft limit to its hard
// limit, so that thousands of replayed connections do not run out of
// descriptors, and returns the limit in force.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			l = want
		}
	}
	return l.Cur, nil
}
