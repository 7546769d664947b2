// Package version reports which herd is running: its version and the VCS
// commit it was built from, set at link time or else read from the build
// information the Go toolchain records. It does nothing else.
package version

import (
	"runtime/debug"
	"strings"
)

// Version and Commit are set at link time, for builds that have no VCS
// information of their own (a container image, GOFLAGS=-buildvcs=false):
//
//	go build -ldflags "-X github.com/herd-replay/herd/internal/version.Version=v1.2.3 \
//	                   -X github.com/herd-replay/herd/internal/version.Commit=$(git rev-parse HEAD)" ./cmd/herd
var (
	Version = ""
	Commit  = ""
)

// String returns the version of this binary: the one set at link time,
// else the module version (a tag, or a pseudo-version for go install
// module@commit), else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// CommitID returns the VCS commit this binary was built from, with
// "-dirty" when the tree had uncommitted changes, or "" when unknown: the
// one set at link time, else the toolchain's vcs.revision (go build in a
// checkout stamps it; go run, go test and -buildvcs=false do not), else
// the commit of a pseudo-version (go install module@commit).
func CommitID() string {
	if Commit != "" {
		return Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return commitOf(bi)
}

func commitOf(bi *debug.BuildInfo) string {
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if dirty {
			rev += "-dirty"
		}
		return rev
	}
	return pseudoCommit(bi.Main.Version)
}

// pseudoCommit returns the 12-digit commit prefix of a pseudo-version
// (v0.0.0-20260102150405-abcdef123456, with an optional +incompatible or
// +dirty suffix), or "".
func pseudoCommit(v string) string {
	v, _, _ = strings.Cut(v, "+")
	i := strings.LastIndexByte(v, '-')
	if i < 0 || len(v)-i-1 != 12 || strings.Count(v, "-") < 2 {
		return ""
	}
	c := v[i+1:]
	for _, r := range c {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return ""
		}
	}
	return c
}

// Full is the version and, when known, the commit: "v1.2.3 (commit
// 0123abcd...)", "devel (commit unknown)".
func Full() string {
	c := CommitID()
	if c == "" {
		c = "unknown"
	}
	return String() + " (commit " + c + ")"
}
