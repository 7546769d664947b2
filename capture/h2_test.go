package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/internal/golden"
	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/tape"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"
)

// served is one request as the test server saw it.
type served struct {
	method, path, proto string
	status              int
	bodyLen             int
}

// h2Server is a Go net/http server on 127.0.0.1 speaking HTTP/1.1 and
// h2c: prior knowledge (the server's own UnencryptedHTTP2), or Upgrade:
// h2c (through the h2c package) when upgrade is set. It records every
// request it served.
type h2Server struct {
	ln  net.Listener
	srv *http.Server
	mu  sync.Mutex
	got []served
}

const largeBody = 70 << 10

func newH2Server(t *testing.T, upgrade bool) *h2Server {
	t.Helper()
	s := &h2Server{}
	mux := http.NewServeMux()
	record := func(r *http.Request, status, n int) {
		s.mu.Lock()
		s.got = append(s.got, served{r.Method, r.URL.Path, r.Proto, status, n})
		s.mu.Unlock()
	}
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		record(r, 200, 0)
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/post", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		record(r, 201, len(b))
		w.WriteHeader(201)
		fmt.Fprintf(w, "got %d", len(b))
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		record(r, 200, 0)
		w.Write(bytes.Repeat([]byte{'x'}, largeBody))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		record(r, 200, 0)
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/grpc.Echo/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		record(r, 200, len(b))
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		w.Write(b)
		if strings.HasSuffix(r.URL.Path, "/Fail") {
			w.Header().Set("Grpc-Status", "5")
			w.Header().Set("Grpc-Message", "not found")
			return
		}
		w.Header().Set("Grpc-Status", "0")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		record(r, 404, 0)
		http.NotFound(w, r)
	})
	s.srv = &http.Server{Handler: mux}
	if upgrade {
		s.srv.Handler = h2c.NewHandler(mux, &http2.Server{})
	} else {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.srv.Protocols = &p
	}
	var err error
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go s.srv.Serve(s.ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *h2Server) served() []served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// grpcFrame is one gRPC message as it travels: uncompressed flag, length,
// bytes.
func grpcFrame(msg string) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// recordPriorKnowledge has Go's HTTP/2 client (prior knowledge, no TLS)
// send a mix of requests, concurrently on one connection, through a
// recording relay, and returns the conversation as a pcap and what the
// server served.
func recordPriorKnowledge(t *testing.T) ([]byte, []served) {
	t.Helper()
	srv := newH2Server(t, false)
	relay, err := pcapgen.NewRelay(srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	client := &http.Client{Transport: tr}
	base := "http://" + relay.Addr()
	do := func(method, path, ctype string, body []byte) {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if body == nil {
			req.Body = nil
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("TE", "trailers")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("%s: got %s, want HTTP/2", path, resp.Proto)
		}
	}
	// One request first, so the connection exists before the concurrent ones.
	do("GET", "/small", "", nil)
	var wg sync.WaitGroup
	for _, r := range []struct {
		method, path, ctype string
		body                []byte
	}{
		{"GET", "/slow", "", nil},
		{"GET", "/slow?n=2", "", nil},
		{"POST", "/post", "text/plain", bytes.Repeat([]byte{'p'}, 3000)},
		{"GET", "/missing", "", nil},
		{"GET", "/large", "", nil},
		{"POST", "/grpc.Echo/Say", "application/grpc", grpcFrame("ping")},
		{"POST", "/grpc.Echo/Fail", "application/grpc", grpcFrame("nope")},
		{"GET", "/small?again=1", "", nil},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(r.method, r.path, r.ctype, r.body)
		}()
	}
	wg.Wait()
	tr.CloseIdleConnections()
	return conversationPcap(t, relay.Close()), srv.served()
}

// recordUpgrade speaks HTTP/2 by Upgrade: h2c with the h2c package's
// server: the upgrade request (stream 1), then two more streams on the
// upgraded connection, written with x/net's framer and HPACK encoder.
func recordUpgrade(t *testing.T) ([]byte, []served) {
	t.Helper()
	srv := newH2Server(t, true)
	relay, err := pcapgen.NewRelay(srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", relay.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /small HTTP/1.1\r\nHost: app.test\r\nUser-Agent: upgrader\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	send := func(id uint32, method, path string, body []byte) {
		hbuf.Reset()
		for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":authority", "app.test"}, {":path", path}, {"user-agent", "upgrader"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true, EndStream: body == nil})
		if body != nil {
			fr.WriteData(id, true, body)
		}
	}
	open := map[uint32]bool{1: true}
	sent := false
	for len(open) > 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				delete(open, f.StreamID)
			}
		case *http2.DataFrame:
			if n := len(f.Data()); n > 0 {
				fr.WriteWindowUpdate(0, uint32(n))
			}
			if f.StreamEnded() {
				delete(open, f.StreamID)
			}
		}
		if !open[1] && !sent {
			sent = true
			send(3, "POST", "/post", []byte("abc"))
			send(5, "GET", "/missing", nil)
			open[3], open[5] = true, true
		}
	}
	fr.WriteGoAway(5, http2.ErrCodeNo, nil)
	c.Close()
	return conversationPcap(t, relay.Close()), srv.served()
}

// conversationPcap writes recorded connections as a pcap from 10.1.0.1 to
// 10.1.0.2:8080.
func conversationPcap(t *testing.T, conns [][]pcapgen.Chunk) []byte {
	t.Helper()
	return genPcap(t, pcapgen.Link{Type: layers.LinkTypeEthernet}, t0, 0, func(w *pcapgen.Writer) error {
		return pcapgen.WriteConversation(w, "10.1.0.1", "10.1.0.2:8080", conns)
	})
}

// captureBytes runs a capture of pcap bytes into memory.
func captureBytes(t *testing.T, data []byte, opts Options) ([]tape.Exchange, Stats) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "h2.pcap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return captureFile(t, path, opts)
}

// checkAgainstServer checks the exchanges of an h2c capture against what
// the server served: the same requests, one exchange per stream, each
// with its response. The server sees an upgrade request as HTTP/1.1.
func checkAgainstServer(t *testing.T, ex []tape.Exchange, st Stats, got []served) {
	t.Helper()
	if len(ex) != len(got) {
		for _, e := range ex {
			t.Logf("exchange: stream %d %s %s -> %d", e.Stream, e.Method, e.Target, e.Status)
		}
		t.Fatalf("got %d exchanges, the server served %d requests", len(ex), len(got))
	}
	key := func(method, target string, status int) string {
		path, _, _ := strings.Cut(target, "?")
		return fmt.Sprintf("%s %s %d", method, path, status)
	}
	var want, have []string
	for i, s := range got {
		if s.proto != "HTTP/2.0" && (i > 0 || st.H2Upgrades == 0) {
			t.Errorf("the server saw %s for %s", s.proto, s.path)
		}
		want = append(want, key(s.method, s.path, s.status))
	}
	for _, e := range ex {
		have = append(have, key(e.Method, e.Target, e.Status))
		if e.Proto != tape.HTTP2 || e.RespProto != tape.HTTP2 || e.Stream == 0 || e.Stream%2 != 1 {
			t.Errorf("%s: proto %q/%q stream %d", e.Target, e.Proto, e.RespProto, e.Stream)
		}
		if len(e.ReqHeader) < 2 || e.ReqHeader[0].Name != ":authority" || e.ReqHeader[1].Name != ":scheme" || e.ReqHeader[1].Value != "http" {
			t.Errorf("%s: first request fields %v, want :authority and :scheme", e.Target, e.ReqHeader[:min(2, len(e.ReqHeader))])
		}
		if !e.ResponseComplete() {
			t.Errorf("%s: flags %b, want a complete response", e.Target, e.Flags)
		}
	}
	sort.Strings(want)
	sort.Strings(have)
	if !slices.Equal(want, have) {
		t.Errorf("exchanges %v\nserver saw %v", have, want)
	}
	if st.H2Connections != 1 || st.HTTPConnections != 1 || st.Exchanges != int64(len(got)) || st.Responses != st.Exchanges {
		t.Errorf("counters: h2 %d http %d exchanges %d responses %d", st.H2Connections, st.HTTPConnections, st.Exchanges, st.Responses)
	}
	if d := st.Tape().Discarded; len(d) != 0 {
		t.Errorf("discarded %v, want nothing", d)
	}
	// seq orders the streams by request start.
	sorted := slices.Clone(ex)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].ReqStart < sorted[i-1].ReqStart || sorted[i].Stream < sorted[i-1].Stream {
			t.Errorf("seq %d (stream %d) starts before seq %d (stream %d)", sorted[i].Seq, sorted[i].Stream, sorted[i-1].Seq, sorted[i-1].Stream)
		}
	}
}

// byTarget finds the exchange of a target.
func byTarget(t *testing.T, ex []tape.Exchange, target string) tape.Exchange {
	t.Helper()
	for _, e := range ex {
		if e.Target == target {
			return e
		}
	}
	t.Fatalf("no exchange for %s", target)
	return tape.Exchange{}
}

// TestH2CPriorKnowledgeLive records Go's client and server speaking h2c
// and checks the capture against what the server served.
func TestH2CPriorKnowledgeLive(t *testing.T) {
	data, got := recordPriorKnowledge(t)
	ex, st := captureBytes(t, data, Options{})
	checkAgainstServer(t, ex, st, got)
	post := byTarget(t, ex, "/post")
	if post.ReqBodyLen != 3000 || !bytes.Equal(post.ReqBody, bytes.Repeat([]byte{'p'}, 3000)) || post.Status != 201 {
		t.Errorf("/post: body %d, status %d", post.ReqBodyLen, post.Status)
	}
	large := byTarget(t, ex, "/large")
	if large.RespBodyLen != largeBody || large.RespBodyHash != crc(bytes.Repeat([]byte{'x'}, largeBody)) {
		t.Errorf("/large: body %d hash %x", large.RespBodyLen, large.RespBodyHash)
	}
	say := byTarget(t, ex, "/grpc.Echo/Say")
	if v, _ := say.Trailer("grpc-status"); v != "0" || !bytes.Equal(say.ReqBody, grpcFrame("ping")) {
		t.Errorf("/grpc.Echo/Say: grpc-status %q, body %q", v, say.ReqBody)
	}
	fail := byTarget(t, ex, "/grpc.Echo/Fail")
	if v, _ := fail.Trailer("grpc-status"); v != "5" {
		t.Errorf("/grpc.Echo/Fail: grpc-status %q, trailers %v", v, fail.RespTrailer)
	}
}

// TestH2CUpgradeLive records an Upgrade: h2c conversation: the upgrade
// request becomes stream 1 of the HTTP/2 connection, its response the
// HTTP/2 one.
func TestH2CUpgradeLive(t *testing.T) {
	data, got := recordUpgrade(t)
	ex, st := captureBytes(t, data, Options{})
	checkAgainstServer(t, ex, st, got)
	up := byTarget(t, ex, "/small")
	if up.Stream != 1 || up.Seq != 0 || up.ReqHeader[0].Value != "app.test" {
		t.Errorf("upgrade request: stream %d seq %d fields %v", up.Stream, up.Seq, up.ReqHeader)
	}
	for _, f := range up.ReqHeader {
		if n := strings.ToLower(f.Name); n == "upgrade" || n == "connection" || n == "http2-settings" || n == "host" {
			t.Errorf("upgrade request keeps %s", f.Name)
		}
	}
	if st.H2Upgrades != 1 || st.UpgradedConnections != 0 || st.TunnelBytes != 0 {
		t.Errorf("h2c upgrades %d, upgraded connections %d, tunnel bytes %d", st.H2Upgrades, st.UpgradedConnections, st.TunnelBytes)
	}
	if post := byTarget(t, ex, "/post"); string(post.ReqBody) != "abc" || post.Stream != 3 {
		t.Errorf("/post: stream %d body %q", post.Stream, post.ReqBody)
	}
}

// h2Listing renders exchanges one a line for a golden file.
func h2Listing(ex []tape.Exchange, st Stats) string {
	ex = slices.Clone(ex)
	sort.Slice(ex, func(i, j int) bool { return ex[i].Seq < ex[j].Seq })
	var b strings.Builder
	for _, e := range ex {
		grpc, _ := e.Trailer("grpc-status")
		fmt.Fprintf(&b, "seq %d stream %d %s %s %s req_body %d -> %d %s body %d grpc-status %q flags %b\n",
			e.Seq, e.Stream, e.Method, e.Target, e.Proto, e.ReqBodyLen, e.Status, e.RespProto, e.RespBodyLen, grpc, e.Flags)
	}
	ts := st.Tape()
	keys := make([]string, 0, len(ts.Discarded))
	for k := range ts.Discarded {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "discarded %s %d\n", k, ts.Discarded[k])
	}
	fmt.Fprintf(&b, "h2_connections %d h2c_upgrades %d exchanges %d responses %d\n", st.H2Connections, st.H2Upgrades, st.Exchanges, st.Responses)
	return b.String()
}

// TestH2CCommitted checks the committed h2c captures (recorded from Go's
// client and server; go test -update records them again) against their
// golden listings.
func TestH2CCommitted(t *testing.T) {
	for _, c := range []struct {
		name   string
		record func(*testing.T) ([]byte, []served)
	}{
		{"h2c-prior-knowledge", recordPriorKnowledge},
		{"h2c-upgrade", recordUpgrade},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", "h2", c.name+".pcap")
			if golden.Update() {
				data, _ := c.record(t)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ex, st := captureFile(t, path, Options{})
			golden.File(t, filepath.Join("testdata", "h2", c.name+".golden"), h2Listing(ex, st))
		})
	}
}
