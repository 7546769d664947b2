package cli

import (
	"fmt"
	"runtime"

	"github.com/herd-replay/herd/internal/version"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/cobra"
)

func newVersionCmd(io IO) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print herd's version",
		Example: "  herd version",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(io.Out, "herd %s (tape format %d..%d, %s, %s/%s)\n",
				version.String(), tape.MinVersion, tape.MaxVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

func versionString() string { return version.String() }
