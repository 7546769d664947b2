//go:build !unix

package replay

// RaiseFileLimit does nothing where the OS has no such limit to raise.
func RaiseFileLimit() (uint64, error) { return 0, nil }
