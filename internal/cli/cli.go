// Package cli is herd's command line: cobra commands, flag parsing, progress
// display, and the one mapping from errors to exit codes. It is the only
// package that knows about cobra and progress bars; the work itself is done
// by the library packages it calls.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/herd-replay/herd/replay"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes, part of the command-line contract.
const (
	ExitOK          = 0
	ExitFailure     = 1 // the tool or its input failed
	ExitUsage       = 2 // bad flags or arguments
	ExitRequirement = 3 // the run completed but a requirement was not met
	ExitInterrupted = 130
)

// UsageError is a mistake on the command line.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// RequirementError means the run worked and its result failed a gate:
// --require, a compare regression, an emergency stop.
type RequirementError struct{ Msg string }

func (e *RequirementError) Error() string { return e.Msg }

// ExitCode maps an error returned by a command to the process exit code.
// It is the only place that does.
func ExitCode(err error) int {
	var ue *UsageError
	var re *RequirementError
	var oe *replay.OptionError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.As(err, &oe):
		return ExitUsage
	case errors.As(err, &re):
		return ExitRequirement
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	}
	return ExitFailure
}

// IO is where a command reads and writes. Tests use buffers.
type IO struct {
	In  io.Reader
	Out io.Writer // data: reports, JSON
	Err io.Writer // people: progress, status, warnings
	// ErrTTY reports whether Err is a terminal, which decides between
	// progress bars and periodic status lines.
	ErrTTY bool
}

// StdIO is the process's standard streams.
func StdIO() IO {
	return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, ErrTTY: term.IsTerminal(int(os.Stderr.Fd()))}
}

// Main runs herd with args and returns the exit code.
func Main(ctx context.Context, args []string, io IO) int {
	root, ran := newRootCmd(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && !*ran {
		// Everything that fails before a command's RunE starts is about
		// the command line: unknown commands, flags, argument counts.
		err = &UsageError{Err: err}
	}
	if err != nil {
		msg := err.Error()
		if errors.Is(err, context.Canceled) {
			msg = "interrupted"
		}
		fmt.Fprintf(io.Err, "herd: %s\n", msg)
		var ue *UsageError
		if errors.As(err, &ue) && !strings.Contains(msg, "--help") {
			fmt.Fprintln(io.Err, "Run 'herd --help' for usage.")
		}
	}
	return ExitCode(err)
}

func newRootCmd(io IO) (*cobra.Command, *bool) {
	ran := new(bool)
	root := &cobra.Command{
		Use:   "herd",
		Short: "Record real HTTP traffic and replay it at multiples of the peak",
		Long: `herd records real HTTP traffic into a tape and replays it, scaled to
multiples of the recorded peak, against a staging service, to find the load
at which the service breaks before its users do.

Exit codes: 0 success, 1 failure of the tool or its input, 2 usage error,
3 the run completed but a requirement was not met, 130 interrupted.`,
		Example: `  # Record the HTTP traffic of a tcpdump capture into a tape
  herd capture --pcap peak.pcap --port 8080 -o peak.tape

  # What does a tape hold, and where is its peak?
  herd inspect testdata/sample.tape
  herd inspect peak.tape --json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &UsageError{Err: err}
	})
	root.CompletionOptions.DisableDefaultCmd = true
	// Every command marks that it started, so Main can tell usage errors
	// (before) from run errors (after).
	root.PersistentPreRun = func(*cobra.Command, []string) { *ran = true }
	root.AddCommand(
		newVersionCmd(io),
		newCompletionCmd(io, root),
		newInspectCmd(io),
		newCaptureCmd(io),
		newImportCmd(io),
		newRecordCmd(io),
		newReplayCmd(io),
		newRampCmd(io),
		newShadowCmd(io),
		newDemoCmd(io),
		newReportCmd(io),
	)
	return root, ran
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s needs %s (got %d arguments)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}
