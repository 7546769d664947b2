// Package outfile is the one place where herd's commands create output
// files. A Guard refuses an output that already exists unless the command
// runs with --force, never lets an output land on one of the command's
// inputs (not even with --force), and writes whole files atomically with
// mode 0600, since results, reports and tapes describe a production
// service's traffic. It knows nothing of the command line beyond the flag
// names it puts in its errors.
package outfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/herd-replay/herd/tape"
)

// Mode is the permission of every file a Guard creates: results, reports
// and raw logs hold the target's routes, timings and error messages, as
// tapes hold its traffic, so only their owner reads them.
const Mode fs.FileMode = 0o600

// ExistsError is an output that exists and would be replaced without
// --force.
type ExistsError struct {
	Flag, Path string
	// Kept names the file holding the output when the path appeared
	// while the command ran (the output is not lost); empty otherwise.
	Kept string
}

func (e *ExistsError) Error() string {
	if e.Kept != "" {
		return fmt.Sprintf("%s %s appeared while herd ran; not replaced without --force: the output is in %s", e.Flag, e.Path, e.Kept)
	}
	return fmt.Sprintf("%s %s: the file exists; pass --force to replace it", e.Flag, e.Path)
}

// InputError is an output that would write over one of the command's
// inputs, or over another of its outputs. --force does not lift it.
type InputError struct {
	Flag, Path string
	Input      string // the input (or other output) it is
	What       string // "input" or the other output's flag
}

func (e *InputError) Error() string {
	if e.What == "input" {
		return fmt.Sprintf("%s %s is the input %s: herd never writes over its input, not even with --force", e.Flag, e.Path, e.Input)
	}
	return fmt.Sprintf("%s %s is also the output of %s: give each output its own file", e.Flag, e.Path, e.What)
}

// Guard checks one command's outputs against its inputs and writes them.
// Use it from one goroutine.
type Guard struct {
	force bool
	files []known // inputs, then outputs as they are checked
}

// known is a file the command reads or writes: its resolved path, and its
// identity when it exists.
type known struct {
	flag string // "" for an input
	name string // as given
	abs  string // absolute, cleaned, directory symlinks resolved
	info fs.FileInfo
}

// New returns a guard; force lets outputs replace existing files that are
// not inputs.
func New(force bool) *Guard { return &Guard{force: force} }

// Input records files the command reads. "-" (standard input) and ""
// are ignored; a file that does not exist is recorded by path.
func (g *Guard) Input(paths ...string) {
	for _, p := range paths {
		if p == "" || p == "-" {
			continue
		}
		g.files = append(g.files, resolve("", p))
	}
}

// InputTape records a tape the command reads, with the NAME.partial a
// reader falls back to.
func (g *Guard) InputTape(path string) {
	g.Input(path, path+tape.PartialSuffix)
}

func resolve(flag, p string) known {
	k := known{flag: flag, name: p, abs: absPath(p)}
	if fi, err := os.Stat(p); err == nil {
		k.info = fi
	}
	return k
}

// absPath is p absolute and cleaned, with its directory's symlinks
// resolved, so that two spellings of a file that does not exist yet
// compare equal.
func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	dir, base := filepath.Split(a)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(d, base)
	}
	return a
}

func (k known) same(o known) bool {
	if k.info != nil && o.info != nil {
		return os.SameFile(k.info, o.info)
	}
	return k.abs == o.abs
}

// Check refuses an output path given with flag: one of the inputs or an
// output already checked (always), or an existing file (without force).
// "-" (standard output) and "" (no output) pass. A device or a named pipe
// (/dev/null, /dev/stdout) is not a user's file to lose and passes too.
func (g *Guard) Check(flag, path string) error {
	if path == "" || path == "-" {
		return nil
	}
	k := resolve(flag, path)
	for _, f := range g.files {
		if k.same(f) {
			if f.flag == "" {
				return &InputError{Flag: flag, Path: path, Input: f.name, What: "input"}
			}
			return &InputError{Flag: flag, Path: path, Input: f.name, What: f.flag}
		}
	}
	if k.info != nil && k.info.IsDir() {
		return fmt.Errorf("%s %s is a directory: give a file name", flag, path)
	}
	if k.info != nil && k.info.Mode().IsRegular() && !g.force {
		return &ExistsError{Flag: flag, Path: path}
	}
	if k.info == nil {
		if _, err := os.Lstat(path); err == nil && !g.force {
			return &ExistsError{Flag: flag, Path: path} // a dangling symlink is the user's too
		}
	}
	g.files = append(g.files, k)
	return nil
}

// CheckTape checks the files a tape writer creates for path: the tape,
// its NAME.partial while it is written, and with rotated, the numbered
// files NAME-0001.tape ... that replace it (see capture.Rotator).
func (g *Guard) CheckTape(flag, path string, rotated bool) error {
	if path == "-" {
		return fmt.Errorf("%s -: a tape is written to a file (it is indexed and renamed into place when complete); give a file name", flag)
	}
	if !rotated {
		if err := g.Check(flag, path); err != nil {
			return err
		}
		return g.Check(flag, path+tape.PartialSuffix)
	}
	// NAME.tape becomes NAME-0001.tape, NAME-0002.tape ... (four digits
	// or more, as capture.Rotator names them).
	ext := filepath.Ext(path)
	stem := strings.TrimSuffix(path, ext)
	const num = "-[0-9][0-9][0-9][0-9]*"
	rotatedAbs := globEscape(absPath(stem)) + num + globEscape(ext)
	for _, f := range g.files {
		if f.flag != "" {
			continue
		}
		for _, pat := range []string{rotatedAbs, rotatedAbs + tape.PartialSuffix} {
			if ok, _ := filepath.Match(pat, f.abs); ok {
				return &InputError{Flag: flag, Path: f.name, Input: f.name, What: "input"}
			}
		}
	}
	if !g.force {
		rotated := globEscape(stem) + num + globEscape(ext)
		for _, pat := range []string{rotated, rotated + tape.PartialSuffix} {
			if existing, _ := filepath.Glob(pat); len(existing) > 0 {
				return &ExistsError{Flag: flag, Path: existing[0]}
			}
		}
	}
	return nil
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Write writes a file at path, checked before with Check, whole or not at
// all: write fills a temporary file in the same directory, which then
// takes the name. Without force the name is taken only if it is still
// free, so a file that appeared meanwhile survives and the output is kept
// under the temporary name (see ExistsError.Kept). A device or a named
// pipe is written directly.
func (g *Guard) Write(flag, path string, write func(io.Writer) error) (err error) {
	if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		bw := bufio.NewWriter(f)
		err = write(bw)
		if ferr := bw.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write %q: %w", path, ferr)
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %q: %w", path, cerr)
		}
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	if err := write(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := tmp.Chmod(Mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if g.force {
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("write %q: %w", path, err)
		}
		return nil
	}
	// A hard link takes the name only if it is free; where the file
	// system has no hard links, look, then rename.
	lerr := os.Link(tmp.Name(), path)
	switch {
	case lerr == nil:
		return nil // the deferred Remove drops the temporary name
	case errors.Is(lerr, fs.ErrExist):
		keep = true
		return &ExistsError{Flag: flag, Path: path, Kept: tmp.Name()}
	}
	if _, err := os.Lstat(path); err == nil {
		keep = true
		return &ExistsError{Flag: flag, Path: path, Kept: tmp.Name()}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	return nil
}

// Create creates a file at path, checked before with Check, for a stream
// written as the command runs (its partial content is useful after a
// crash, so it is not renamed into place). Without force it fails if the
// name was taken meanwhile; with force an existing file is unlinked
// first, so that a hard link to it elsewhere keeps its content.
func (g *Guard) Create(flag, path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		return os.OpenFile(path, os.O_WRONLY, 0)
	}
	if g.force {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, Mode)
	if errors.Is(err, fs.ErrExist) {
		return nil, &ExistsError{Flag: flag, Path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, nil
}
