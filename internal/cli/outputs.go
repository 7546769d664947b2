package cli

import (
	"io"

	"github.com/herd-replay/herd/internal/outfile"
)

// forceUsage is the help of every command's --force.
const forceUsage = "replace existing output files (never one of the command's inputs)"

// output is one output file of a command and the flag that names it.
type output struct{ flag, path string }

// guardOutputs checks a command's outputs before it does any work: none
// may be one of its inputs or another output, and none may exist unless
// force. A refusal is a usage error naming the file and the flag.
func guardOutputs(force bool, inputs []string, outs ...output) (*outfile.Guard, error) {
	g := outfile.New(force)
	g.Input(inputs...)
	for _, o := range outs {
		if err := g.Check(o.flag, o.path); err != nil {
			return nil, &UsageError{Err: err}
		}
	}
	return g, nil
}

// writeOutput hands write standard output ("" or "-"), or a file at path,
// checked before by g, that appears only once it is complete, with mode
// 0600 (outfile.Write).
func writeOutput(out IO, g *outfile.Guard, flag, path string, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return write(out.Out)
	}
	return g.Write(flag, path, write)
}

// checkOutput checks the tape files a capture writes: -o, its .partial,
// and the rotated names when rotating.
func (o *captureOptions) checkOutput(rotated bool) error {
	g := outfile.New(o.Force)
	g.Input(o.Pcaps...)
	if err := g.CheckTape("-o", o.Output, rotated); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}
