package cli

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/tape"
)

// redactOptions are the redaction flags of herd capture, for the capture.
func (o *captureOptions) redactOptions() redact.Options {
	return redact.Options{Disabled: o.NoRedact, Headers: o.RedactHeader, Query: o.RedactQuery, BodyFields: o.RedactBody}
}

// redaction checks the redaction flags and returns the rules they make,
// as the tape's metadata records them.
func (o *captureOptions) redaction() (tape.Redaction, error) {
	if o.NoRedact && (len(o.RedactHeader) > 0 || len(o.RedactQuery) > 0 || len(o.RedactBody) > 0) {
		return tape.Redaction{}, usageErrorf("--no-redact contradicts --redact-header, --redact-query and --redact-body-field")
	}
	for _, expr := range o.RedactHeader {
		if _, err := redact.HeaderPattern(expr); err != nil {
			return tape.Redaction{}, usageErrorf("--redact-header: %v", err)
		}
	}
	for flag, ps := range map[string][]string{"--redact-query": o.RedactQuery, "--redact-body-field": o.RedactBody} {
		for _, p := range ps {
			if _, err := redact.NamePattern(p); err != nil {
				return tape.Redaction{}, usageErrorf("%s: %v", flag, err)
			}
		}
	}
	r, err := redact.New(o.redactOptions())
	if err != nil {
		return tape.Redaction{}, err
	}
	return r.Meta(), nil
}

// parseAssignments parses NAME=VALUE flags (--set-query, --set-body-field).
func parseAssignments(flag string, in []string) ([]tape.Field, error) {
	var out []tape.Field
	for _, a := range in {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, usageErrorf("%s %q: use NAME=VALUE", flag, a)
		}
		out = append(out, tape.Field{Name: name, Value: value})
	}
	return out, nil
}

// warnRedacted says, for each name, how many requests would send a
// redaction marker to the target, and which flag sends a staging value
// instead. Keys are header names, query:NAME and body:NAME (replay.Plan's
// Redacted).
func warnRedacted(w io.Writer, redacted map[string]int64) {
	keys := make([]string, 0, len(redacted))
	for k := range redacted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := redacted[k]
		switch kind, name, _ := strings.Cut(k, ":"); kind {
		case "query":
			fmt.Fprintf(w, "herd: warning: %d requests carry a redacted query parameter %s; the target will see the placeholder unless you pass --set-query '%s=...'\n", n, name, name)
		case "body":
			fmt.Fprintf(w, "herd: warning: %d requests carry a redacted body field %s; the target will see the placeholder unless you pass --set-body-field '%s=...'\n", n, name, name)
		default:
			fmt.Fprintf(w, "herd: warning: %d requests carry a redacted %s value; the target will see the placeholder unless you pass --set-header '%s: ...'\n", n, k, k)
		}
	}
}

// redactionText describes a tape's redaction rules for herd inspect:
// "default rules" when they are this herd's defaults, with what was added.
func redactionText(m tape.Redaction) string {
	if !m.Enabled {
		return "off"
	}
	hdefaults := redact.DefaultHeaderRules()
	defaults := slices.Equal(m.Headers[:min(len(m.Headers), len(hdefaults))], hdefaults)
	if !defaults {
		// An older tape: its rules as recorded.
		if all := append(slices.Clone(m.Headers), m.Query...); len(all) > 0 {
			return "on (" + strings.Join(all, ", ") + ")"
		}
		return "on"
	}
	var extra []string
	add := func(kind string, rules []string, defaults int) {
		if len(rules) > defaults {
			extra = append(extra, kind+" "+strings.Join(rules[defaults:], ", "))
		}
	}
	add("headers", m.Headers, len(hdefaults))
	add("query", m.Query, len(redact.DefaultRules))
	add("body fields", m.BodyFields, len(redact.DefaultRules))
	s := "on (default rules"
	if len(extra) > 0 {
		s += "; also " + strings.Join(extra, "; ")
	}
	return s + ")"
}

// splitRedacted takes the redaction counters (redact.Counters) out of a
// tape's counters: what was redacted, as "header authorization 12, ...",
// and the bodies left uninspected, as "json_invalid 1".
func splitRedacted(counters map[string]int64) (rest map[string]int64, redacted, skipped string) {
	rest = make(map[string]int64, len(counters))
	red, skip := map[string]int64{}, map[string]int64{}
	for k, v := range counters {
		switch kind, name, ok := redact.ParseCounter(k); {
		case !ok:
			rest[k] = v
		case kind == "skipped":
			skip[name] = v
		default:
			red[kind+" "+name] = v
		}
	}
	if len(red) > 0 {
		redacted = counts(red)
	}
	if len(skip) > 0 {
		skipped = counts(skip)
	}
	return rest, redacted, skipped
}
