//go:build !linux

package replay

import "errors"

const loopSupported = false

func newLoopEngine(r *run, cl *client) (stepEngine, error) {
	return nil, errors.New("the event loops run on Linux only")
}
