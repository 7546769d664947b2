package tape

import (
	"errors"
	"fmt"
)

// ErrNotTape means the file does not start with the tape magic.
var ErrNotTape = errors.New("not a tape file (bad magic)")

// UnsupportedVersionError is returned for a file written in a format
// version this reader cannot read.
type UnsupportedVersionError struct {
	Version uint16 // the file's format version
	Compat  uint16 // the oldest reader version the file says can read it
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("tape format version %d needs a reader of version %d or later; this one reads %d..%d",
		e.Version, e.Compat, MinVersion, MaxVersion)
}

// CorruptError reports a damaged block. Reading may continue after it: the
// next call returns the next intact chunk.
type CorruptError struct {
	Offset int64  // offset of the damaged block's header
	Reason string // what failed to verify
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt tape at offset %d: %s", e.Offset, e.Reason)
}

// TruncatedError reports a file that ends inside a block: the tail of a
// tape whose writer did not close it (a crash, a kill, a full disk). Every
// complete block before Offset has been read.
type TruncatedError struct {
	Offset int64 // offset of the incomplete block
	Size   int64 // size of the file
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("tape ends inside the block at offset %d (file size %d): it was not closed cleanly; everything before that offset was read",
		e.Offset, e.Size)
}
