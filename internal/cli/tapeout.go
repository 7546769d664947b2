package cli

import (
	"os"
	"path/filepath"

	"github.com/herd-replay/herd/tape"
)

// checkTapeOutput refuses a tape output that exists (NAME or the
// NAME.partial the writer creates) unless force, and one that is an input
// in any case: herd never writes over its input.
func checkTapeOutput(out string, force bool, inputs ...string) error {
	for _, p := range []string{out, out + tape.PartialSuffix} {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		for _, in := range inputs {
			if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) {
				return usageErrorf("-o %s is the input %s: herd never writes over its input, not even with --force", out, in)
			}
		}
		if st.IsDir() {
			return usageErrorf("-o %s is a directory: give a file name", out)
		}
		if !force {
			return usageErrorf("-o %s: the file exists; pass --force to replace it", p)
		}
	}
	if abs, err := filepath.Abs(out); err == nil {
		for _, in := range inputs {
			if ia, err := filepath.Abs(in); err == nil && ia == abs {
				return usageErrorf("-o %s is the input %s: herd never writes over its input, not even with --force", out, in)
			}
		}
	}
	return nil
}
