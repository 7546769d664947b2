package replay

// OptionError is an option the run cannot be made with: the caller's
// input, not a failure of the run. The command line reports it as a usage
// error.
type OptionError struct {
	Option string // the option at fault, by its library name
	Err    error
}

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }
