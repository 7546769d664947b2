//go:build !linux

package replay

func newPrecisionTimer() precisionTimer { return newGoTimer() }
