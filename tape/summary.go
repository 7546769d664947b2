package tape

import (
	"context"
	"sort"
	"strconv"

	"github.com/herd-replay/herd/internal/route"
)

// Summary describes what a tape holds; it is what herd inspect shows.
type Summary struct {
	Requests    int64 // exchanges on the tape
	Responses   int64 // exchanges whose response was captured complete
	Connections int64
	First       int64 // earliest request start, Unix ns
	End         int64 // latest request or response byte, Unix ns
	ReqBytes    int64 // request line, headers and body, as sent
	RespBytes   int64 // status line, headers and body

	Methods   map[string]int64
	Statuses  map[string]int64 // by class: "2xx" ... "5xx", "1xx", "none"
	Endpoints []Endpoint       // by count, descending
	// Servers are the servers the requests went to (ServerKey), busiest
	// first.
	Servers []ServerCount

	Peak       Window // busiest second
	PeakWindow Window // busiest window of the requested length
	// Rates are the requests started in each second, from which gaps and
	// active time are derived.
	Rates Rates

	NoResponse     int64
	RespIncomplete int64
	Gaps           int64
	Redacted       int64
	BodyTruncated  int64
	Upgraded       int64

	Indexed bool
	Damage  []error
	Meta    Meta
	// MetaErr is set when the metadata block was damaged: Meta is then
	// unknown, not its zero value.
	MetaErr error
	Stats   *Stats
}

// Endpoint counts the requests of one method and route template.
type Endpoint struct {
	Method string
	Route  string
	Count  int64
}

// Duration is the span of the recording in nanoseconds.
func (s *Summary) Duration() int64 {
	if s.Requests == 0 {
		return 0
	}
	return s.End - s.First
}

// Summarize reads every record of r. window is the length in seconds of
// the busiest window to find (60 for herd inspect).
func Summarize(ctx context.Context, r *Reader, window int64) (*Summary, error) {
	s := &Summary{
		Methods:  make(map[string]int64),
		Statuses: make(map[string]int64),
		Indexed:  r.Indexed(),
		Meta:     r.Meta(),
		MetaErr:  r.MetaErr(),
	}
	if st, ok := r.Stats(); ok {
		s.Stats = &st
	}
	conns := make(map[uint64]struct{})
	type key struct{ method, route string }
	endpoints := make(map[key]int64)
	seconds := make(map[int64]int64)
	servers := NewServerCounter()
	err := r.All(ctx, func(e *Exchange) error {
		if s.Requests == 0 || e.ReqStart < s.First {
			s.First = e.ReqStart
		}
		s.End = max(s.End, e.ReqEnd, e.ReqStart)
		if e.HasResponse() {
			s.End = max(s.End, e.RespEnd)
		}
		s.Requests++
		seconds[UnixSecond(e.ReqStart)]++
		conns[e.ConnID] = struct{}{}
		servers.Add(e)
		s.Methods[e.Method]++
		endpoints[key{e.Method, route.Template(e.Target)}]++
		s.ReqBytes += int64(len(e.Method)+len(e.Target)+len(e.Proto)+4) + headerBytes(e.ReqHeader) + e.ReqBodyLen
		if e.HasResponse() {
			s.RespBytes += int64(len(e.RespProto)+6) + headerBytes(e.RespHeader) + e.RespBodyLen
		}
		switch {
		case !e.HasResponse():
			s.Statuses["none"]++
			s.NoResponse++
		case e.Status >= 100 && e.Status <= 599:
			s.Statuses[strconv.Itoa(e.Status/100)+"xx"]++
		default:
			s.Statuses["other"]++
		}
		if e.ResponseComplete() {
			s.Responses++
		}
		count := func(f Flags, n *int64) {
			if e.Flags&f != 0 {
				*n++
			}
		}
		count(RespIncomplete, &s.RespIncomplete)
		count(Gap, &s.Gaps)
		count(Redacted, &s.Redacted)
		count(ReqBodyTruncated, &s.BodyTruncated)
		count(Upgraded, &s.Upgraded)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Connections = int64(len(conns))
	s.Servers = servers.List()
	rates := ratesFromMap(seconds)
	s.Rates = rates
	s.Peak, s.PeakWindow = rates.Busiest(1), rates.BusiestActive(window, DefaultMaxIdle)
	for k, n := range endpoints {
		s.Endpoints = append(s.Endpoints, Endpoint{Method: k.method, Route: k.route, Count: n})
	}
	sort.Slice(s.Endpoints, func(i, j int) bool {
		a, b := s.Endpoints[i], s.Endpoints[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		return a.Method < b.Method
	})
	s.Damage = r.Damage()
	return s, nil
}

// Active is the recording's span without its gaps of at least minGap
// seconds: the time in which it was active. Gaps are counted in whole
// empty seconds, so Active is within a second per gap of the exact figure.
func (s *Summary) Active(minGap int64) int64 {
	d := s.Duration()
	for _, g := range s.Rates.Gaps(minGap) {
		d -= g.Seconds * 1e9
	}
	return max(d, 0)
}

// headerBytes is the size of header lines as sent: "Name: value\r\n" each,
// plus the blank line.
func headerBytes(fs []Field) int64 {
	n := int64(2)
	for _, f := range fs {
		n += int64(len(f.Name) + len(f.Value) + 4)
	}
	return n
}
