package cli

import (
	"fmt"
	"io"
	"runtime"

	"github.com/herd-replay/herd/internal/version"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/cobra"
)

func newVersionCmd(io IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print herd's version and the commit it was built from",
		Long: `Print herd's version, the VCS commit it was built from, the tape formats it
reads and the Go toolchain. herd --version prints the same line.

The version is the module version (a tag, or a pseudo-version naming the
commit for go install ...@commit), else "devel". The commit comes from the
build: go build in a git checkout stamps it, the container image sets it at
link time; go run, go test and builds with -buildvcs=false record none, and
herd says "commit unknown".`,
		Example: "  herd version\n  herd --version",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeVersion(io.Out)
		},
	}
}

// versionLine is what herd version and herd --version print.
func versionLine() string {
	return fmt.Sprintf("herd %s (tape format %d..%d, %s, %s/%s)",
		version.Full(), tape.MinVersion, tape.MaxVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func writeVersion(w io.Writer) error {
	_, err := fmt.Fprintln(w, versionLine())
	return err
}

func versionString() string { return version.String() }
