package record

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/herd-replay/herd/tape"
)

// h2Client is an HTTP/2-only client: over TLS by ALPN (trusting any
// certificate: the proxy's is the test server's), or h2c with prior
// knowledge.
func h2Client(tlsOn bool) *http.Client {
	var p http.Protocols
	if tlsOn {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: &http.Transport{
		Protocols:       &p,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

func TestProxyHTTP2(t *testing.T) {
	// The proxy serves TLS with the certificate of a test TLS server.
	certSrv := httptest.NewTLSServer(http.NotFoundHandler())
	certSrv.Close()
	serverTLS := &tls.Config{Certificates: certSrv.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}

	for _, tc := range []struct {
		name   string
		tls    bool
		scheme string
	}{{"h2 over TLS", true, "https"}, {"h2c prior knowledge", false, "http"}} {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Checksum")
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprintf(w, "hello %s", r.URL.Path)
				w.Header().Set("X-Checksum", "42")
			})
			opts := Options{}
			if tc.tls {
				opts.TLS = serverTLS
			}
			pr := startProxy(t, be.URL, opts, nil)
			client := h2Client(tc.tls)
			base := tc.scheme + "://" + pr.addr

			// One request first, so that the client's connection exists and
			// the rest share it as concurrent streams.
			warm, err := client.Get(base + "/get/warm")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, warm.Body)
			warm.Body.Close()
			const n = 21
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := 1; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					var resp *http.Response
					var err error
					if i%4 == 3 {
						resp, err = client.Post(fmt.Sprintf("%s/post/%d", base, i), "text/plain", strings.NewReader(strings.Repeat("x", i)))
					} else {
						resp, err = client.Get(fmt.Sprintf("%s/get/%d?q=%d", base, i, i))
					}
					if err != nil {
						errs <- err
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.ProtoMajor != 2 || !strings.HasPrefix(string(b), "hello /") || resp.Trailer.Get("X-Checksum") != "42" {
						errs <- fmt.Errorf("%s %q trailer %v", resp.Proto, b, resp.Trailer)
					}
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			st := pr.stop(t)
			if got := len(be.received()); got != n {
				t.Fatalf("backend received %d requests, want %d", got, n)
			}
			exs := readTape(t, pr.path)
			if len(exs) != n || st.H2Connections != 1 || st.Exchanges != n {
				t.Fatalf("%d exchanges, stats %+v", len(exs), st)
			}
			sort.Slice(exs, func(i, j int) bool { return exs[i].Seq < exs[j].Seq })
			for i, e := range exs {
				if e.Proto != tape.HTTP2 || e.ConnID != exs[0].ConnID || e.Seq != uint32(i) || e.Stream != uint32(2*i+1) {
					t.Errorf("exchange %d: %s conn %d seq %d stream %d", i, e.Proto, e.ConnID, e.Seq, e.Stream)
				}
				if i > 0 && e.ReqStart < exs[i-1].ReqStart {
					t.Errorf("exchange %d starts before exchange %d", i, i-1)
				}
				if len(e.ReqHeader) < 2 || e.ReqHeader[0] != (tape.Field{Name: ":authority", Value: pr.addr}) || e.ReqHeader[1] != (tape.Field{Name: ":scheme", Value: tc.scheme}) {
					t.Errorf("exchange %d: pseudo headers %v", i, e.ReqHeader)
				}
				if !e.ResponseComplete() || e.Status != 200 {
					t.Errorf("exchange %d: status %d flags %b", i, e.Status, e.Flags)
				}
				if v, ok := e.Trailer("x-checksum"); !ok || v != "42" {
					t.Errorf("exchange %d: response trailers %v", i, e.RespTrailer)
				}
				if e.Method == "POST" && int(e.ReqBodyLen) != len(e.ReqBody) {
					t.Errorf("exchange %d: body %d of %d", i, len(e.ReqBody), e.ReqBodyLen)
				}
			}
		})
	}
}

// TestProxyTLSHTTP1: an HTTP/1.1 client over TLS (ALPN http/1.1), to an
// https upstream.
func TestProxyTLSHTTP1(t *testing.T) {
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %s %v", r.URL.Path, r.TLS != nil)
	}))
	defer be.Close()
	serverTLS := &tls.Config{Certificates: be.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
	pr := startProxy(t, be.URL, Options{TLS: serverTLS, UpstreamTLS: &tls.Config{InsecureSkipVerify: true}}, nil)
	var p http.Protocols
	p.SetHTTP1(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(fmt.Sprintf("https://%s/x/%d", pr.addr, i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 1 || string(b) != fmt.Sprintf("tls /x/%d true", i) {
			t.Fatalf("%s %q", resp.Proto, b)
		}
	}
	st := pr.stop(t)
	exs := readTape(t, pr.path)
	if len(exs) != 3 || st.TLSConnections != 1 || st.H1Connections != 1 || exs[2].Seq != 2 || exs[0].Proto != tape.HTTP11 {
		t.Fatalf("%d exchanges, stats %+v", len(exs), st)
	}
}
