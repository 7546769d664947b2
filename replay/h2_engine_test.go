package replay

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/testca"
	"github.com/herd-replay/herd/tape"
)

// h2Tape writes a tape recorded as HTTP/2: conns connections, perConn
// streams each, started 10 ms apart and answered 30 ms later, so that
// about three are in flight at once on each connection.
func h2Tape(t *testing.T, conns, perConn int) string {
	t.Helper()
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	var exs []tape.Exchange
	for c := 0; c < conns; c++ {
		for i := 0; i < perConn; i++ {
			start := base + int64(c)*int64(15*time.Millisecond) + int64(i)*int64(10*time.Millisecond)
			exs = append(exs, tape.Exchange{
				ConnID: uint64(c + 1), Seq: uint32(i), Stream: uint32(2*i + 1),
				Client:   netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:4000", c+1)),
				Server:   netip.MustParseAddrPort("10.0.1.1:80"),
				ReqStart: start, ReqEnd: start + 1000, RespStart: start + 29e6, RespEnd: start + 30e6,
				Method: "GET", Target: fmt.Sprintf("/c/%d/r/%d", c+1, i), Proto: tape.HTTP2,
				ReqHeader: []tape.Field{{Name: ":authority", Value: "shop.example.com"}, {Name: ":scheme", Value: "https"}, {Name: "user-agent", Value: "app/1"}},
				Status:    200, RespProto: tape.HTTP2,
			})
		}
	}
	path := filepath.Join(t.TempDir(), "h2.tape")
	if err := tape.WriteFile(path, tape.Meta{}, tape.WriterOptions{NoSync: true, FlushInterval: -1}, exs); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadPlanWith(t *testing.T, path string, o PlanOptions) *Plan {
	t.Helper()
	r, err := tape.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o.Window, _ = ParseWindow("all")
	p, err := Load(context.Background(), r, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestH2Replay replays an HTTP/2 tape end to end through Run, at 2x: the
// server counts exactly the requests herd reports as sent, all HTTP/2.0,
// one connection per replayed connection, over h2c (auto: the recording
// was HTTP/2) and TLS (auto: ALPN; the CA given by --ca-cert).
func TestH2Replay(t *testing.T) {
	const conns, perConn = 8, 6
	path := h2Tape(t, conns, perConn)
	ca := testca.New(t)
	caFile := testca.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM)
	for _, c := range []struct {
		name  string
		ca    *testca.CA
		proto Protocol
	}{{"h2c-auto", nil, ProtoAuto}, {"h2c", nil, ProtoH2C}, {"tls-auto", ca, ProtoAuto}, {"tls-h2", ca, ProtoH2}} {
		t.Run(c.name, func(t *testing.T) {
			srv := newH2Target(t, c.ca, nil, nil)
			target, _ := url.Parse(srv.url)
			p := loadPlanWith(t, path, PlanOptions{Target: target, HTTP2: true})
			o := Options{Target: target, Schedule: NewSchedule(Clone, 2, 1, p.Length, 0), Protocol: c.proto}
			if c.ca != nil {
				var err error
				if o.TLS, err = (TLSOptions{CACert: caFile, ServerName: "staging.test"}).Config(); err != nil {
					t.Fatal(err)
				}
			}
			st, err := Run(context.Background(), p, o)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := o.Schedule.CountDue(p, 0)
			paths, protos := srv.received()
			if st.Sent != want || st.Completed != want || st.Errors != 0 {
				t.Errorf("herd: sent %d completed %d errors %d %v, want %d", st.Sent, st.Completed, st.Errors, st.ErrorClasses, want)
			}
			// auto on TLS asks the target by ALPN on one connection of its own.
			wantConns := int64(2 * conns)
			if c.name == "tls-auto" {
				wantConns++
			}
			if int64(len(paths)) != want || int64(protos["HTTP/2.0"]) != want || srv.conns.Load() != wantConns {
				t.Errorf("server: %d requests %v on %d connections, want %d HTTP/2.0 on %d", len(paths), protos, srv.conns.Load(), want, wantConns)
			}
			if st.HTTP2 == nil || st.ConnectMS == nil || st.ConnectMS.Max <= 0 {
				t.Errorf("http2 %+v connect %+v", st.HTTP2, st.ConnectMS)
			}
		})
	}
}

// TestH2AsHTTP1: --protocol h1 replays an HTTP/2 tape as HTTP/1.1, Host
// from the target, or from :authority with --keep-host.
func TestH2AsHTTP1(t *testing.T) {
	path := h2Tape(t, 2, 3)
	for _, keep := range []bool{false, true} {
		var hosts []string
		srv := newH2Target(t, nil, func(w http.ResponseWriter, r *http.Request) { hosts = append(hosts, r.Host) }, nil)
		target, _ := url.Parse(srv.url)
		p := loadPlanWith(t, path, PlanOptions{Target: target, KeepHost: keep})
		st, err := Run(context.Background(), p, Options{Target: target, Schedule: NewSchedule(Clone, 1, 1, p.Length, 0), Protocol: ProtoH1})
		if err != nil {
			t.Fatal(err)
		}
		_, protos := srv.received()
		want := target.Host
		if keep {
			want = "shop.example.com"
		}
		if st.Sent != 6 || protos["HTTP/1.1"] != 6 || len(hosts) != 6 || hosts[0] != want {
			t.Errorf("keep-host %v: sent %d, server %v, hosts %v", keep, st.Sent, protos, hosts)
		}
	}
}

// TestTLSReasons: the TLS failures real staging gives carry their reason
// (the x509 message), over HTTP/1.1 and HTTP/2; mTLS works with the
// client certificate and fails without; reconnects resume their session.
func TestTLSReasons(t *testing.T) {
	ca, other := testca.New(t), testca.New(t)
	dir := t.TempDir()
	caFile := testca.WriteFile(t, dir, "ca.pem", ca.PEM)
	client := ca.Client(t, "herd-client")
	cert, key := testca.WriteFile(t, dir, "client.pem", client.CertPEM), testca.WriteFile(t, dir, "client.key", client.KeyPEM)
	serve := func(t *testing.T, leaf tls.Certificate, mtls bool) string {
		cfg := &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"h2", "http/1.1"}}
		if mtls {
			cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool
		}
		srv := newH2Target(t, nil, nil, nil)
		srv.srv.Close()
		ln, _ := tls.Listen("tcp", "127.0.0.1:0", cfg)
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), TLSConfig: cfg}
		go s.Serve(ln)
		t.Cleanup(func() { s.Close() })
		return ln.Addr().String()
	}
	good := ca.Server(t, time.Now().Add(time.Hour), "staging.test").TLS
	expired := ca.Server(t, time.Now().Add(-time.Hour), "staging.test").TLS
	untrusted := other.Server(t, time.Now().Add(time.Hour), "staging.test").TLS
	for _, c := range []struct {
		name   string
		leaf   tls.Certificate
		mtls   bool
		opts   TLSOptions
		reason string // "" for success
	}{
		{"unknown authority", untrusted, false, TLSOptions{CACert: caFile, ServerName: "staging.test"}, "x509: certificate signed by unknown authority"},
		{"name mismatch", good, false, TLSOptions{CACert: caFile, ServerName: "other.test"}, "x509: certificate is valid for staging.test, not other.test"},
		{"expired", expired, false, TLSOptions{CACert: caFile, ServerName: "staging.test"}, "x509: certificate has expired"},
		{"mtls without a client certificate", good, true, TLSOptions{CACert: caFile, ServerName: "staging.test"}, "certificate required"},
		{"mtls", good, true, TLSOptions{CACert: caFile, ServerName: "staging.test", ClientCert: cert, ClientKey: key}, ""},
		{"IP target, server name given", good, false, TLSOptions{CACert: caFile, ServerName: "staging.test", MinVersion: "1.3"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := serve(t, c.leaf, c.mtls)
			cfg, err := c.opts.Config()
			if err != nil {
				t.Fatal(err)
			}
			for _, h2 := range []bool{false, true} {
				u := &url.URL{Scheme: "https", Host: addr}
				cl, _ := newClient(Options{Target: u, TLS: cfg})
				var class string
				deadline := time.Now().Add(3 * time.Second)
				if h2 {
					h := &h2Client{addr: addr, tls: cfg.Clone()}
					h.tls.NextProtos = []string{"h2"}
					var cn *h2Conn
					cn, class, err = h.dial(context.Background(), deadline, 3*time.Second, h2Hooks{release: func() {}, finished: func(*h2Stream) {}, retry: func(*h2Stream) {}})
					if err == nil {
						resumed := cn.nc.(*tls.Conn).ConnectionState().DidResume
						cn.shutdown()
						cn2, _, err2 := h.dial(context.Background(), deadline, 3*time.Second, h2Hooks{release: func() {}, finished: func(*h2Stream) {}, retry: func(*h2Stream) {}})
						if err2 != nil || !cn2.nc.(*tls.Conn).ConnectionState().DidResume {
							t.Errorf("h2: a reconnect did not resume its TLS session (first resumed: %v, err %v)", resumed, err2)
						}
						if cn2 != nil {
							cn2.shutdown()
						}
					}
				} else {
					var cn *conn
					cn, class, err = cl.dial(context.Background(), deadline)
					if err == nil {
						// TLS 1.3 refuses a missing client certificate on
						// the first exchange, after the handshake.
						a, _ := cn.roundTrip([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, deadline)
						if err = a.err; err != nil {
							class = ioClass(err)
						}
						cn.close()
					}
				}
				switch {
				case c.reason == "" && err != nil:
					t.Errorf("h2 %v: %s %v", h2, class, err)
				case c.reason != "" && (class != ClassTLS || err == nil || !strings.Contains(err.Error(), c.reason)):
					t.Errorf("h2 %v: class %q error %v, want %s with %q", h2, class, err, ClassTLS, c.reason)
				}
			}
		})
	}
}

// TestTLSFirstError: a run against a target whose certificate herd cannot
// verify carries the reason into the results' first error of the class,
// over HTTP/1.1 and over HTTP/2; and over HTTP/2 a gRPC failure where the
// recording had success is its own class, with its grpc-status.
func TestTLSFirstError(t *testing.T) {
	other := testca.New(t)
	path := h2Tape(t, 2, 3)
	for _, proto := range []Protocol{ProtoH1, ProtoH2} {
		srv := newH2Target(t, other, nil, nil)
		target, _ := url.Parse(srv.url)
		p := loadPlanWith(t, path, PlanOptions{Target: target, HTTP2: true})
		cfg, err := (TLSOptions{ServerName: "staging.test"}).Config() // system roots: the test CA is unknown
		if err != nil {
			t.Fatal(err)
		}
		st, err := Run(context.Background(), p, Options{Target: target, Schedule: NewSchedule(Clone, 1, 1, p.Length, 0),
			Protocol: proto, TLS: cfg, Abort: AbortRule{Off: true}})
		if err != nil {
			t.Fatal(err)
		}
		msg := st.FirstErrors[ClassTLS]
		if st.ErrorClasses[ClassTLS] != st.Sent || !strings.Contains(msg, "x509: certificate signed by unknown authority") {
			t.Errorf("%v: errors %v, first tls_error %q", proto, st.ErrorClasses, msg)
		}
		if paths, _ := srv.received(); len(paths) != 0 {
			t.Errorf("%v: the server answered %d requests over a connection herd should have refused", proto, len(paths))
		}
	}
}
