package cli

import (
	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/units"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/pflag"
)

// redactFlags are the redaction flags of the ways in besides capture
// (record, import): the same names and meaning as herd capture's. This
// file also holds what else those commands parse alike.
type redactFlags struct {
	Headers []string
	Query   []string
	Off     bool
}

func (f *redactFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.Headers, "redact-header", nil, "also redact headers whose name matches this regular expression (repeatable)")
	fs.StringArrayVar(&f.Query, "redact-query", nil, "also redact the value of this query parameter (repeatable)")
	fs.BoolVar(&f.Off, "no-redact", false, "record every value as sent, secrets included")
}

// exchangeRedactor redacts an exchange in place and says whether it did.
type exchangeRedactor interface {
	Exchange(e *tape.Exchange) bool
}

// redactor checks the flags and returns the redactor they ask for (nil
// with --no-redact) and what the tape's metadata says of it.
func (f *redactFlags) redactor() (exchangeRedactor, tape.Redaction, error) {
	if f.Off && (len(f.Headers) > 0 || len(f.Query) > 0) {
		return nil, tape.Redaction{}, usageErrorf("--no-redact contradicts --redact-header and --redact-query")
	}
	r := capture.Redaction{Disabled: f.Off, Headers: f.Headers, Query: f.Query}
	for _, expr := range f.Headers {
		if _, err := capture.HeaderPattern(expr); err != nil {
			return nil, tape.Redaction{}, usageErrorf("--redact-header: %v", err)
		}
	}
	for _, q := range f.Query {
		if q == "" {
			return nil, tape.Redaction{}, usageErrorf("--redact-query needs a parameter name")
		}
	}
	if f.Off {
		return nil, r.Meta(), nil
	}
	rd, err := capture.NewRedactor(r)
	if err != nil {
		return nil, tape.Redaction{}, err
	}
	return rd, r.Meta(), nil
}

// parseMaxBody reads --max-body for the ways in: a size up to the tape's
// limit, 0 for none (the libraries' -1).
func parseMaxBody(s string) (int64, error) {
	mb, err := units.ParseBytes(s)
	if err != nil {
		return 0, usageErrorf("--max-body: %v", err)
	}
	if mb > tape.MaxStoredBody {
		return 0, usageErrorf("--max-body %s is above the tape's limit of 16 MiB", s)
	}
	if mb == 0 {
		return -1, nil // store no body
	}
	return mb, nil
}
