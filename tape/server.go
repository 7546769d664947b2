package tape

import (
	"sort"
	"strings"
)

// Which server an exchange went to is said two ways: the address the
// client connected to (Server, host:port, when the way in knew it) and the
// name it asked for (the Host header, HTTP/2's :authority, or the host of
// an absolute-form target). A capture without a port filter, a proxy in
// front of several hosts or the access log of a shared ingress holds
// several servers; inspect lists them and replay picks or maps them by
// either name.

// ServerAddr is the recorded server address as host:port ("10.0.0.5:8080",
// "[::1]:8080"), or "" when the way in did not record one.
func (e *Exchange) ServerAddr() string {
	if !e.Server.IsValid() || !e.Server.Addr().IsValid() {
		return ""
	}
	return e.Server.String()
}

// Authority is the host the request named, in lower case: :authority for
// HTTP/2, else the Host header, else the host of an absolute-form target;
// "" when it named none.
func (e *Exchange) Authority() string {
	name := "Host"
	if e.IsHTTP2() {
		name = ":authority"
	}
	h, ok := e.Header(name)
	if !ok && e.IsHTTP2() {
		h, ok = e.Header("Host")
	}
	if !ok || h == "" {
		if i := strings.Index(e.Target, "://"); i > 0 && i < 10 {
			rest := e.Target[i+3:]
			if j := strings.IndexAny(rest, "/?#"); j >= 0 {
				rest = rest[:j]
			}
			if k := strings.LastIndexByte(rest, '@'); k >= 0 {
				rest = rest[k+1:]
			}
			h = rest
		}
	}
	return strings.ToLower(strings.TrimSpace(h))
}

// ServerKey names one server of a tape: the address connected to and the
// host asked for, either of which may be empty.
type ServerKey struct {
	Addr string
	Host string
}

// Server is the key of e's server.
func (e *Exchange) ServerKey() ServerKey { return ServerKey{Addr: e.ServerAddr(), Host: e.Authority()} }

func (k ServerKey) String() string {
	switch {
	case k.Addr == "" && k.Host == "":
		return "(unknown)"
	case k.Addr == "":
		return k.Host
	case k.Host == "":
		return k.Addr
	}
	return k.Host + " at " + k.Addr
}

// ServerCount is one server's share of a tape.
type ServerCount struct {
	ServerKey
	Requests    int64
	Connections int64
}

// OtherServers names the servers beyond MaxServers in a summary.
const OtherServers = "(other)"

// MaxServers bounds the servers a summary tells apart: a capture of a
// shared ingress whose Host headers are all different (random subdomains)
// must not grow without end. The rest are counted as one, OtherServers.
const MaxServers = 10000

// ServerCounter counts requests and connections by server.
type ServerCounter struct {
	byKey map[ServerKey]*serverAgg
}

type serverAgg struct {
	requests int64
	conns    map[uint64]struct{}
}

func NewServerCounter() *ServerCounter { return &ServerCounter{byKey: map[ServerKey]*serverAgg{}} }

func (c *ServerCounter) Add(e *Exchange) {
	k := e.ServerKey()
	a := c.byKey[k]
	if a == nil {
		if len(c.byKey) >= MaxServers {
			k = ServerKey{Host: OtherServers}
			a = c.byKey[k]
		}
		if a == nil {
			a = &serverAgg{conns: map[uint64]struct{}{}}
			c.byKey[k] = a
		}
	}
	a.requests++
	a.conns[e.ConnID] = struct{}{}
}

// List returns the servers, busiest first.
func (c *ServerCounter) List() []ServerCount {
	out := make([]ServerCount, 0, len(c.byKey))
	for k, a := range c.byKey {
		out = append(out, ServerCount{ServerKey: k, Requests: a.requests, Connections: int64(len(a.conns))})
	}
	sortServers(out)
	return out
}

func sortServers(s []ServerCount) {
	sort.Slice(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Addr < b.Addr
	})
}
