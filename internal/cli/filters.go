package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/herd-replay/herd/replay"
	"github.com/spf13/pflag"
)

// The filters herd replay, herd ramp and herd shadow share: which servers
// of a tape are replayed and where to, which requests, with what paths,
// and a hard cap on the rate.

func (f *replayFlags) addFilterFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.Servers, "server", nil, "replay only the requests to this server of the tape: its address (10.0.0.5:8080) or its Host (api.example.com), glob allowed (repeatable; herd inspect lists the servers)")
	fs.StringArrayVar(&f.TargetMap, "target-map", nil, "NAME=URL: send the requests to the servers NAME matches (as --server) to URL (repeatable, first match wins); requests of servers no entry maps are not sent (no_target). Instead of --target")
	fs.StringArrayVar(&f.Include, "include", nil, "replay only requests matching: METHOD, /PATH or 'METHOD /PATH', * matching any run of characters, tried on the path and the route template (repeatable: any)")
	fs.StringArrayVar(&f.Exclude, "exclude", nil, "leave out requests matching, as --include: '/health*', 'POST /login' (repeatable)")
	fs.StringArrayVar(&f.RewritePath, "rewrite-path", nil, "FROM=TO: rewrite recorded paths, a prefix (/v1/=/v2/) or a glob whose *s TO reuses in order ('/api/*/items=/items/*') (repeatable, first match wins)")
	fs.Float64Var(&f.MaxRate, "max-rate", 0, "hard cap in requests per second sent, retries included, on top of the schedule (bursts of a tenth of it); requests over it are not sent (max_rate); 0: no cap")
}

// validateFilters checks the filter flags' syntax and puts them in s.
func (f *replayFlags) validateFilters(s *setup) error {
	if f.Target != "" && len(f.TargetMap) > 0 {
		return usageErrorf("--target and --target-map both say where requests go: with --target-map, map every server to be replayed (a last --target-map '*=URL' catches the rest)")
	}
	if len(f.Servers) > 0 && len(f.TargetMap) > 0 {
		return usageErrorf("--server and --target-map both pick servers: with --target-map, the servers it does not map are not replayed")
	}
	if f.MaxRate < 0 {
		return usageErrorf("--max-rate must be 0 (no cap) or a positive number of requests per second")
	}
	po := &s.plan
	for _, sv := range f.Servers {
		if strings.TrimSpace(sv) == "" {
			return usageErrorf("--server is empty: give an address (10.0.0.5:8080) or a host (api.example.com), globs allowed")
		}
	}
	po.Servers = f.Servers
	for _, m := range f.TargetMap {
		name, raw, err := replay.ParseTargetMapping(m)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("--target-map: %w", err)}
		}
		u, err := parseTarget(raw)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("--target-map %q: %w", m, err)}
		}
		po.TargetMap = append(po.TargetMap, replay.TargetMapping{Name: name, URL: u})
	}
	if len(po.TargetMap) > 0 {
		// The first target stands for all where one is named (results,
		// TLS defaults); every request goes to its own.
		s.settings.Target = po.TargetMap[0].URL
	}
	po.Include, po.Exclude = f.Include, f.Exclude
	for _, r := range f.RewritePath {
		rw, err := replay.ParsePathRewrite(r)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("--rewrite-path: %w", err)}
		}
		po.RewritePath = append(po.RewritePath, rw)
	}
	s.settings.MaxRate = f.MaxRate
	return nil
}

// warnServers says on stderr where a plan's requests go: per target with
// a target map, or that a tape of several servers goes whole to one
// target.
func warnServers(w io.Writer, plan *replay.Plan, picked bool) {
	if len(plan.Targets) > 1 {
		parts := make([]string, len(plan.Targets))
		for i, t := range plan.Targets {
			parts[i] = fmt.Sprintf("%s -> %s (%d requests)", t.Name, t.URL, t.Requests)
		}
		fmt.Fprintf(w, "herd: targets: %s\n", strings.Join(parts, ", "))
	}
	if n := plan.Skipped[replay.SkipNoTarget]; n > 0 {
		fmt.Fprintf(w, "herd: %d requests to servers no --target-map entry names are not sent (no_target)\n", n)
	}
	if picked || len(plan.Servers) < 2 {
		return
	}
	var names []string
	for i, sv := range plan.Servers {
		if i == 3 {
			names = append(names, "...")
			break
		}
		names = append(names, sv.String())
	}
	fmt.Fprintf(w, "herd: warning: the window holds requests to %d servers (%s), all sent to --target; pick one with --server NAME, or map each with --target-map NAME=URL (herd inspect lists them)\n",
		len(plan.Servers), strings.Join(names, ", "))
}
