package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-replay/herd/importer"
	"github.com/herd-replay/herd/internal/outfile"
	"github.com/herd-replay/herd/tape"
	"github.com/spf13/cobra"
)

type importOptions struct {
	IO IO

	Files   []string
	Output  string
	Force   bool
	MaxBody string
	Redact  redactFlags

	// StatusEvery is the interval of status lines when stderr is not a
	// terminal (tests shorten it).
	StatusEvery time.Duration
}

func newImportCmd(io IO) *cobra.Command {
	opts := &importOptions{IO: io, StatusEvery: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "import FILE... -o OUT.tape",
		Short: "Turn GoReplay .gor files, HAR exports or access logs into a tape",
		Long: `Turn traffic recorded by other tools into a tape: GoReplay .gor files,
HAR exports (browsers' developer tools, Playwright, Charles, mitmproxy) and
access logs (nginx or Apache combined format, with a request time after it
or not; AWS Application Load Balancer logs). The format is read from the
content, never from the name; gzip-compressed files are read as they are.
Several files are imported in the order given, as one recording (rotated
files), and must be in the same format. - reads standard input.

Every importer streams: a file of any size imports in bounded memory.
Whatever does not become an exchange is counted by reason, printed at the
end and stored in the tape ('herd inspect' shows it).

What each format cannot say is said in the tape's notes:
  .gor   connections come from the client address and port that GoReplay
         1.2 and later encode in request ids; requests without one have a
         connection each. Requests pair with responses by id; replayed
         responses (type 3) are counted and ignored.
  HAR    entries with a connection id share it; the others have one each.
         HTTP/2 (and HTTP/3, as HTTP/2) entries keep their protocol.
  logs   no connections (one per request), no request bodies: the tape is
         marked so, and herd replay sends only requests that need no body
         unless told otherwise. Times logged to the second are spread
         evenly over their second.

Secrets are redacted by default, by name, with herd capture's rules and
flags: headers, query parameters and form, JSON and multipart body fields
whose name looks like a secret (Authorization, Cookie, *token, *secret*,
*password* ... the table is in docs/recording.md); add more with
--redact-header, --redact-query and --redact-body-field, or keep every
value with --no-redact.

An existing output is never replaced without --force, and never an input.`,
		Example: `  # A GoReplay recording (rotated files import as one)
  herd import requests_0.gor requests_1.gor -o peak.tape

  # A HAR export of a browser session
  herd import session.har -o session.tape

  # An nginx access log, compressed, and replay what it allows
  herd import access.log.1.gz -o peak.tape
  herd replay peak.tape --target http://staging:8080

  # From standard input, more secrets redacted
  zcat alb/*.log.gz | herd import - --redact-query token -o alb.tape`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("herd import needs the files to import (or - for standard input)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			return runImport(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Output, "output", "o", "", "tape file to write (required)")
	f.BoolVar(&opts.Force, "force", false, forceUsage)
	f.StringVar(&opts.MaxBody, "max-body", "1MiB", "request body bytes stored per exchange (the real length is always recorded)")
	opts.Redact.addFlags(f)
	return cmd
}

func runImport(ctx context.Context, o *importOptions) error {
	if o.Output == "" {
		return usageErrorf("-o OUT.tape is required")
	}
	for _, p := range o.Files {
		if p == "-" && len(o.Files) > 1 {
			return usageErrorf("- (standard input) cannot be combined with other files")
		}
	}
	mb, err := parseMaxBody(o.MaxBody)
	if err != nil {
		return err
	}
	redOpts, redMeta, err := o.Redact.options()
	if err != nil {
		return err
	}
	g := outfile.New(o.Force)
	g.Input(o.Files...)
	if err := g.CheckTape("-o", o.Output, false); err != nil {
		return &UsageError{Err: err}
	}

	var total int64
	var read atomic.Int64 // bytes read from the files, for the bar
	srcs := make([]importer.Source, 0, len(o.Files))
	var names []string
	for _, p := range o.Files {
		if p == "-" {
			srcs = append(srcs, importer.Source{Name: "standard input", R: o.IO.In})
			names = append(names, "-")
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			total += st.Size()
		}
		srcs = append(srcs, importer.Source{Name: p, R: &countedReader{r: f, n: &read}})
		names = append(names, filepath.Base(p))
	}
	format, srcs, err := importer.DetectAll(srcs)
	if err != nil {
		var mm *importer.MismatchError
		if errors.As(err, &mm) {
			return &UsageError{Err: err}
		}
		return err
	}

	meta := tape.Meta{Redaction: redMeta, Notes: importNotes(format)}
	meta.Source.Kind = format.Kind()
	meta.Source.Files = names
	meta.Source.MaxBody = max(mb, 0)
	meta.Source.NoRequestBodies = format.Kind() == "access-log"
	// Without --force a file that appears at the output's name meanwhile
	// is kept, and the tape stays NAME.partial.
	w, err := tape.Create(o.Output, meta, tape.WriterOptions{NoReplace: !o.Force})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.IO.Err, "herd: importing %d file(s), %s\n", len(srcs), format)

	var mu sync.Mutex
	var last importer.Stats
	view := newStatusView(o.IO, "import", total, o.StatusEvery, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("%s read, %d entries, %d exchanges, %d discarded", bytesIEC(last.Bytes), last.Entries, last.Exchanges, discardedTotal(last.Discarded))
	}, read.Load)
	view.start()
	opts := importer.Options{MaxBody: mb, Redact: redOpts, Progress: func(s importer.Stats) {
		mu.Lock()
		last = s
		mu.Unlock()
	}}
	st, res, runErr := importer.Run(ctx, format, srcs, opts, w)
	view.stop()
	w.SetStats(st.Tape())
	closeErr := w.Close()
	if runErr != nil {
		if closeErr == nil {
			fmt.Fprintf(o.IO.Err, "herd: %d exchanges imported before the error are in %s\n", st.Exchanges, o.Output)
		}
		return runErr
	}
	if closeErr != nil {
		return closeErr
	}
	writeImportSummary(o.IO.Err, &st, &res, o.Output)
	return nil
}

// importNotes are the tape's notes for a format: what it cannot say, and
// where the counts are.
func importNotes(f importer.Format) []string {
	switch f {
	case importer.GoReplay:
		return []string{"connections: requests are grouped by the client address and port GoReplay 1.2 and later encode in request ids; requests whose ids carry none have a connection each (counters: grouped_exchanges, connections)"}
	case importer.HAR:
		return []string{"connections: entries with a HAR connection id share a connection; the others have one each (counters: grouped_exchanges, connections)"}
	case importer.CombinedLog:
		return []string{"connections: access logs do not record them; every request has a connection of its own",
			"request bodies: access logs do not record them (source.no_request_bodies)",
			"times: logged to the second; the requests of each second are spread evenly over it"}
	case importer.ALBLog:
		return []string{"connections: requests are grouped by client address and port (counters: grouped_exchanges, connections)",
			"request bodies: access logs do not record them (source.no_request_bodies)",
			"response sizes: ALB's sent_bytes, headers included"}
	}
	return nil
}

func writeImportSummary(w io.Writer, st *importer.Stats, res *importer.Result, out string) {
	ts := st.Tape()
	fmt.Fprintf(w, "herd: imported %d exchanges (%d with a response) from %d entries (%s, %s) into %s\n",
		st.Exchanges, st.Responses, st.Entries, st.Format, bytesIEC(st.Bytes), out)
	fmt.Fprintf(w, "  counters:  %s\n", counts(ts.Counters))
	fmt.Fprintf(w, "  discarded: %s\n", counts(ts.Discarded))
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, x := range res.Warnings {
		fmt.Fprintf(w, "herd: warning: %s\n", x)
	}
	if st.Exchanges == 0 {
		fmt.Fprintf(w, "herd: warning: no exchange was imported; the tape is empty\n")
	}
}

func discardedTotal(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// countedReader counts the bytes read through it, for a progress bar.
type countedReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
