package replay

import (
	"bytes"
	"strings"

	"github.com/herd-replay/herd/internal/fields"
	"github.com/herd-replay/herd/tape"
)

// rewriter applies the staging values of PlanOptions.SetQuery and
// SetBodyFields to recorded requests, and finds the redaction markers that
// would still reach the target.
type rewriter struct {
	setHeaders    []tape.Field
	query, body   []tape.Field
	qrule, brule  fields.Rule
	seen          map[string]bool // per request: names already counted
	findQ, findB  fields.Rule
	found         []string
	rewriteNeeded bool
}

func newRewriter(o PlanOptions) *rewriter {
	rw := &rewriter{setHeaders: o.SetHeaders, query: o.SetQuery, body: o.SetBodyFields, seen: map[string]bool{}}
	rw.qrule = setRule(o.SetQuery)
	rw.brule = setRule(o.SetBodyFields)
	rw.rewriteNeeded = len(o.SetQuery)+len(o.SetBodyFields) > 0
	find := func(kind string, set []tape.Field) fields.Rule {
		return fields.Rule{
			Match: func(name string) bool { return lookup(set, name) < 0 },
			Replace: func(name, v string) (string, bool) {
				if strings.HasPrefix(v, tape.RedactedPrefix) {
					rw.found = append(rw.found, kind+":"+strings.ToLower(name))
				}
				return v, false
			},
		}
	}
	rw.findQ, rw.findB = find("query", o.SetQuery), find("body", o.SetBodyFields)
	return rw
}

// setRule replaces the fields named in set (compared case-insensitively)
// with their values.
func setRule(set []tape.Field) fields.Rule {
	if len(set) == 0 {
		return fields.Rule{}
	}
	return fields.Rule{
		Match:   func(name string) bool { return lookup(set, name) >= 0 },
		Replace: func(name, _ string) (string, bool) { return set[lookup(set, name)].Value, true },
	}
}

func lookup(set []tape.Field, name string) int {
	for i, f := range set {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// request returns e as it is to be sent: the staging values in its target
// and body. e is not changed; the copy shares what did not change.
func (rw *rewriter) request(e *tape.Exchange) *tape.Exchange {
	if !rw.rewriteNeeded {
		return e
	}
	c := *e
	if t, n := fields.Target(e.Target, rw.qrule); n > 0 {
		c.Target = t
	}
	if len(e.ReqBody) > 0 && len(rw.body) > 0 {
		ct, _ := e.Header("Content-Type")
		ce, _ := e.Header("Content-Encoding")
		if b, n, _ := fields.Body(e.ReqBody, ct, ce, e.Flags&tape.ReqBodyTruncated != 0, rw.brule); n > 0 {
			c.ReqBody = b
		}
	}
	return &c
}

// countRedacted adds to m, once per request and name, the redaction
// markers e would send that no staging value replaces: by header name, as
// query:NAME and as body:NAME (Plan.Redacted).
func (rw *rewriter) countRedacted(e *tape.Exchange, m map[string]int64) {
	rw.found = rw.found[:0]
	for _, f := range e.ReqHeader {
		if strings.Contains(f.Value, tape.RedactedPrefix) && !overridden(f.Name, rw.setHeaders) {
			rw.found = append(rw.found, strings.ToLower(f.Name))
		}
	}
	if strings.Contains(e.Target, tape.RedactedPrefix) {
		fields.Target(e.Target, rw.findQ)
	}
	if bytes.Contains(e.ReqBody, []byte(tape.RedactedPrefix)) {
		ct, _ := e.Header("Content-Type")
		ce, _ := e.Header("Content-Encoding")
		fields.Body(e.ReqBody, ct, ce, e.Flags&tape.ReqBodyTruncated != 0, rw.findB)
	}
	clear(rw.seen)
	for _, k := range rw.found {
		if !rw.seen[k] {
			rw.seen[k] = true
			m[k]++
		}
	}
}
