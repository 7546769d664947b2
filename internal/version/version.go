// Package version reports the version of herd that is running: the one set
// at link time, else the module version recorded by the Go toolchain.
package version

import "runtime/debug"

// Version is set at link time with -ldflags "-X ...version.Version=v1.2.3".
var Version = ""

// String returns the version of this binary, "devel" when unknown.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
