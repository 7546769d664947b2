package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/herd-replay/herd/internal/tapetest"
	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// requestCounter is a real server on 127.0.0.1 that counts each request
// by method and target, as it received them.
func requestCounter(t *testing.T) (*httptest.Server, func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.RequestURI]++
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]int, len(seen))
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

func originForm(target string) string {
	if i := strings.Index(target, "://"); i > 0 {
		rest := target[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return target
}

// TestImportReplay imports real files of other tools, replays the tapes
// against a server on 127.0.0.1, and checks the server received exactly
// the requests the tape holds (for a log: those that need no body).
func TestImportReplay(t *testing.T) {
	dir := testenv.SharedImports(t)
	for _, file := range []string{"logs/nginx-1.22-combined.log", "gor/goreplay-1.3-local-req-resp.gor", "har/chromium-156-playwright-local-redirect-base64-utf8.har"} {
		t.Run(file, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "imported.tape")
			_, stderr, code := runCtx(context.Background(), "import", filepath.Join(dir, file), "-o", out)
			if code != 0 {
				t.Fatalf("import: exit %d\n%s", code, stderr)
			}
			exs, meta := tapetest.Read(t, out)
			want := map[string]int{}
			skipped := 0
			for _, e := range exs {
				bodyless := e.Method == "GET" || e.Method == "HEAD" || e.Method == "OPTIONS" || e.Method == "DELETE"
				if (meta.Source.NoRequestBodies && !bodyless) || e.Flags&tape.ReqBodyTruncated != 0 {
					skipped++
					continue
				}
				want[e.Method+" "+originForm(e.Target)]++
			}
			if len(want) == 0 {
				t.Fatal("nothing to replay")
			}

			// inspect reads the imported tape unchanged.
			stdout, stderr, code := runCtx(context.Background(), "inspect", out, "--json")
			if code != 0 {
				t.Fatalf("inspect: exit %d\n%s", code, stderr)
			}
			var ins struct{ Requests int }
			if err := json.Unmarshal([]byte(stdout), &ins); err != nil || ins.Requests != len(exs) {
				t.Fatalf("inspect: %d requests (%v), tape holds %d", ins.Requests, err, len(exs))
			}

			srv, seen := requestCounter(t)
			res := filepath.Join(t.TempDir(), "res.json")
			_, stderr, code = runCtx(context.Background(), "replay", out, "--target", srv.URL, "--window", "all", "--json", res, "--abort-on", "off")
			if code != 0 && code != 3 {
				t.Fatalf("replay: exit %d\n%s", code, stderr)
			}
			got := seen()
			total := 0
			for _, n := range got {
				total += n
			}
			t.Logf("%d exchanges on the tape, %d skipped, the server received %d requests", len(exs), skipped, total)
			for k, n := range want {
				if got[k] != n {
					t.Errorf("server received %q %d times, the tape holds it %d times", k, got[k], n)
				}
			}
			for k, n := range got {
				if want[k] == 0 {
					t.Errorf("server received %q %d times, not on the tape", k, n)
				}
			}
			if meta.Source.NoRequestBodies != strings.HasPrefix(file, "logs/") {
				t.Errorf("no_request_bodies %v for %s", meta.Source.NoRequestBodies, file)
			}
			if skipped > 0 && meta.Source.NoRequestBodies && !strings.Contains(stderr, "no request bodies") {
				t.Errorf("replay skipped %d requests without saying why:\n%s", skipped, stderr)
			}
		})
	}
}

func TestImportRefusesToOverwrite(t *testing.T) {
	dir := testenv.SharedImports(t)
	in := filepath.Join(dir, "logs/alb-aws-docs-examples.log")
	out := filepath.Join(t.TempDir(), "x.tape")
	if err := os.WriteFile(out, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCtx(context.Background(), "import", in, "-o", out)
	if code != ExitUsage || !strings.Contains(stderr, "--force") {
		t.Fatalf("existing output: exit %d, %q; want exit 2 naming --force", code, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatalf("the existing file was changed")
	}
	if _, stderr, code = runCtx(context.Background(), "import", in, "-o", out, "--force"); code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, stderr)
	}
	// Never over an input, not even with --force.
	cp := filepath.Join(t.TempDir(), "copy.log")
	b, _ := os.ReadFile(in)
	os.WriteFile(cp, b, 0o600)
	if _, stderr, code = runCtx(context.Background(), "import", cp, "-o", cp, "--force"); code != ExitUsage || !strings.Contains(stderr, "input") {
		t.Fatalf("output = input: exit %d, %q", code, stderr)
	}
	if got, _ := os.ReadFile(cp); string(got) != string(b) {
		t.Fatal("the input was changed")
	}
}

func TestImportMixedFormats(t *testing.T) {
	dir := testenv.SharedImports(t)
	_, stderr, code := runCtx(context.Background(), "import", filepath.Join(dir, "logs/alb-aws-docs-examples.log"), filepath.Join(dir, "har/charles-proxy-4.6-nonascii.har"), "-o", filepath.Join(t.TempDir(), "x.tape"))
	if code != ExitUsage || !strings.Contains(stderr, "HAR") {
		t.Fatalf("mixed formats: exit %d, %q", code, stderr)
	}
	_, stderr, code = runCtx(context.Background(), "import", filepath.Join(dir, "SOURCES.md"), "-o", filepath.Join(t.TempDir(), "y.tape"))
	if code != ExitFailure || !strings.Contains(stderr, "not a GoReplay") {
		t.Fatalf("unknown format: exit %d, %q", code, stderr)
	}
}

func TestImportStdin(t *testing.T) {
	dir := testenv.SharedImports(t)
	in, err := os.ReadFile(filepath.Join(dir, "logs/alb-grpcs-h2-tls13.log.gz"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "alb.tape")
	var errb strings.Builder
	code := Main(context.Background(), []string{"import", "-", "-o", out}, IO{In: strings.NewReader(string(in)), Out: io.Discard, Err: &errb})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	exs, meta := tapetest.Read(t, out)
	if len(exs) == 0 || meta.Source.Kind != "access-log" || !meta.Source.NoRequestBodies || exs[0].Proto != tape.HTTP2 {
		t.Fatalf("%d exchanges, meta %+v", len(exs), meta.Source)
	}
}
