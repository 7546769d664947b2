package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/version"
)

// captureMetrics is what a capture's metrics endpoint shows: the latest
// counters and what the rotator did.
type captureMetrics struct {
	stats func() capture.Stats
	rot   func() capture.RotatorInfo
	iface string
}

// writeCaptureMetrics renders the capture's state as an OpenMetrics text
// exposition.
func writeCaptureMetrics(w io.Writer, m captureMetrics) error {
	st, ri := m.stats(), m.rot()
	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# TYPE %s %s\n# HELP %s %s\n", name, typ, name, help)
	}
	sample := func(name, labels string, v float64) {
		if labels != "" {
			labels = "{" + labels + "}"
		}
		fmt.Fprintf(&b, "%s%s %s\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64))
	}
	counter := func(name, help string, v int64) {
		family(name, "counter", help)
		sample(name+"_total", "", float64(v))
	}
	family("herd_capture_build", "info", "The herd that captures.")
	sample("herd_capture_build_info", fmt.Sprintf(`version=%q,commit=%q,interface=%q`, version.String(), version.CommitID(), m.iface), 1)
	counter("herd_capture_packets", "Packets read from the interface.", st.Packets)
	counter("herd_capture_bytes", "Captured bytes of those packets.", st.Bytes)
	family("herd_capture_packets_dropped", "counter", "Packets not recorded, by cause: kernel (the ring was full: herd did not keep up), malformed, ip_fragment, truncated (cut by the snap length).")
	for _, c := range []struct {
		cause string
		n     int64
	}{{"kernel", st.KernelDrops}, {"malformed", st.MalformedPackets}, {"ip_fragment", st.IPFragments}, {"truncated", st.TruncatedPackets}} {
		sample("herd_capture_packets_dropped_total", fmt.Sprintf("cause=%q", c.cause), float64(c.n))
	}
	counter("herd_capture_connections", "TCP connections seen.", st.TCPConnections)
	counter("herd_capture_connections_sampled_out", "Connections left out by sampling (--sample, --max-cpu).", st.SampledOut)
	family("herd_capture_requests_discarded", "counter", "Requests seen and not recorded, by reason (docs/recording.md).")
	disc := st.Tape().Discarded
	for _, k := range slices.Sorted(maps.Keys(disc)) {
		sample("herd_capture_requests_discarded_total", fmt.Sprintf("reason=%q", k), float64(disc[k]))
	}
	counter("herd_capture_exchanges", "Exchanges written to tapes.", st.Exchanges)
	counter("herd_capture_tape_bytes", "Bytes written to tape files, deleted ones included.", ri.Bytes)
	counter("herd_capture_tapes_written", "Tape files created, the one being written included.", int64(ri.Opened))
	counter("herd_capture_tapes_deleted", "Tape files deleted by --keep or --keep-size.", int64(ri.Deleted))
	pct := st.SamplePct
	if pct <= 0 {
		pct = 100
	}
	family("herd_capture_sample_ratio", "gauge", "Fraction of new connections recorded now (--sample, lowered by --max-cpu).")
	sample("herd_capture_sample_ratio", "", pct/100)
	counter("herd_capture_sample_reductions", "Times --max-cpu lowered the sampling rate.", st.SampleReductions)
	b.WriteString("# EOF\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// serveMetrics listens on addr and serves the metrics on /metrics until
// ctx ends. It returns once listening, with the address it listens on.
func serveMetrics(ctx context.Context, addr string, m captureMetrics, errw io.Writer) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
		writeCaptureMetrics(w, m)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(errw, "herd: warning: metrics endpoint: %v\n", err)
		}
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
	}
	return ln.Addr().String(), stop, nil
}
