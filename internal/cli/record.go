package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/outfile"
	"github.com/herd-replay/herd/internal/units"
	"github.com/herd-replay/herd/record"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/cobra"
)

type recordOptions struct {
	IO IO

	Listen           string
	Upstream         string
	Output           string
	Force            bool
	TLSCert          string
	TLSKey           string
	Rotate           string
	Duration         time.Duration
	MaxBody          string
	UpstreamTimeout  time.Duration
	UpstreamCA       string
	UpstreamInsecure bool
	NoForwardedFor   bool
	Redact           redactFlags

	// StatusEvery is the interval of status lines when stderr is not a
	// terminal (tests shorten it).
	StatusEvery time.Duration
	// listen opens the listener (tests may replace it).
	listen func(addr string) (net.Listener, error)
}

func newRecordCmd(io IO) *cobra.Command {
	opts := &recordOptions{IO: io, StatusEvery: 5 * time.Second, listen: func(a string) (net.Listener, error) { return net.Listen("tcp", a) }}
	cmd := &cobra.Command{
		Use:   "record --listen ADDR --upstream URL -o OUT.tape",
		Short: "Record the traffic of a service as a reverse proxy in front of it",
		Long: `Record a service's traffic by standing in front of it: clients connect to
--listen, herd forwards every request to --upstream and writes each exchange
to the tape. Use it where packet capture cannot see HTTP: a service that
terminates TLS itself (give herd the certificate with --tls-cert and
--tls-key), or a pod without NET_RAW.

HTTP/1.x and HTTP/2 clients are served: HTTP/2 over TLS by ALPN, and in clear
text to clients that start with its preface (h2c, prior knowledge). Each
client connection is one connection on the tape; an HTTP/1.x client's
requests go to the upstream unchanged, in order, on a connection of its own,
with the client's address appended to X-Forwarded-For (--no-x-forwarded-for
leaves requests untouched). Times are the proxy's: when it saw each request
and response begin and end.

herd is built not to hurt the service behind it. Bodies stream through and
are never held whole (at most --max-body of each request is kept for the
tape). Every wait has a timeout: the upstream gets --upstream-timeout to
start answering (then the client gets 504). Memory is bounded: past it,
exchanges are forwarded and not recorded. If the tape cannot be written (a
full disk), herd keeps forwarding and counts what it did not record.
WebSocket and other upgrades are tunnelled and counted, not recorded.

Secrets are redacted in the tape by default, with herd capture's rules and
flags (--redact-header, --redact-query, --redact-body-field, --no-redact);
the service receives every request as the client sent it. Recording runs until Ctrl-C (SIGINT or
SIGTERM) or --duration; requests under way then get 5 seconds to finish.
--rotate SIZE|DURATION starts a new file each time: OUT.tape becomes
OUT-0001.tape, OUT-0002.tape ... An existing output is never replaced
without --force.`,
		Example: `  # In front of a local service: clients use :8080, the service moves to :9090
  herd record --listen :8080 --upstream http://127.0.0.1:9090 -o peak.tape

  # A service that terminates TLS: herd takes its certificate
  herd record --listen :443 --upstream https://127.0.0.1:8443 \
      --tls-cert /etc/tls/tls.crt --tls-key /etc/tls/tls.key -o peak.tape

  # An hour, a new file every 15 minutes
  herd record --listen :8080 --upstream http://10.0.0.7:8080 --duration 1h --rotate 15m -o peak.tape`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecord(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", "", "address to serve clients on, e.g. :8080 or 127.0.0.1:8080 (required)")
	f.StringVar(&opts.Upstream, "upstream", "", "the service: http://host:port or https://host:port (required)")
	f.StringVarP(&opts.Output, "output", "o", "", "tape file to write (required)")
	f.BoolVar(&opts.Force, "force", false, forceUsage)
	f.StringVar(&opts.TLSCert, "tls-cert", "", "serve TLS with this certificate (PEM; with --tls-key)")
	f.StringVar(&opts.TLSKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	f.StringVar(&opts.Rotate, "rotate", "", "start a new file every SIZE (100MiB) or DURATION (15m)")
	f.DurationVar(&opts.Duration, "duration", 0, "stop after this long")
	f.StringVar(&opts.MaxBody, "max-body", "1MiB", "request body bytes stored per exchange (the real length is always recorded)")
	f.DurationVar(&opts.UpstreamTimeout, "upstream-timeout", record.DefaultResponseTimeout, "time the upstream has to start answering a request; then the client gets 504")
	f.StringVar(&opts.UpstreamCA, "upstream-ca", "", "verify an https upstream with the certificates in this PEM file")
	f.BoolVar(&opts.UpstreamInsecure, "upstream-insecure", false, "do not verify an https upstream's certificate")
	f.BoolVar(&opts.NoForwardedFor, "no-x-forwarded-for", false, "forward requests without appending the client's address to X-Forwarded-For")
	opts.Redact.addFlags(f)
	return cmd
}

// recordConfig is what the flags mean, once checked.
type recordConfig struct {
	opts     record.Options
	rot      capture.Rotation
	redMeta  tape.Redaction
	upstream *url.URL
}

func (o *recordOptions) check() (recordConfig, error) {
	var c recordConfig
	switch {
	case o.Listen == "":
		return c, usageErrorf("--listen ADDR is required: where clients connect, e.g. --listen :8080")
	case o.Upstream == "":
		return c, usageErrorf("--upstream URL is required: the service, e.g. --upstream http://127.0.0.1:9090")
	case o.Output == "":
		return c, usageErrorf("-o OUT.tape is required")
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return c, usageErrorf("--tls-cert and --tls-key go together")
	case o.Duration < 0:
		return c, usageErrorf("--duration must be positive")
	case o.UpstreamTimeout <= 0:
		return c, usageErrorf("--upstream-timeout must be positive")
	case o.UpstreamCA != "" && o.UpstreamInsecure:
		return c, usageErrorf("--upstream-ca and --upstream-insecure exclude each other")
	}
	u, err := url.Parse(o.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, usageErrorf("--upstream %q: want http://host:port or https://host:port", o.Upstream)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return c, usageErrorf("--upstream %q: herd forwards each request's target as it is, so the URL takes no path", o.Upstream)
	}
	c.upstream = u
	c.opts.Upstream = u
	if u.Scheme == "http" && (o.UpstreamCA != "" || o.UpstreamInsecure) {
		return c, usageErrorf("--upstream-ca and --upstream-insecure are for an https upstream")
	}
	if c.opts.MaxBody, err = parseMaxBody(o.MaxBody); err != nil {
		return c, err
	}
	if c.rot, err = parseRotation(o.Rotate); err != nil {
		return c, err
	}
	if c.opts.Redact, c.redMeta, err = o.Redact.options(); err != nil {
		return c, err
	}
	c.opts.ResponseTimeout = o.UpstreamTimeout
	c.opts.NoForwardedFor = o.NoForwardedFor
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return c, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		c.opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	switch {
	case o.UpstreamInsecure:
		c.opts.UpstreamTLS = &tls.Config{InsecureSkipVerify: true}
	case o.UpstreamCA != "":
		pem, err := os.ReadFile(o.UpstreamCA)
		if err != nil {
			return c, fmt.Errorf("--upstream-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return c, fmt.Errorf("--upstream-ca %s: no PEM certificate in it", o.UpstreamCA)
		}
		c.opts.UpstreamTLS = &tls.Config{RootCAs: pool}
	}
	return c, nil
}

// parseRotation reads --rotate: a size (at least 1 MiB) or a duration (at
// least 1 s), as herd capture takes it.
func parseRotation(s string) (capture.Rotation, error) {
	if s == "" {
		return capture.Rotation{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < time.Second {
			return capture.Rotation{}, usageErrorf("--rotate %s: at least 1s", s)
		}
		return capture.Rotation{Every: d}, nil
	}
	if n, err := units.ParseBytes(s); err == nil && n >= 1<<20 {
		return capture.Rotation{Size: n}, nil
	}
	return capture.Rotation{}, usageErrorf("--rotate %q: want a size of at least 1MiB (100MiB) or a duration (15m)", s)
}

func runRecord(ctx context.Context, o *recordOptions) error {
	cfg, err := o.check()
	if err != nil {
		return err
	}
	if err := outfile.New(o.Force).CheckTape("-o", o.Output, cfg.rot.Size > 0 || cfg.rot.Every > 0); err != nil {
		return &UsageError{Err: err}
	}
	ln, err := o.listen(o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	meta := tape.Meta{Redaction: cfg.redMeta, Notes: []string{
		"proxy: clients on " + ln.Addr().String() + ", upstream " + cfg.upstream.String(),
		"times: when the proxy saw each request and response begin and end",
	}}
	meta.Source.Kind = "proxy"
	meta.Source.MaxBody = max(cfg.opts.MaxBody, 0)
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		meta.Source.Ports = []int{a.Port}
	}
	// Without --force a file that appears at the output's name during a
	// long recording is kept, and the tape stays NAME.partial.
	rot, err := capture.NewRotator(o.Output, meta, tape.WriterOptions{NoReplace: !o.Force}, cfg.rot)
	if err != nil {
		ln.Close()
		return err
	}

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if o.Duration > 0 {
		t := time.AfterFunc(o.Duration, func() { stop(limitReached("--duration " + o.Duration.String())) })
		defer t.Stop()
	}
	var mu sync.Mutex
	var last record.Stats
	var r rate
	view := newStatusView(o.IO, "record", 0, o.StatusEvery, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("%d connections, %d requests, %d recorded, %d not recorded, %.1f req/s",
			last.Connections, last.Requests, last.Exchanges, last.Discarded(), r.observe(time.Now(), last.Requests))
	}, nil)
	cfg.opts.Progress = func(s record.Stats) {
		mu.Lock()
		last = s
		mu.Unlock()
	}
	cfg.opts.WriteError = func(err error) {
		fmt.Fprintf(o.IO.Err, "herd: warning: the tape cannot be written (%v); forwarding goes on, and exchanges are counted as tape_write_failed\n", err)
	}
	fmt.Fprintf(o.IO.Err, "herd: recording clients on %s, forwarding to %s, into %s (Ctrl-C to stop)\n", ln.Addr(), cfg.upstream, o.Output)
	view.start()
	st, runErr := record.Run(runCtx, ln, cfg.opts, rot)
	view.stop()
	closeErr := rot.Close(st.Tape())
	writeRecordSummary(o.IO.Err, &st, rot.Files())
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("the tape is incomplete: %w", closeErr)
	}
	reason := "a signal"
	var limit limitReached
	if errors.As(context.Cause(runCtx), &limit) {
		reason = string(limit)
	}
	fmt.Fprintf(o.IO.Err, "herd: recording stopped by %s\n", reason)
	return nil
}

func writeRecordSummary(w io.Writer, st *record.Stats, files []string) {
	ts := st.Tape()
	fmt.Fprintf(w, "herd: recorded %d exchanges (%d with a complete response) of %d requests on %d connections into %s\n",
		st.Exchanges, st.Responses, st.Requests, st.Connections, strings.Join(files, ", "))
	fmt.Fprintf(w, "  counters:  %s\n", counts(ts.Counters))
	fmt.Fprintf(w, "  discarded: %s\n", counts(ts.Discarded))
	if st.UpstreamErrors+st.UpstreamTimeouts > 0 {
		fmt.Fprintf(w, "herd: warning: the upstream failed %d requests (502) and timed out on %d (504)\n", st.UpstreamErrors, st.UpstreamTimeouts)
	}
	if st.QueueFull+st.MemoryLimit > 0 {
		fmt.Fprintf(w, "herd: warning: %d exchanges were forwarded but not recorded: the tape could not keep up (queue_full, memory_limit)\n", st.QueueFull+st.MemoryLimit)
	}
}
