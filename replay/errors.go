package replay

// OptionError is an option the run cannot be made with: the caller's
// input, not a failure of the run. The command line reports it as a usage
// error.
type OptionError struct {
	Option string // the option at fault, by its library name
	Err    error
	Hint   string // what would make the run possible, in the library's terms
}

func (e *OptionError) Error() string {
	if e.Hint == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Hint
}
func (e *OptionError) Unwrap() error { return e.Err }
