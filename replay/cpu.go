package replay

import (
	"time"

	"github.com/herd-replay/herd/internal/cputime"
)

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration { return cputime.Process() }
