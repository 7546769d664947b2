package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/units"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

type captureOptions struct {
	IO IO

	Pcaps        []string
	Interface    string
	Ports        []int
	Output       string
	Duration     time.Duration
	MaxSize      string
	Rotate       string
	Keep         int
	KeepSize     string
	MaxCPU       float64
	MetricsAddr  string
	MaxBody      string
	Sample       string
	RedactHeader []string
	RedactQuery  []string
	RedactBody   []string
	NoRedact     bool
	Force        bool

	// StatusEvery is the interval of status lines when stderr is not a
	// terminal (tests shorten it).
	StatusEvery time.Duration
	// openLive opens the live source (tests may replace it).
	openLive func(capture.LiveOptions) (capture.Source, error)
}

func newCaptureCmd(io IO) *cobra.Command {
	opts := &captureOptions{IO: io, StatusEvery: 5 * time.Second, openLive: capture.OpenLive}
	cmd := &cobra.Command{
		Use:   "capture (--pcap FILE... | -i IFACE --port N) -o OUT.tape",
		Short: "Record HTTP exchanges from pcap/pcapng files or a live interface into a tape",
		Long: `Record HTTP/1.x exchanges into a tape, from pcap or pcapng files (plain or
gzip-compressed, the format is read from the magic bytes) or live from a
Linux interface (AF_PACKET, needs root or CAP_NET_RAW).

Both directions of every TCP connection are reassembled (retransmissions,
reordering, captures that start mid-connection), requests are paired with
their responses in order (keep-alive, pipelining), and every request whose
line, headers and body were captured becomes one exchange. Whatever is not
recorded is counted by reason, printed at the end and stored in the tape:
'herd inspect' shows it.

Secrets are redacted by default, chosen by name: headers, query parameters
(of the target, Referer and Location) and form, JSON and multipart body
fields whose name looks like a secret (Authorization, Cookie, *token,
*secret*, *password*, *apikey*, *session*, sig, auth ... the table is in
docs/recording.md). A value becomes herd-redacted:L16:0123456789abcdef: its
length class and a keyed hash, so equal secrets stay equal and different
ones differ. Add header expressions with --redact-header, query and body
name patterns with --redact-query and --redact-body-field, or keep
everything with --no-redact. herd inspect shows what was redacted.

The tape is never written over an existing file without --force, and never
over an input.

Several --pcap files are read in the order given, as one capture (rotated
tcpdump files). With --port only connections to those ports are recorded and
their side is the server; without it, every TCP port is examined and the side
that sends a request line is the client.

A live capture runs until Ctrl-C (SIGINT or SIGTERM), --duration or
--max-size, and then closes the tape cleanly. --rotate SIZE|DURATION starts a
new file each time: OUT.tape becomes OUT-0001.tape, OUT-0002.tape ...

As a long-running agent (a sidecar or a DaemonSet next to production):
--keep N and --keep-size BYTES delete the oldest rotated files (never the one
being written); --max-cpu CORES keeps the capture within a CPU budget by
sampling fewer new connections (halving the rate, counted, and starting a new
file that states it; a connection being recorded is never cut), and raises it
back when the load falls; --metrics-addr ADDR serves OpenMetrics counters on
/metrics for Prometheus. SIGTERM, which Kubernetes sends before it stops a
pod, closes the current tape cleanly.`,
		Example: `  # From a tcpdump capture (tcpdump -i eth0 -w peak.pcap 'tcp port 8080')
  herd capture --pcap peak.pcap --port 8080 -o peak.tape

  # Straight from tcpdump, through a pipe
  tcpdump -i eth0 -w - 'tcp port 80' | herd capture --pcap - --port 80 -o peak.tape

  # Several rotated files, all ports, keep whole connections of 10%
  herd capture --pcap dump0.pcap dump1.pcap.gz --sample 10 -o sample.tape

  # Live on eth0 for ten minutes, at most 2 GiB, a new file every 100 MiB
  sudo herd capture -i eth0 --port 80 --port 443 --duration 10m --max-size 2GiB --rotate 100MiB -o peak.tape

  # An agent: hourly files, the last 48 kept, at most half a core, metrics for Prometheus
  herd capture -i eth0 --port 8080 --rotate 1h --keep 48 --max-cpu 0.5 \
      --metrics-addr :9090 -o /tapes/prod.tape

  # More secrets: a header pattern, a query parameter, body fields
  herd capture --pcap peak.pcap --redact-header 'x-tenant-.*' --redact-query code \
      --redact-body-field 'card*' -o peak.tape`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if len(opts.Pcaps) == 0 {
					return usageErrorf("unexpected arguments %q: capture files go after --pcap", args)
				}
				opts.Pcaps = append(opts.Pcaps, args...)
			}
			return runCapture(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Pcaps, "pcap", nil, "read these pcap/pcapng files, or - for standard input (repeatable; more files may follow as arguments)")
	f.StringVarP(&opts.Interface, "interface", "i", "", "capture live on this interface (Linux)")
	f.IntSliceVar(&opts.Ports, "port", nil, "server port (repeatable); required with -i")
	f.StringVarP(&opts.Output, "output", "o", "", "tape file to write (required)")
	f.DurationVar(&opts.Duration, "duration", 0, "live: stop after this long")
	f.StringVar(&opts.MaxSize, "max-size", "", "live: stop once the tape files hold this many bytes (e.g. 500MB, 2GiB)")
	f.StringVar(&opts.Rotate, "rotate", "", "live: start a new file every SIZE (100MiB) or DURATION (15m)")
	f.IntVar(&opts.Keep, "keep", 0, "with --rotate: keep at most this many files, deleting the oldest (never the one being written)")
	f.StringVar(&opts.KeepSize, "keep-size", "", "with --rotate: keep at most this many bytes of files (e.g. 20GiB), deleting the oldest")
	f.Float64Var(&opts.MaxCPU, "max-cpu", 0, "with --rotate: CPU budget in cores (e.g. 0.5): above it, sample fewer new connections")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "live: serve OpenMetrics counters on http://ADDR/metrics (e.g. :9090)")
	f.StringVar(&opts.MaxBody, "max-body", "1MiB", "request body bytes stored per exchange (the real length is always recorded)")
	f.StringVar(&opts.Sample, "sample", "", "keep this percentage of connections, whole (e.g. 10 or 10%)")
	f.StringArrayVar(&opts.RedactHeader, "redact-header", nil, "also redact headers whose name matches this regular expression (repeatable)")
	f.StringArrayVar(&opts.RedactQuery, "redact-query", nil, "also redact query parameters whose name matches this pattern ('*' for any run; repeatable)")
	f.StringArrayVar(&opts.RedactBody, "redact-body-field", nil, "also redact form, JSON and multipart body fields whose name matches this pattern ('*' for any run; repeatable)")
	f.BoolVar(&opts.NoRedact, "no-redact", false, "record every value as sent, secrets included")
	f.BoolVar(&opts.Force, "force", false, "replace an existing tape (never an input)")
	return cmd
}

// captureConfig is what the flags mean, once checked.
type captureConfig struct {
	live      bool
	opts      capture.Options
	rot       capture.Rotation
	maxSize   int64
	redaction tape.Redaction // the rules, for the tape's metadata
}

func (o *captureOptions) check() (captureConfig, error) {
	var c captureConfig
	switch {
	case len(o.Pcaps) == 0 && o.Interface == "":
		return c, usageErrorf("say what to capture: --pcap FILE... or -i IFACE --port N")
	case len(o.Pcaps) > 0 && o.Interface != "":
		return c, usageErrorf("--pcap and -i exclude each other: capture from files or from an interface")
	case o.Output == "":
		return c, usageErrorf("-o OUT.tape is required")
	}
	for _, p := range o.Pcaps {
		if p == "-" && len(o.Pcaps) > 1 {
			return c, usageErrorf("--pcap - (standard input) cannot be combined with other files")
		}
	}
	c.live = o.Interface != ""
	if c.live && len(o.Ports) == 0 {
		return c, usageErrorf("-i needs --port: a live capture records the traffic of known server ports")
	}
	if !c.live && (o.Duration != 0 || o.MaxSize != "" || o.Rotate != "" || o.MetricsAddr != "") {
		return c, usageErrorf("--duration, --max-size, --rotate and --metrics-addr apply to live capture (-i), not to --pcap")
	}
	if o.Rotate == "" && (o.Keep != 0 || o.KeepSize != "" || o.MaxCPU != 0) {
		return c, usageErrorf("--keep, --keep-size and --max-cpu need --rotate: they act on rotated files (a change of sampling rate starts a new file)")
	}
	if o.Keep < 0 {
		return c, usageErrorf("--keep %d: want a number of files, at least 1", o.Keep)
	}
	c.rot.Keep = o.Keep
	if o.KeepSize != "" {
		n, err := units.ParseBytes(o.KeepSize)
		if err != nil || n <= 0 {
			return c, usageErrorf("--keep-size %q: want a positive size such as 20GiB", o.KeepSize)
		}
		c.rot.KeepSize = n
	}
	if o.MaxCPU < 0 || o.MaxCPU > 1024 {
		return c, usageErrorf("--max-cpu %g: want cores, such as 0.5", o.MaxCPU)
	}
	c.opts.MaxCPU = o.MaxCPU
	if o.Duration < 0 {
		return c, usageErrorf("--duration must be positive")
	}
	for _, p := range o.Ports {
		if p < 1 || p > 65535 {
			return c, usageErrorf("--port %d: ports are 1..65535", p)
		}
	}
	if len(o.Ports) > 64 {
		return c, usageErrorf("at most 64 --port values")
	}
	c.opts.Ports = o.Ports
	mb, err := units.ParseBytes(o.MaxBody)
	if err != nil {
		return c, usageErrorf("--max-body: %v", err)
	}
	if mb > tape.MaxStoredBody {
		return c, usageErrorf("--max-body %s is above the tape's limit of 16 MiB", o.MaxBody)
	}
	c.opts.MaxBody = mb
	if mb == 0 {
		c.opts.MaxBody = -1 // store no body
	}
	if o.Sample != "" {
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(o.Sample), "%"), 64)
		if err != nil || v <= 0 || v > 100 {
			return c, usageErrorf("--sample %q: want a percentage above 0 and at most 100", o.Sample)
		}
		c.opts.SamplePct = v
	}
	if c.redaction, err = o.redaction(); err != nil {
		return c, err
	}
	c.opts.Redact = o.redactOptions()
	if o.MaxSize != "" {
		if c.maxSize, err = units.ParseBytes(o.MaxSize); err != nil || c.maxSize <= 0 {
			return c, usageErrorf("--max-size %q: want a positive size such as 500MB", o.MaxSize)
		}
	}
	if o.Rotate != "" {
		if d, err := time.ParseDuration(o.Rotate); err == nil {
			if d < time.Second {
				return c, usageErrorf("--rotate %s: at least 1s", o.Rotate)
			}
			c.rot.Every = d
		} else if n, err := units.ParseBytes(o.Rotate); err == nil && n >= 1<<20 {
			c.rot.Size = n
		} else {
			return c, usageErrorf("--rotate %q: want a size of at least 1MiB (100MiB) or a duration (15m)", o.Rotate)
		}
	}
	return c, nil
}

func runCapture(ctx context.Context, o *captureOptions) error {
	cfg, err := o.check()
	if err != nil {
		return err
	}
	if err := o.checkOutput(cfg.rot != (capture.Rotation{})); err != nil {
		return err
	}
	meta := tape.Meta{Redaction: cfg.redaction}
	meta.Source.Ports = o.Ports
	meta.Source.SamplePct = cfg.opts.SamplePct
	meta.Source.MaxBody = max(cfg.opts.MaxBody, 0)

	var src capture.Source
	var total int64 // bytes to read, for the progress bar
	if cfg.live {
		meta.Source.Kind, meta.Source.Interface = "live", o.Interface
		meta.Source.Filter = portFilterText(o.Ports)
		src, err = o.openLive(capture.LiveOptions{Interface: o.Interface, Ports: o.Ports})
	} else {
		meta.Source.Kind = "pcap"
		for _, p := range o.Pcaps {
			meta.Source.Files = append(meta.Source.Files, filepath.Base(p))
			if st, err := os.Stat(p); err == nil && p != "-" {
				total += st.Size()
			}
		}
		if len(o.Pcaps) == 1 && o.Pcaps[0] == "-" {
			src, err = capture.NewReader("standard input", o.IO.In)
		} else {
			src, err = capture.OpenFiles(o.Pcaps)
		}
	}
	if err != nil {
		return err
	}
	defer src.Close()

	view := newCaptureView(o.IO, total, o.StatusEvery)
	var rotp atomic.Pointer[capture.Rotator]
	if o.MetricsAddr != "" {
		// Listening first: a taken address fails before any file exists.
		info := func() capture.RotatorInfo {
			if r := rotp.Load(); r != nil {
				return r.Info()
			}
			return capture.RotatorInfo{}
		}
		addr, stopMetrics, err := serveMetrics(ctx, o.MetricsAddr, captureMetrics{stats: view.snapshot, rot: info, iface: o.Interface}, o.IO.Err)
		if err != nil {
			return err
		}
		defer stopMetrics()
		fmt.Fprintf(o.IO.Err, "herd: metrics on http://%s/metrics\n", addr)
	}
	// Without --force a file that appears at the output's name during a
	// long capture is kept, and the tape stays NAME.partial.
	rot, err := capture.NewRotator(o.Output, meta, tape.WriterOptions{NoReplace: !o.Force}, cfg.rot)
	if err != nil {
		return err
	}
	rotp.Store(rot)
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if cfg.live && o.Duration > 0 {
		t := time.AfterFunc(o.Duration, func() { stop(limitReached("--duration " + o.Duration.String())) })
		defer t.Stop()
	}
	var sink capture.Sink = rot
	if cfg.maxSize > 0 {
		sink = &sizeLimit{Rotator: rot, max: cfg.maxSize, stop: func() { stop(limitReached("--max-size " + o.MaxSize)) }}
	}

	view.start()
	st, runErr := capture.Run(runCtx, src, cfg.opts, sink, view.update)
	view.stop()
	closeErr := rot.Close(st.Tape())

	interrupted := runErr != nil && errors.Is(runErr, context.Canceled)
	if runErr != nil && !interrupted {
		if closeErr == nil {
			fmt.Fprintf(o.IO.Err, "herd: %d exchanges before the error are in %s\n", st.Exchanges, strings.Join(rot.Files(), ", "))
		}
		return runErr
	}
	if closeErr != nil {
		return closeErr
	}
	writeCaptureSummary(o.IO.Err, st, rot.Files())
	if interrupted {
		if cfg.live {
			// A live capture is meant to be ended: by a signal, --duration
			// or --max-size, whichever came first. The tape is complete.
			reason := "a signal"
			var limit limitReached
			if errors.As(context.Cause(runCtx), &limit) {
				reason = string(limit)
			}
			fmt.Fprintf(o.IO.Err, "herd: capture stopped by %s\n", reason)
			return nil
		}
		return runErr
	}
	return nil
}

// portFilterText describes the kernel filter for the tape's metadata.
func portFilterText(ports []int) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = "tcp port " + strconv.Itoa(p)
	}
	return strings.Join(parts, " or ")
}

// limitReached is the cause a live capture is cancelled with when one of
// its limits ends it; it names the limit.
type limitReached string

func (l limitReached) Error() string { return string(l) }

// sizeLimit stops the capture once the tape files reach a size.
type sizeLimit struct {
	*capture.Rotator
	max  int64
	stop func()
}

func (s *sizeLimit) Write(e *tape.Exchange) error {
	if err := s.Rotator.Write(e); err != nil {
		return err
	}
	if s.Rotator.Size() >= s.max {
		s.stop()
	}
	return nil
}

// captureView shows progress on stderr: a bar on a terminal, else a status
// line every few seconds.
type captureView struct {
	io    IO
	total int64 // bytes of the capture files; 0 when live or unknown
	every time.Duration

	mu   sync.Mutex
	last capture.Stats

	done chan struct{}
	wg   sync.WaitGroup
	p    *mpb.Progress
	bar  *mpb.Bar
}

func newCaptureView(io IO, total int64, every time.Duration) *captureView {
	return &captureView{io: io, total: total, every: every, done: make(chan struct{})}
}

// update is called by the capture, from the goroutine that runs it, with
// the counters so far.
func (v *captureView) update(p capture.Stats) {
	v.mu.Lock()
	v.last = p
	v.mu.Unlock()
	if v.bar != nil && v.total > 0 {
		// Packet bytes stand for file bytes (record headers aside): close
		// enough for a bar, never past its end.
		v.bar.SetCurrent(min(p.Bytes, v.total-1))
	}
}

func (v *captureView) snapshot() capture.Stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last
}

// rate tracks exchanges per second between two looks.
type rate struct {
	at    time.Time
	count int64
	rps   float64
}

func (r *rate) observe(now time.Time, count int64) float64 {
	if !r.at.IsZero() {
		if dt := now.Sub(r.at).Seconds(); dt > 0 {
			r.rps = float64(count-r.count) / dt
		}
	}
	r.at, r.count = now, count
	return r.rps
}

func progressLine(p capture.Stats, rps float64) string {
	return fmt.Sprintf("%d packets, %s, %d exchanges, %d drops, %.1f req/s",
		p.Packets, bytesIEC(p.Bytes), p.Exchanges, p.KernelDrops, rps)
}

func (v *captureView) start() {
	if v.io.ErrTTY {
		v.startBar()
		return
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		t := time.NewTicker(v.every)
		defer t.Stop()
		var r rate
		r.observe(time.Now(), 0)
		for {
			select {
			case <-v.done:
				return
			case now := <-t.C:
				p := v.snapshot()
				fmt.Fprintf(v.io.Err, "herd: capture: %s\n", progressLine(p, r.observe(now, p.Exchanges)))
			}
		}
	}()
}

func (v *captureView) startBar() {
	// ErrTTY already decided there is a terminal; auto refresh on makes the
	// bar draw to whatever writer it is given (on its own, mpb draws only
	// to a terminal it recognises).
	v.p = mpb.New(mpb.WithOutput(v.io.Err), mpb.WithWidth(40), mpb.WithRefreshRate(250*time.Millisecond), mpb.WithAutoRefresh())
	var r rate
	var rmu sync.Mutex
	info := decor.Any(func(decor.Statistics) string {
		p := v.snapshot()
		rmu.Lock()
		rps := r.observe(time.Now(), p.Exchanges)
		rmu.Unlock()
		return progressLine(p, rps)
	})
	if v.total <= 0 {
		v.bar = v.p.New(0, mpb.SpinnerStyle(), mpb.PrependDecorators(decor.Name("capturing ")), mpb.AppendDecorators(info))
	} else {
		v.bar = v.p.AddBar(v.total, mpb.PrependDecorators(decor.Percentage(decor.WCSyncSpace)), mpb.AppendDecorators(info))
	}
}

func (v *captureView) stop() {
	close(v.done)
	v.wg.Wait()
	if v.p != nil {
		if v.total > 0 {
			v.bar.SetCurrent(v.total)
		}
		v.bar.Abort(false)
		v.p.Wait()
	}
}

// writeCaptureSummary prints the final counters for people.
func writeCaptureSummary(w io.Writer, st capture.Stats, files []string) {
	ts := st.Tape()
	fmt.Fprintf(w, "herd: captured %d exchanges (%d with a complete response) from %d packets (%s) into %s\n",
		st.Exchanges, st.Responses, st.Packets, bytesIEC(st.Bytes), strings.Join(files, ", "))
	fmt.Fprintf(w, "  counters:  %s\n", counts(ts.Counters))
	fmt.Fprintf(w, "  discarded: %s\n", counts(ts.Discarded))
	if st.SampleReductions > 0 {
		fmt.Fprintf(w, "herd: --max-cpu lowered the sampling rate %d times; it ended at %g%% of new connections (each file states its rate)\n", st.SampleReductions, st.SamplePct)
	}
	if st.KernelDrops > 0 {
		fmt.Fprintf(w, "herd: warning: the kernel dropped %d packets (the capture could not keep up); exchanges they carried are incomplete or missing\n", st.KernelDrops)
	}
	if st.TruncatedFiles > 0 {
		fmt.Fprintf(w, "herd: warning: %d capture file(s) end inside a packet record (cut short); everything before the cut was read\n", st.TruncatedFiles)
	}
	if st.TruncatedPackets > 0 {
		fmt.Fprintf(w, "herd: warning: %d packets were cut by the capture's snap length; capture with -s 0 to record whole packets\n", st.TruncatedPackets)
	}
}
