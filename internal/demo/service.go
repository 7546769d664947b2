package demo

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ServiceConfig sets the demo service's hidden limit: Slots database reader
// slots, each query holding one for Query, and MaxWait, the longest a
// request waits for a slot before it is refused (0: no bound, the service
// "as it was" in the retry story: it has no timeout, and a request whose
// client gave up is still run when its turn comes).
type ServiceConfig struct {
	Slots   int
	Query   time.Duration
	MaxWait time.Duration
	// Fixed serves each route with its Fixed query count: the fix that cut
	// /login's queries.
	Fixed bool
}

// DefaultService is the configuration herd demo runs.
func DefaultService() ServiceConfig {
	return ServiceConfig{Slots: 8, Query: 4800 * time.Microsecond, MaxWait: 800 * time.Millisecond}
}

// Service is a small HTTP application that fails the way the login outage
// did. Each request runs its route's database queries on one reader slot,
// back to back, first come first served, and /login makes dozens of them;
// a request that would wait longer than MaxWait for a slot is refused with
// 503 at once, as a connection pool with an acquire timeout does. Fine at
// the recorded peak, it queues and then sheds load a little above it.
//
// Refusals depend on the wait alone, never on the route, so the requests
// completed past capacity have the mix that was offered and the capacity
// for that mix stays exact. (Shedding expensive requests first would
// complete more, cheaper ones, and the truth would depend on the shedding.)
//
// The slots are simulated exactly: the service keeps the time at which
// each slot next becomes free, so a request knows its wait on arrival and
// holds its slot for exactly queries × Query, however late the Go timer
// that ends its sleep fires. Its capacity for a mix of requests is
// therefore known: Capacity.
type Service struct {
	cfg   ServiceConfig
	epoch time.Time

	mu   sync.Mutex
	free slotHeap // when each slot is next free, ns since epoch

	statsMu sync.Mutex
	served  map[string]int64
	refused map[string]int64
}

type slotHeap []int64

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h slotHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *slotHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *slotHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// NewService makes a service; Serve starts it.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	return &Service{
		cfg: cfg, epoch: time.Now(), free: make(slotHeap, cfg.Slots),
		served: map[string]int64{}, refused: map[string]int64{},
	}
}

// Queries is how many queries a request to method and target runs, and the
// route serving it ("" for none).
func (s *Service) Queries(method, target string) (int, string) {
	r := RouteOf(method, target)
	if r == nil {
		return 0, ""
	}
	if s.cfg.Fixed {
		return r.Fixed, r.Path
	}
	return r.Queries, r.Path
}

// Capacity is the highest rate of successful responses, in requests per
// second, that the service sustains for a mix of requests (counts by
// "METHOD /route", route templates as herd reports them): its reader slots
// are all busy when slots / (query time × mean queries per request)
// requests arrive per second.
func (s *Service) Capacity(mix map[string]int64) float64 {
	var n, q float64
	for key, c := range mix {
		method, path, _ := strings.Cut(key, " ")
		qs, _ := s.Queries(method, path)
		n += float64(c)
		q += float64(c) * float64(qs)
	}
	if q == 0 {
		return 0
	}
	return float64(s.cfg.Slots) / (s.cfg.Query.Seconds() * q / n)
}

// admit reserves a slot for work, first come first served, and returns
// when the work starts, or false when the wait would pass MaxWait.
func (s *Service) admit(now int64, work time.Duration) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := max(now, s.free[0])
	if s.cfg.MaxWait > 0 && time.Duration(start-now) > s.cfg.MaxWait {
		return 0, false
	}
	s.free[0] = start + int64(work)
	heap.Fix(&s.free, 0)
	return start, true
}

func (s *Service) count(m map[string]int64, key string) {
	s.statsMu.Lock()
	m[key]++
	s.statsMu.Unlock()
}

func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_demo/config" {
		s.writeConfig(w)
		return
	}
	q, path := s.Queries(r.Method, r.URL.RequestURI())
	key := r.Method + " " + path
	if path == "" {
		http.NotFound(w, r)
		return
	}
	if q > 0 {
		work := time.Duration(q) * s.cfg.Query
		now := int64(time.Since(s.epoch))
		start, ok := s.admit(now, work)
		if !ok {
			s.count(s.refused, key)
			http.Error(w, "database reader pool exhausted", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(time.Until(s.epoch.Add(time.Duration(start) + work)))
	}
	s.count(s.served, key)
	w.Header().Set("Content-Type", "application/json")
	if path == "/api/items/:id" && strings.HasPrefix(r.URL.Path, "/api/items/0") {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"no such item"}`)
		return
	}
	fmt.Fprintf(w, `{"ok":true,"queries":%d}`, q)
}

func (s *Service) writeConfig(w http.ResponseWriter) {
	type route struct {
		Method  string `json:"method"`
		Path    string `json:"path"`
		Queries int    `json:"queries"`
	}
	out := struct {
		Slots   int              `json:"slots"`
		QueryMS float64          `json:"query_ms"`
		WaitMS  float64          `json:"max_wait_ms"`
		Fixed   bool             `json:"fixed"`
		Routes  []route          `json:"routes"`
		Served  map[string]int64 `json:"served"`
		Refused map[string]int64 `json:"refused"`
	}{Slots: s.cfg.Slots, QueryMS: float64(s.cfg.Query) / 1e6, WaitMS: float64(s.cfg.MaxWait) / 1e6, Fixed: s.cfg.Fixed}
	for _, r := range Routes {
		q := r.Queries
		if s.cfg.Fixed {
			q = r.Fixed
		}
		out.Routes = append(out.Routes, route{r.Method, r.Path, q})
	}
	s.statsMu.Lock()
	out.Served, out.Refused = s.served, s.refused
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
	s.statsMu.Unlock()
}

// Start serves on a free port of 127.0.0.1 until ctx is done, and returns
// the service's URL and a channel that receives Serve's result when it
// ends.
func (s *Service) Start(ctx context.Context) (*url.URL, <-chan error, error) {
	addr := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { addr <- a }) }()
	select {
	case a := <-addr:
		return &url.URL{Scheme: "http", Host: a.String()}, served, nil
	case err := <-served:
		return nil, nil, err
	}
}

// Serve listens on addr (127.0.0.1:0 for any free port) until ctx is done.
// ready receives the address once it listens.
func (s *Service) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo service: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if ready != nil {
		ready(ln.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
