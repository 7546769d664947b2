package replay

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/herd-replay/herd/internal/results"
	"github.com/herd-replay/herd/internal/route"
	"github.com/herd-replay/herd/tape"
)

// The filters of a plan (PlanOptions.Servers, TargetMap, Include, Exclude,
// RewritePath): which recorded requests are replayed, to which target each
// goes, and with what path. They decide per recorded exchange, before the
// plan counts it, so a request they leave out is counted by reason in
// Plan.Skipped like any other, and every engine sends only what the plan
// holds, to the target the plan names (Req.Target).

// Reasons a filter leaves a request out, as Plan.Skipped counts them.
const (
	SkipOtherServer = "other_server" // not a server --server picked
	SkipNoTarget    = "no_target"    // a server no --target-map entry maps
	SkipExcluded    = "excluded"     // matched an --exclude pattern
	SkipNotIncluded = "not_included" // matched no --include pattern
)

// TargetMapping sends the requests of the servers Name matches to URL.
type TargetMapping struct {
	Name string // a glob matched against the server's address or host (ServerMatches)
	URL  *url.URL
}

// ParseTargetMapping parses NAME=URL; the URL is checked by the caller as
// a target is.
func ParseTargetMapping(s string) (name, rawURL string, err error) {
	name, rawURL, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || rawURL == "" {
		return "", "", fmt.Errorf("target map %q: use NAME=URL, such as api.example.com=http://127.0.0.1:9001", s)
	}
	return name, rawURL, nil
}

// PathRewrite rewrites recorded paths: From without '*' replaces a prefix
// with To; From with '*' must match the whole path, and each '*' in To is
// the text the '*' of the same rank in From matched.
type PathRewrite struct{ From, To string }

// ParsePathRewrite parses FROM=TO.
func ParsePathRewrite(s string) (PathRewrite, error) {
	from, to, ok := strings.Cut(s, "=")
	r := PathRewrite{From: from, To: to}
	if !ok || !strings.HasPrefix(from, "/") || !strings.HasPrefix(to, "/") {
		return r, fmt.Errorf("path rewrite %q: use FROM=TO with both starting with /, such as /v1/=/v2/ or '/api/*/items=/items/*'", s)
	}
	if strings.Count(to, "*") > strings.Count(from, "*") {
		return r, fmt.Errorf("path rewrite %q: TO has more '*' than FROM; each '*' of TO takes what the '*' of the same rank in FROM matched", s)
	}
	return r, nil
}

// requestPattern is an --include or --exclude pattern: METHOD, PATH or
// METHOD PATH, globs both.
type requestPattern struct {
	text         string
	method, path string // "" matches any
}

// parseRequestPattern reads 'GET /api/*', '/health*' or 'POST'.
func parseRequestPattern(s string) (requestPattern, error) {
	p := requestPattern{text: s}
	s = strings.TrimSpace(s)
	switch m, rest, ok := strings.Cut(s, " "); {
	case s == "":
		return p, errors.New("empty pattern: use METHOD, /PATH or 'METHOD /PATH', globs allowed")
	case ok:
		p.method, p.path = strings.ToUpper(m), strings.TrimSpace(rest)
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "*"):
		p.path = s
	default:
		p.method = strings.ToUpper(s)
	}
	if p.path != "" && !strings.HasPrefix(p.path, "/") && !strings.HasPrefix(p.path, "*") {
		return p, fmt.Errorf("pattern %q: the path must start with / (or *)", p.text)
	}
	if strings.ContainsAny(p.method, "/") {
		return p, fmt.Errorf("pattern %q: use METHOD, /PATH or 'METHOD /PATH'", p.text)
	}
	return p, nil
}

// matches reports whether a request of method to path (without query),
// whose route template is tmpl, matches: the path glob is tried on the
// recorded path and on the route template (/users/:id).
func (p requestPattern) matches(method, path, tmpl string) bool {
	if p.method != "" && !Glob(p.method, method) {
		return false
	}
	return p.path == "" || Glob(p.path, path) || Glob(p.path, tmpl)
}

// filter is the compiled filters of a plan.
type filter struct {
	servers  []string // globs, lower case
	targets  []string // globs of TargetMap, lower case, by target index
	include  []requestPattern
	exclude  []requestPattern
	rewrites []PathRewrite
}

func newFilter(o PlanOptions) (*filter, error) {
	f := &filter{rewrites: o.RewritePath}
	for _, s := range o.Servers {
		if strings.TrimSpace(s) == "" {
			return nil, &OptionError{Option: "server", Err: errors.New("empty server name")}
		}
		f.servers = append(f.servers, strings.ToLower(strings.TrimSpace(s)))
	}
	for _, m := range o.TargetMap {
		if m.URL == nil || m.Name == "" {
			return nil, &OptionError{Option: "target_map", Err: fmt.Errorf("target map %q: a name and a URL are needed", m.Name)}
		}
		f.targets = append(f.targets, strings.ToLower(m.Name))
	}
	if len(f.servers) > 0 && len(f.targets) > 0 {
		return nil, &OptionError{Option: "server", Err: errors.New("--server and --target-map both pick servers: map each server to its target with --target-map alone")}
	}
	for _, s := range o.Include {
		p, err := parseRequestPattern(s)
		if err != nil {
			return nil, &OptionError{Option: "include", Err: err}
		}
		f.include = append(f.include, p)
	}
	for _, s := range o.Exclude {
		p, err := parseRequestPattern(s)
		if err != nil {
			return nil, &OptionError{Option: "exclude", Err: err}
		}
		f.exclude = append(f.exclude, p)
	}
	for _, r := range o.RewritePath {
		if _, err := ParsePathRewrite(r.From + "=" + r.To); err != nil {
			return nil, &OptionError{Option: "rewrite_path", Err: err}
		}
	}
	return f, nil
}

// server decides which target a recorded exchange goes to, by its
// server: with a target map, the first mapping whose name matches (none:
// SkipNoTarget); with --server, target 0 if a name matches (none:
// SkipOtherServer); otherwise target 0.
func (f *filter) server(e *tape.Exchange) (int32, string) {
	if len(f.servers) == 0 && len(f.targets) == 0 {
		return 0, ""
	}
	k := e.ServerKey()
	for _, s := range f.servers {
		if ServerMatches(s, k) {
			return 0, ""
		}
	}
	if len(f.servers) > 0 {
		return 0, SkipOtherServer
	}
	for i, t := range f.targets {
		if ServerMatches(t, k) {
			return int32(i), ""
		}
	}
	return 0, SkipNoTarget
}

// request applies --include and --exclude to the recorded request, then
// rewrites its path (in place: e is the plan's own copy).
func (f *filter) request(e *tape.Exchange) string {
	if len(f.include) > 0 || len(f.exclude) > 0 {
		path := pathOf(e.Target)
		tmpl := route.Template(e.Target)
		for _, p := range f.exclude {
			if p.matches(e.Method, path, tmpl) {
				return SkipExcluded
			}
		}
		if len(f.include) > 0 {
			in := false
			for _, p := range f.include {
				if in = p.matches(e.Method, path, tmpl); in {
					break
				}
			}
			if !in {
				return SkipNotIncluded
			}
		}
	}
	if len(f.rewrites) > 0 {
		e.Target = rewriteTarget(e.Target, f.rewrites)
	}
	return ""
}

// ServerMatches reports whether a --server or --target-map name (a glob,
// lower case) names the server k: its address (host:port, or the address
// alone), or its host (as asked for, or without its port).
func ServerMatches(glob string, k tape.ServerKey) bool {
	try := func(s string) bool { return s != "" && Glob(glob, s) }
	if try(k.Addr) || try(k.Host) {
		return true
	}
	if h, _, err := net.SplitHostPort(k.Addr); err == nil && try(h) {
		return true
	}
	if h, _, err := net.SplitHostPort(k.Host); err == nil && try(h) {
		return true
	}
	return false
}

// Glob reports whether s matches pattern, where '*' stands for any run of
// characters ('/' included, so /api/* covers everything under /api/) and
// '?' for any one character; every other character stands for itself.
func Glob(pattern, s string) bool {
	// The classic linear matcher: on a mismatch, retry from the last '*'
	// one character further.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// globCaptures matches s against pattern as Glob does and returns what
// each '*' matched, leftmost stars matching as little as they can.
func globCaptures(pattern, s string) ([]string, bool) {
	if !Glob(pattern, s) {
		return nil, false
	}
	var caps []string
	var walk func(p, i int) bool
	walk = func(p, i int) bool {
		for p < len(pattern) {
			switch pattern[p] {
			case '*':
				for j := i; j <= len(s); j++ {
					if Glob(pattern[p+1:], s[j:]) {
						caps = append(caps, s[i:j])
						return walk(p+1, j)
					}
				}
				return false
			case '?':
				if i >= len(s) {
					return false
				}
			default:
				if i >= len(s) || s[i] != pattern[p] {
					return false
				}
			}
			p++
			i++
		}
		return i == len(s)
	}
	if !walk(0, 0) {
		return nil, false
	}
	return caps, true
}

// rewritePath applies the first rule that matches path.
func rewritePath(path string, rules []PathRewrite) string {
	for _, r := range rules {
		if !strings.Contains(r.From, "*") {
			if strings.HasPrefix(path, r.From) {
				return r.To + path[len(r.From):]
			}
			continue
		}
		caps, ok := globCaptures(r.From, path)
		if !ok {
			continue
		}
		var b strings.Builder
		n := 0
		for i := 0; i < len(r.To); i++ {
			if r.To[i] == '*' {
				b.WriteString(caps[n])
				n++
				continue
			}
			b.WriteByte(r.To[i])
		}
		return b.String()
	}
	return path
}

// rewriteTarget rewrites the path of a request target, keeping its query
// (and, for an absolute-form target, its scheme and host, which the plan
// drops later).
func rewriteTarget(target string, rules []PathRewrite) string {
	prefix, rest := "", target
	if i := strings.Index(target, "://"); i > 0 && i < 10 {
		j := strings.IndexByte(target[i+3:], '/')
		if j < 0 {
			return target
		}
		prefix, rest = target[:i+3+j], target[i+3+j:]
	}
	path, query := rest, ""
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		path, query = rest[:i], rest[i:]
	}
	return prefix + rewritePath(path, rules) + query
}

// pathOf is the path of a request target, without query or fragment, and
// without scheme and host for an absolute-form target.
func pathOf(target string) string {
	if i := strings.Index(target, "://"); i > 0 && i < 10 {
		rest := target[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "/"
		}
		target = rest[j:]
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return target
}

// planTargets lists the targets of a plan: one per target mapping, or the
// one target.
func planTargets(o PlanOptions) []Target {
	if len(o.TargetMap) == 0 {
		return []Target{{URL: o.Target}}
	}
	ts := make([]Target, len(o.TargetMap))
	for i, m := range o.TargetMap {
		ts[i] = Target{Name: m.Name, URL: m.URL}
	}
	return ts
}

// filterParams records the plan's filters and the rate cap in the
// results' parameters.
func filterParams(pa *results.Params, po PlanOptions, maxRate float64) {
	pa.Servers = slices.Clone(po.Servers)
	for _, m := range po.TargetMap {
		pa.TargetMap = append(pa.TargetMap, m.Name+"="+m.URL.String())
	}
	pa.Include, pa.Exclude = slices.Clone(po.Include), slices.Clone(po.Exclude)
	for _, r := range po.RewritePath {
		pa.RewritePath = append(pa.RewritePath, r.From+"="+r.To)
	}
	pa.MaxRate = maxRate
}

// targetText names where a run sent its requests, for the results'
// target: the one target, or every target of a target map, in order.
func targetText(p *Plan, target *url.URL) string {
	if len(p.Targets) < 2 {
		if len(p.Targets) == 1 && p.Targets[0].URL != nil {
			return p.Targets[0].URL.String()
		}
		return target.String()
	}
	names := make([]string, len(p.Targets))
	for i, t := range p.Targets {
		names[i] = t.URL.String()
	}
	return strings.Join(names, ", ")
}

// explain adds to the error of an empty plan the servers of its window,
// when a server filter left them all out: the names to pick from.
func (f *filter) explain(err error, p *Plan) error {
	if len(f.servers)+len(f.targets) == 0 || len(p.Servers) == 0 {
		return err
	}
	var names []string
	for i, sv := range p.Servers {
		if i == 10 {
			names = append(names, fmt.Sprintf("and %d more", len(p.Servers)-10))
			break
		}
		names = append(names, sv.String())
	}
	return fmt.Errorf("%w; its servers: %s (herd inspect lists them)", err, strings.Join(names, ", "))
}

// checkProtocol refuses HTTP/2 asked for where it cannot go: the HTTP/2
// engine speaks to one target, so a plan of several replays over
// HTTP/1.x (recorded HTTP/2 connections too, with --protocol auto).
func (o *Settings) checkProtocol(p *Plan) error {
	if len(p.Targets) > 1 && (o.Protocol == ProtoH2 || o.Protocol == ProtoH2C) {
		return &OptionError{Option: "protocol", Err: fmt.Errorf("HTTP/2 to several targets (--target-map) is not supported: use --protocol h1 or auto (recorded HTTP/2 connections then go over HTTP/1.1)")}
	}
	return nil
}
