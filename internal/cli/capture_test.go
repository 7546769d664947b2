package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/capture"
	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

const edgeDir = "../../capture/testdata/edge"

func TestCaptureUsageErrors(t *testing.T) {
	pcap := filepath.Join(edgeDir, "gap.pcap")
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"capture", "-o", "x.tape"}, "say what to capture"},
		{[]string{"capture", "--pcap", pcap}, "-o OUT.tape is required"},
		{[]string{"capture", "--pcap", pcap, "-i", "lo", "--port", "80", "-o", "x.tape"}, "exclude each other"},
		{[]string{"capture", "-i", "lo", "-o", "x.tape"}, "-i needs --port"},
		{[]string{"capture", "--pcap", pcap, "--duration", "1s", "-o", "x.tape"}, "apply to live capture"},
		{[]string{"capture", "--pcap", pcap, "--port", "70000", "-o", "x.tape"}, "ports are 1..65535"},
		{[]string{"capture", "--pcap", pcap, "--max-body", "lots", "-o", "x.tape"}, "--max-body"},
		{[]string{"capture", "--pcap", pcap, "--max-body", "20MiB", "-o", "x.tape"}, "limit of 16 MiB"},
		{[]string{"capture", "--pcap", pcap, "--sample", "0", "-o", "x.tape"}, "--sample"},
		{[]string{"capture", "--pcap", pcap, "--sample", "150%", "-o", "x.tape"}, "--sample"},
		{[]string{"capture", "--pcap", pcap, "--redact-header", "(", "-o", "x.tape"}, "--redact-header"},
		{[]string{"capture", "--pcap", pcap, "--no-redact", "--redact-query", "t", "-o", "x.tape"}, "contradicts"},
		{[]string{"capture", "-i", "lo", "--port", "80", "--rotate", "sometimes", "-o", "x.tape"}, "--rotate"},
		{[]string{"capture", "-i", "lo", "--port", "80", "--max-size", "0", "-o", "x.tape"}, "--max-size"},
		{[]string{"capture", "extra.pcap", "-o", "x.tape"}, "capture files go after --pcap"},
		{[]string{"capture", "--port", "x", "--pcap", pcap, "-o", "x.tape"}, "invalid argument"},
	}
	for _, c := range cases {
		_, stderr, code := run(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.err) {
			t.Errorf("herd %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.err)
		}
	}
}

func TestCaptureInputErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.tape")
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"capture", "--pcap", "/nonexistent.pcap", "-o", out}, "no such file"},
		{[]string{"capture", "--pcap", "cli.go", "-o", out}, "not a pcap or pcapng file"},
	} {
		_, stderr, code := run(t, c.args...)
		if code != ExitFailure || !strings.Contains(stderr, c.err) {
			t.Errorf("herd %v: exit %d, stderr %q; want exit 1 and %q", c.args, code, stderr, c.err)
		}
	}
}

// maskInspect removes what changes from run to run: the tape's path, its
// size (the metadata holds the time it was written) and that time.
func maskInspect(s, tapePath string) string {
	s = strings.ReplaceAll(s, tapePath, "OUT.tape")
	s = regexp.MustCompile(`OUT\.tape \([^,]*,`).ReplaceAllString(s, "OUT.tape (size masked,")
	return regexp.MustCompile(`(?m)^written by .*$`).ReplaceAllString(s, "written by herd (masked)")
}

// TestCaptureEdgeGolden captures each edge-case capture and compares what
// herd inspect shows with its golden file.
func TestCaptureEdgeGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(edgeDir, "*.pcap"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no edge-case captures in %s (%v)", edgeDir, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pcap")
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), name+".tape")
			_, stderr, code := run(t, "capture", "--pcap", f, "-o", out)
			if code != 0 {
				t.Fatalf("capture: exit %d\n%s", code, stderr)
			}
			if !strings.Contains(stderr, "herd: captured ") {
				t.Errorf("no summary on stderr:\n%s", stderr)
			}
			st, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("tape mode %v, want 0600", st.Mode().Perm())
			}
			text, stderr, code := run(t, "inspect", out)
			if code != 0 {
				t.Fatalf("inspect: exit %d\n%s", code, stderr)
			}
			golden(t, filepath.Join("capture-edge", name+".txt"), maskInspect(text, out))
		})
	}
}

// TestCaptureSharedInspect checks that the counters reach herd inspect
// --json as the contract names them.
func TestCaptureSharedInspect(t *testing.T) {
	pcap := filepath.Join(testenv.SharedPcaps(t), "http-requests-only-unidirectional-378req.pcap")
	out := filepath.Join(t.TempDir(), "r.tape")
	if _, stderr, code := run(t, "capture", "--pcap", pcap, "-o", out); code != 0 {
		t.Fatalf("capture: exit %d\n%s", code, stderr)
	}
	js, _, code := run(t, "inspect", out, "--json")
	if code != 0 {
		t.Fatal("inspect failed")
	}
	var got struct {
		Requests  int64            `json:"requests"`
		Responses int64            `json:"responses"`
		Capture   map[string]int64 `json:"capture"`
		Discarded map[string]int64 `json:"discarded"`
		Meta      tape.Meta        `json:"meta"`
	}
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if got.Requests != 139 || got.Responses != 0 || got.Discarded["request_incomplete"] != 242 {
		t.Errorf("requests %d responses %d discarded %v; want 139, 0 and request_incomplete 242", got.Requests, got.Responses, got.Discarded)
	}
	if got.Capture["packets"] != 385 || got.Capture["exchanges"] != 139 || got.Capture["requests_without_response"] != 139 {
		t.Errorf("capture counters %v", got.Capture)
	}
	if got.Meta.Source.Kind != "pcap" || !got.Meta.Redaction.Enabled || got.Meta.Source.MaxBody != 1<<20 {
		t.Errorf("meta %+v", got.Meta)
	}
}

// TestCaptureRedactHeaderMeta: the tape's metadata records the
// --redact-header expressions as the user gave them.
func TestCaptureRedactHeaderMeta(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.tape")
	exprs := []string{`x-(a|b)-token`, `(?:session)`}
	if _, stderr, code := run(t, "capture", "--pcap", filepath.Join(edgeDir, "bodies-and-redaction.pcap"),
		"--redact-header", exprs[0], "--redact-header", exprs[1], "-o", out); code != 0 {
		t.Fatalf("capture: exit %d\n%s", code, stderr)
	}
	r, err := tape.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := r.Meta().Redaction.Headers
	if len(h) < 2 || h[len(h)-2] != "re:"+exprs[0] || h[len(h)-1] != "re:"+exprs[1] {
		t.Errorf("redacted headers in the metadata %q, want them to end with re:%s, re:%s", h, exprs[0], exprs[1])
	}
}

// slowSource replays a capture file as a live source would: a packet now
// and then, and ErrNoPacket while nothing comes, until its context ends.
type slowSource struct {
	capture.Source
	ctx   context.Context
	every time.Duration
	done  bool
}

func (s *slowSource) Next(p *capture.Packet) error {
	if s.done {
		select {
		case <-s.ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		return capture.ErrNoPacket
	}
	time.Sleep(s.every)
	err := s.Source.Next(p)
	if errors.Is(err, io.EOF) {
		s.done = true
		return capture.ErrNoPacket
	}
	return err
}

func fakeLive(t *testing.T, ctx context.Context, pcap string, every time.Duration) func(capture.LiveOptions) (capture.Source, error) {
	return func(capture.LiveOptions) (capture.Source, error) {
		src, err := capture.OpenFile(pcap)
		if err != nil {
			t.Fatal(err)
		}
		return &slowSource{Source: src, ctx: ctx, every: every}, nil
	}
}

// fakeLiveOptions sets up a live capture of the pipelining edge case,
// replayed a packet every `every`.
func fakeLiveOptions(t *testing.T, ctx context.Context, errb *bytes.Buffer, tty bool, every time.Duration) *captureOptions {
	return &captureOptions{
		IO:        IO{Out: io.Discard, Err: errb, ErrTTY: tty},
		Interface: "fake0", Ports: []int{80}, Output: filepath.Join(t.TempDir(), "live.tape"),
		MaxBody: "1MiB", StatusEvery: time.Second,
		openLive: fakeLive(t, ctx, filepath.Join(edgeDir, "pipelining.pcap"), every),
	}
}

// TestCaptureLiveStatusAndDuration runs the live path on a replayed file:
// status lines every interval when stderr is not a terminal, and a clean
// stop with the tape closed at --duration.
func TestCaptureLiveStatusAndDuration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb bytes.Buffer
	opts := fakeLiveOptions(t, ctx, &errb, false, 5*time.Millisecond)
	opts.Duration, opts.StatusEvery = 600*time.Millisecond, 100*time.Millisecond
	out := opts.Output
	if err := runCapture(ctx, opts); err != nil {
		t.Fatalf("runCapture: %v\n%s", err, errb.String())
	}
	stderr := errb.String()
	if n := strings.Count(stderr, "herd: capture: "); n < 2 {
		t.Errorf("%d status lines, want at least 2:\n%s", n, stderr)
	}
	if strings.Contains(stderr, "capturing") {
		t.Errorf("a progress bar on stderr that is not a terminal:\n%s", stderr)
	}
	if !strings.Contains(stderr, "capture stopped by --duration 600ms") || !strings.Contains(stderr, "herd: captured 6 exchanges") {
		t.Errorf("stderr:\n%s", stderr)
	}
	r, err := tape.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Indexed() {
		t.Error("tape not closed cleanly")
	}
	if st, ok := r.Stats(); !ok || st.Counters["exchanges"] != 6 {
		t.Errorf("stats %+v", st)
	}
	if m := r.Meta(); m.Source.Kind != "live" || m.Source.Interface != "fake0" || m.Source.Filter != "tcp port 80" {
		t.Errorf("meta source %+v", m.Source)
	}
}

func TestCaptureLiveMaxSizeAndTTY(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb bytes.Buffer
	opts := fakeLiveOptions(t, ctx, &errb, true, time.Millisecond)
	opts.MaxSize = "1"
	out := opts.Output
	done := make(chan error, 1)
	go func() { done <- runCapture(ctx, opts) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runCapture: %v", err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("--max-size did not stop the capture")
	}
	stderr := errb.String()
	if !strings.Contains(stderr, "capture stopped by --max-size 1") {
		t.Errorf("stderr:\n%s", stderr)
	}
	// On a terminal: the bar, with the counters, and no status lines.
	if !regexp.MustCompile(`capturing \d+ packets`).MatchString(stderr) || strings.Contains(stderr, "herd: capture: ") {
		t.Errorf("want the progress bar and no status line on a terminal; stderr:\n%q", stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("tape not closed: %v", err)
	}
}

// TestCaptureLiveSignal: a live capture ended by its context (a signal)
// says so.
func TestCaptureLiveSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb bytes.Buffer
	opts := fakeLiveOptions(t, ctx, &errb, false, time.Millisecond)
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := runCapture(ctx, opts); err != nil {
		t.Fatalf("runCapture: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "capture stopped by a signal") {
		t.Errorf("stderr:\n%s", errb.String())
	}
}

// TestCapturePcapTTY: a capture of files on a terminal shows a bar that
// ends at 100%.
func TestCapturePcapTTY(t *testing.T) {
	var errb bytes.Buffer
	opts := &captureOptions{
		IO:    IO{Out: io.Discard, Err: &errb, ErrTTY: true},
		Pcaps: []string{filepath.Join(edgeDir, "pipelining.pcap")}, Output: filepath.Join(t.TempDir(), "p.tape"),
		MaxBody: "1MiB", StatusEvery: time.Second,
	}
	if err := runCapture(context.Background(), opts); err != nil {
		t.Fatalf("runCapture: %v\n%s", err, errb.String())
	}
	if stderr := errb.String(); !strings.Contains(stderr, "100 %") || strings.Contains(stderr, "herd: capture: ") {
		t.Errorf("want a bar at 100%% and no status line; stderr:\n%q", stderr)
	}
}

// TestCaptureInterruptedPcap: Ctrl-C while reading files closes the tape
// with what was read, and exits 130.
func TestCaptureInterruptedPcap(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	path := filepath.Join(t.TempDir(), "i.tape")
	code := Main(ctx, []string{"capture", "--pcap", filepath.Join(edgeDir, "gap.pcap"), "-o", path}, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != ExitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, ExitInterrupted, errb.String())
	}
	if _, err := tape.Open(path); err != nil {
		t.Errorf("tape after interrupt: %v", err)
	}
}
