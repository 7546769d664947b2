package cli

import (
	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/internal/units"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/pflag"
)

// redactFlags are the redaction flags of the ways in besides capture
// (record, import): the same names, meaning and checks as herd capture's.
// This file also holds what else those commands parse alike.
type redactFlags struct {
	Headers    []string
	Query      []string
	BodyFields []string
	Off        bool
}

func (f *redactFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.Headers, "redact-header", nil, "also redact headers whose name matches this regular expression (repeatable)")
	fs.StringArrayVar(&f.Query, "redact-query", nil, "also redact query parameters whose name matches this pattern ('*' for any run; repeatable)")
	fs.StringArrayVar(&f.BodyFields, "redact-body-field", nil, "also redact form, JSON and multipart body fields whose name matches this pattern ('*' for any run; repeatable)")
	fs.BoolVar(&f.Off, "no-redact", false, "record every value as sent, secrets included")
}

// options checks the flags as herd capture does and returns the
// redaction they ask for and the rules the tape's metadata records.
func (f *redactFlags) options() (redact.Options, tape.Redaction, error) {
	c := captureOptions{RedactHeader: f.Headers, RedactQuery: f.Query, RedactBody: f.BodyFields, NoRedact: f.Off}
	meta, err := c.redaction()
	if err != nil {
		return redact.Options{}, tape.Redaction{}, err
	}
	return c.redactOptions(), meta, nil
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
