package cli

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/testca"
)

func TestProtocolTLSUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--target", "http://127.0.0.1:1", "--protocol", "h3"},
		{"--target", "https://127.0.0.1:1", "--protocol", "h2c"},
		{"--target", "https://127.0.0.1:1", "--client-cert", filepath.Join(dir, "c.pem")},
		{"--target", "http://127.0.0.1:1", "--ca-cert", filepath.Join(dir, "ca.pem")},
		{"--target", "https://127.0.0.1:1", "--tls-min-version", "1.5"},
	} {
		if _, stderr, code := run(t, append([]string{"replay", sampleTape}, args...)...); code != ExitUsage {
			t.Errorf("herd replay %v: exit %d, want %d\n%s", args, code, ExitUsage, stderr)
		}
	}
}

// protoServer counts the requests it answers by protocol.
type protoServer struct {
	*httptest.Server
	mu     sync.Mutex
	protos map[string]int64
}

func newProtoServer(t *testing.T, h2c bool, tlsConf *tls.Config) *protoServer {
	s := &protoServer{protos: map[string]int64{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.protos[r.Proto]++
		s.mu.Unlock()
		w.Write([]byte("ok"))
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	if h2c {
		p.SetUnencryptedHTTP2(true)
		s.Config.Protocols = &p
		s.Start()
	} else {
		s.EnableHTTP2 = true
		s.TLS = tlsConf
		s.StartTLS()
	}
	t.Cleanup(s.Close)
	return s
}

func sentOf(t *testing.T, path string) int64 {
	t.Helper()
	var f struct {
		Steps []struct {
			Sent, Errors int64
			ErrorClasses map[string]int64 `json:"errors_by_class"`
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.Steps) != 1 {
		t.Fatalf("results: %v", err)
	}
	if f.Steps[0].Errors != 0 {
		t.Errorf("errors %v", f.Steps[0].ErrorClasses)
	}
	return f.Steps[0].Sent
}

// TestReplayProtocols replays the sample tape (recorded as HTTP/1.1) over
// h2c and over TLS with a private CA and a client certificate (mTLS),
// HTTP/2 chosen by ALPN: the server sees HTTP/2.0 and exactly what herd
// reports as sent.
func TestReplayProtocols(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	caFile := testca.WriteFile(t, dir, "ca.pem", ca.PEM)
	client := ca.Client(t, "herd")
	certFile, keyFile := testca.WriteFile(t, dir, "c.pem", client.CertPEM), testca.WriteFile(t, dir, "c.key", client.KeyPEM)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{ca.Server(t, time.Now().Add(time.Hour), "staging.test").TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	for _, c := range []struct {
		name  string
		srv   *protoServer
		flags []string
	}{
		{"h2c", newProtoServer(t, true, nil), []string{"--protocol", "h2c"}},
		{"tls-alpn-mtls", newProtoServer(t, false, srvTLS), []string{"--ca-cert", caFile, "--server-name", "staging.test",
			"--client-cert", certFile, "--client-key", keyFile, "--tls-min-version", "1.2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run.json")
			args := append([]string{"replay", sampleTape, "--target", c.srv.URL, "--window", "peak:2s", "--json", out}, c.flags...)
			if stdout, stderr, code := run(t, args...); code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			sent := sentOf(t, out)
			c.srv.mu.Lock()
			defer c.srv.mu.Unlock()
			if sent == 0 || c.srv.protos["HTTP/2.0"] != sent || len(c.srv.protos) != 1 {
				t.Errorf("herd sent %d; the server saw %v", sent, c.srv.protos)
			}
		})
	}
}

// TestCaptureReplayH2C: a capture of Go's h2c client and server becomes a
// tape of HTTP/2 exchanges, which --protocol auto replays as HTTP/2 (prior
// knowledge) against a cleartext target: the server sees each of the 9
// recorded streams once, as HTTP/2.0.
func TestCaptureReplayH2C(t *testing.T) {
	dir := t.TempDir()
	tapePath := filepath.Join(dir, "h2.tape")
	if stdout, stderr, code := run(t, "capture", "--pcap", "../../capture/testdata/h2/h2c-prior-knowledge.pcap", "-o", tapePath); code != 0 {
		t.Fatalf("capture: exit %d\n%s\n%s", code, stdout, stderr)
	}
	srv := newProtoServer(t, true, nil)
	out := filepath.Join(dir, "run.json")
	if stdout, stderr, code := run(t, "replay", tapePath, "--target", srv.URL, "--json", out); code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	sent := sentOf(t, out)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if sent != 9 || srv.protos["HTTP/2.0"] != 9 || len(srv.protos) != 1 {
		t.Errorf("herd sent %d; the server saw %v; want 9 HTTP/2.0", sent, srv.protos)
	}
}
