package capture

import (
	"bytes"
	"fmt"
	"hash/crc64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/internal/golden"
	"github.com/herd-replay/herd/internal/pcapgen"
	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/tape"
)

// t0 is the start time of every edge-case capture.
var t0 = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)

// edgeCase is one synthetic capture of a situation the parser must get
// right, and what must come out of it.
type edgeCase struct {
	name    string
	link    pcapgen.Link
	snaplen int
	write   func(w *pcapgen.Writer) error
	check   func(t *testing.T, ex []tape.Exchange, st Stats)
}

// pipelineStatus are the statuses of the pipelined responses (204 and 304
// would have no body).
var pipelineStatus = []int{200, 201, 202, 203, 206}

var ethernet = pcapgen.Link{Type: layers.LinkTypeEthernet}

func body(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

func crc(b []byte) uint64 { return crc64.Checksum(b, crcTable) }

// simple writes one request/response exchange on a fresh connection.
func simple(w *pcapgen.Writer, cli, srv string, req, resp []byte) error {
	c := w.NewConn(cli, srv, 1000, 5000)
	if err := c.Handshake(); err != nil {
		return err
	}
	if err := c.Send(true, req); err != nil {
		return err
	}
	if err := c.Send(false, resp); err != nil {
		return err
	}
	return c.Close()
}

func wantCount(t *testing.T, ex []tape.Exchange, n int) {
	t.Helper()
	if len(ex) != n {
		for _, e := range ex {
			t.Logf("%s %s -> %d flags %b", e.Method, e.Target, e.Status, e.Flags)
		}
		t.Fatalf("got %d exchanges, want %d", len(ex), n)
	}
}

func wantFlags(t *testing.T, e tape.Exchange, want tape.Flags) {
	t.Helper()
	if e.Flags != want {
		t.Errorf("%s %s: flags %06b, want %06b", e.Method, e.Target, e.Flags, want)
	}
}

var edgeCases = []edgeCase{
	{
		name: "retransmission", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			req := pcapgen.Request("GET", "/retrans", nil, nil)
			seq := c.CSeq
			c.Send(true, req)
			c.Put(true, seq, pcapgen.ACK|pcapgen.PSH, req) // full retransmission
			resp := pcapgen.Response(200, nil, body(3000, 'r'))
			sseq := c.SSeq
			c.Send(false, resp)
			c.Put(false, sseq+1000, pcapgen.ACK, resp[1000:2500]) // overlapping retransmission
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			wantFlags(t, ex[0], 0)
			if ex[0].RespBodyLen != 3000 || ex[0].RespBodyHash != crc(body(3000, 'r')) {
				t.Errorf("body %d hash %x", ex[0].RespBodyLen, ex[0].RespBodyHash)
			}
		},
	},
	{
		name: "reordering", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40001", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			req := pcapgen.Request("POST", "/reorder", []string{"Content-Type: text/plain"}, body(2000, 'q'))
			// The request's second segment arrives before its first.
			c.Put(true, c.CSeq+1448, pcapgen.ACK, req[1448:])
			c.Put(true, c.CSeq, pcapgen.ACK, req[:1448])
			c.Skip(true, len(req))
			resp := pcapgen.Response(201, nil, body(4000, 's'))
			s := c.SSeq
			c.Put(false, s+2896, pcapgen.ACK, resp[2896:])
			c.Put(false, s+1448, pcapgen.ACK, resp[1448:2896])
			c.Put(false, s, pcapgen.ACK, resp[:1448])
			c.Skip(false, len(resp))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			e := ex[0]
			wantFlags(t, e, 0)
			if e.ReqBodyLen != 2000 || !bytes.Equal(e.ReqBody, body(2000, 'q')) || e.Status != 201 || e.RespBodyHash != crc(body(4000, 's')) {
				t.Errorf("got body %d, status %d, hash %x", e.ReqBodyLen, e.Status, e.RespBodyHash)
			}
		},
	},
	{
		name: "gap", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40002", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			// 1: a segment of the response body is lost: the exchange is
			// written, flagged; the Content-Length keeps the parser in step.
			c.Send(true, pcapgen.Request("GET", "/gap-in-response", nil, nil))
			resp := pcapgen.Response(200, nil, body(4000, 'a'))
			c.Put(false, c.SSeq, pcapgen.ACK, resp[:1000])
			c.Put(false, c.SSeq+2000, pcapgen.ACK, resp[2000:])
			c.Skip(false, len(resp))
			// 2: a segment of a request body is lost: not written.
			req := pcapgen.Request("POST", "/gap-in-request", nil, body(3000, 'b'))
			c.Put(true, c.CSeq, pcapgen.ACK, req[:500])
			c.Put(true, c.CSeq+1500, pcapgen.ACK, req[1500:])
			c.Skip(true, len(req))
			c.Send(false, pcapgen.Response(200, nil, []byte("ok")))
			// 3: an intact exchange after both.
			c.Send(true, pcapgen.Request("GET", "/after", nil, nil))
			c.Send(false, pcapgen.Response(200, nil, []byte("fine")))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 2)
			wantFlags(t, ex[0], tape.Gap|tape.RespIncomplete)
			if ex[0].RespBodyLen != 4000 {
				t.Errorf("body length %d, want 4000 (lost bytes included)", ex[0].RespBodyLen)
			}
			if ex[1].Target != "/after" || ex[1].Flags != 0 || ex[1].Seq != 1 {
				t.Errorf("second exchange %s flags %b seq %d", ex[1].Target, ex[1].Flags, ex[1].Seq)
			}
			if st.RequestIncomplete != 1 || st.Gaps != 2 {
				t.Errorf("request_incomplete %d, gaps %d; want 1 and 2", st.RequestIncomplete, st.Gaps)
			}
		},
	},
	{
		name: "wraparound", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			// Both sequence spaces wrap inside the messages.
			c := w.NewConn("10.0.0.1:40003", "10.0.0.2:80", 0xffffff00, 0xfffffa00)
			c.Handshake()
			c.Send(true, pcapgen.Request("POST", "/wrap", nil, body(1000, 'w')))
			c.Send(false, pcapgen.Response(200, nil, body(5000, 'x')))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			wantFlags(t, ex[0], 0)
			if ex[0].ReqBodyLen != 1000 || ex[0].RespBodyHash != crc(body(5000, 'x')) {
				t.Errorf("bodies %d %x", ex[0].ReqBodyLen, ex[0].RespBodyHash)
			}
		},
	},
	{
		name: "pipelining", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40004", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			var reqs, resps []byte
			for i, status := range pipelineStatus {
				reqs = append(reqs, pcapgen.Request("GET", fmt.Sprintf("/p/%d", i), nil, nil)...)
				resps = append(resps, pcapgen.Response(status, nil, body(100*i, 'p'))...)
			}
			reqs = append(reqs, pcapgen.Request("HEAD", "/p/head", nil, nil)...)
			resps = append(resps, "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n"...)
			c.Send(true, reqs)
			c.Send(false, resps)
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 6)
			for i, e := range ex[:5] {
				if e.Target != fmt.Sprintf("/p/%d", i) || e.Status != pipelineStatus[i] || e.RespBodyLen != int64(100*i) || e.Seq != uint32(i) {
					t.Errorf("exchange %d: %s -> %d, body %d, seq %d", i, e.Target, e.Status, e.RespBodyLen, e.Seq)
				}
			}
			if ex[5].Method != "HEAD" || ex[5].RespBodyLen != 0 || ex[5].Flags != 0 {
				t.Errorf("HEAD: body %d flags %b", ex[5].RespBodyLen, ex[5].Flags)
			}
		},
	},
	{
		name: "split-start-lines", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			// Pipelined messages whose start lines are split after their
			// first byte: "G" + "ET /two", "H" + "TTP/1.1 201".
			c := w.NewConn("10.0.0.1:40018", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			c.Send(true, []byte("GET /one HTTP/1.1\r\nHost: a\r\n\r\nG"))
			c.Send(true, []byte("ET /two HTTP/1.1\r\nHost: a\r\n\r\n"))
			c.Send(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nH"))
			c.Send(false, []byte("TTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 2)
			if ex[1].Method != "GET" || ex[1].Target != "/two" || ex[0].Status != 200 || ex[1].Status != 201 {
				t.Errorf("got %s %s -> %d, %s %s -> %d", ex[0].Method, ex[0].Target, ex[0].Status, ex[1].Method, ex[1].Target, ex[1].Status)
			}
			if st.RequestIncomplete != 0 || st.SkippedBytes != 0 {
				t.Errorf("request_incomplete %d, skipped %d", st.RequestIncomplete, st.SkippedBytes)
			}
		},
	},
	{
		name: "nosyn-orphan", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			// Starts mid-connection: the tail of a response body, then a
			// whole response whose request came before the capture, then
			// a request and its response.
			c := w.NewConn("10.0.0.1:40005", "10.0.0.2:8080", 1000, 5000)
			c.Send(false, body(700, 'z'))
			c.Send(false, pcapgen.Response(200, nil, []byte("orphan")))
			c.Send(true, pcapgen.Request("GET", "/seen", nil, nil))
			c.Send(false, pcapgen.Response(404, nil, []byte("nope")))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			if ex[0].Target != "/seen" || ex[0].Status != 404 {
				t.Errorf("got %s -> %d", ex[0].Target, ex[0].Status)
			}
			if st.OrphanResponses != 1 {
				t.Errorf("orphan responses %d, want 1", st.OrphanResponses)
			}
		},
	},
	{
		name: "chunked", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40006", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			c.Send(true, []byte("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"5;ext=1\r\nhello\r\n6 \r\n world\r\n0 ; last=yes\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"))
			c.Send(false, []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"+
				"a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n"))
			c.Send(true, pcapgen.Request("GET", "/next", nil, nil))
			c.Send(false, pcapgen.Response(200, nil, nil))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 2)
			e := ex[0]
			if string(e.ReqBody) != "hello world" || e.ReqBodyLen != 11 || e.RespBodyLen != 13 || e.RespBodyHash != crc([]byte("0123456789abc")) {
				t.Errorf("got body %q (%d), response %d %x", e.ReqBody, e.ReqBodyLen, e.RespBodyLen, e.RespBodyHash)
			}
			wantFlags(t, e, 0)
		},
	},
	{
		name: "expect-100-continue", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40007", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			c.Send(true, []byte("PUT /big HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"))
			c.Send(false, []byte("HTTP/1.1 100 Continue\r\n\r\n"))
			c.Send(true, []byte("0123456789"))
			c.Send(false, pcapgen.Response(204, nil, nil))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			if ex[0].Status != 204 || string(ex[0].ReqBody) != "0123456789" || st.InterimResponses != 1 {
				t.Errorf("status %d body %q interim %d", ex[0].Status, ex[0].ReqBody, st.InterimResponses)
			}
		},
	},
	{
		name: "upgrade", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40008", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			c.Send(true, pcapgen.Request("GET", "/ws", []string{"Connection: Upgrade", "Upgrade: websocket"}, nil))
			c.Send(false, []byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
			c.Send(true, []byte("\x81\x85GET / HTTP/1.1\r\n"))
			c.Send(false, []byte("\x81\x05HTTP/1.1 200 OK\r\n"))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			wantFlags(t, ex[0], tape.Upgraded)
			if ex[0].Status != 101 || st.UpgradedConnections != 1 || st.TunnelBytes == 0 {
				t.Errorf("status %d upgraded %d tunnel %d", ex[0].Status, st.UpgradedConnections, st.TunnelBytes)
			}
		},
	},
	{
		name: "connect", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40009", "10.0.0.2:3128", 1000, 5000)
			c.Handshake()
			c.Send(true, []byte("CONNECT db.example:443 HTTP/1.1\r\nHost: db.example:443\r\n\r\n\x16\x03\x01\x02\x00"))
			c.Send(false, []byte("HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03"))
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			wantFlags(t, ex[0], tape.Upgraded)
			if ex[0].Method != "CONNECT" || ex[0].Status != 200 {
				t.Errorf("got %s %d", ex[0].Method, ex[0].Status)
			}
		},
	},
	{
		name: "huge-content-length", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40010", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			c.Send(true, pcapgen.Request("GET", "/ok", nil, nil))
			c.Send(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\nonly a little"))
			c2 := w.NewConn("10.0.0.1:40011", "10.0.0.2:80", 1000, 5000)
			c2.Handshake()
			c2.Send(true, []byte("POST /huge HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\nsome body"))
			return c2.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			wantFlags(t, ex[0], tape.RespIncomplete)
			if st.RequestIncomplete != 1 {
				t.Errorf("request_incomplete %d, want 1", st.RequestIncomplete)
			}
		},
	},
	{
		name: "vlan-qinq", link: pcapgen.Link{Type: layers.LinkTypeEthernet, VLANs: []uint16{100, 200, 300}},
		write: func(w *pcapgen.Writer) error {
			return simple(w, "10.0.0.1:40012", "10.0.0.2:80", pcapgen.Request("GET", "/vlan", nil, nil), pcapgen.Response(200, nil, []byte("tagged")))
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) { wantCount(t, ex, 1) },
	},
	{
		name: "ipv6", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			return simple(w, "[2001:db8::1]:40013", "[2001:db8::2]:80", pcapgen.Request("GET", "/v6", nil, nil), pcapgen.Response(200, nil, []byte("six")))
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 1)
			if ex[0].Client.String() != "[2001:db8::1]:40013" || ex[0].Server.String() != "[2001:db8::2]:80" {
				t.Errorf("addresses %s %s", ex[0].Client, ex[0].Server)
			}
		},
	},
	{
		name: "sll2", link: pcapgen.Link{Type: layers.LinkTypeLinuxSLL2},
		write: func(w *pcapgen.Writer) error {
			return simple(w, "10.0.0.1:40014", "10.0.0.2:80", pcapgen.Request("GET", "/sll2", nil, nil), pcapgen.Response(200, nil, nil))
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) { wantCount(t, ex, 1) },
	},
	{
		name: "null-ipv6-af28", link: pcapgen.Link{Type: layers.LinkTypeNull, NullAF: 28},
		write: func(w *pcapgen.Writer) error {
			return simple(w, "[::1]:40015", "[::1]:8080", pcapgen.Request("GET", "/null", nil, nil), pcapgen.Response(304, nil, nil))
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) { wantCount(t, ex, 1) },
	},
	{
		// OpenBSD's loopback: the address family in network byte order,
		// 24 for IPv6.
		name: "loop-ipv4-ipv6", link: pcapgen.Link{Type: layers.LinkTypeLoop, NullAF: 24},
		write: func(w *pcapgen.Writer) error {
			if err := simple(w, "127.0.0.1:40019", "127.0.0.1:8080", pcapgen.Request("GET", "/loop4", nil, nil), pcapgen.Response(200, nil, []byte("four"))); err != nil {
				return err
			}
			return simple(w, "[::1]:40020", "[::1]:8080", pcapgen.Request("GET", "/loop6", nil, nil), pcapgen.Response(200, nil, []byte("six")))
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 2)
			if ex[0].Target != "/loop4" || ex[0].Client.String() != "127.0.0.1:40019" || ex[1].Target != "/loop6" || ex[1].Client.String() != "[::1]:40020" {
				t.Errorf("got %s from %s, %s from %s", ex[0].Target, ex[0].Client, ex[1].Target, ex[1].Client)
			}
			for _, e := range ex {
				wantFlags(t, e, 0)
			}
		},
	},
	{
		name: "bodies-and-redaction", link: ethernet,
		write: func(w *pcapgen.Writer) error {
			c := w.NewConn("10.0.0.1:40016", "10.0.0.2:80", 1000, 5000)
			c.Handshake()
			c.Send(true, pcapgen.Request("POST", "/upload?token=abc&x=1", []string{"Authorization: Bearer s3cret", "Cookie: sid=42"}, body(1500, 'u')))
			c.Send(false, pcapgen.Response(200, []string{"Set-Cookie: sid=43"}, nil))
			c.Send(true, pcapgen.Request("GET", "/close", []string{"Authorization: Bearer s3cret"}, nil))
			c.Send(false, []byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"))
			c.Put(false, c.SSeq, pcapgen.FIN|pcapgen.ACK, nil)
			c.SSeq++
			return c.Close()
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 2)
			for _, e := range ex {
				if a, _ := e.Header("Authorization"); !redact.IsMarker(a) {
					t.Errorf("authorization %q not redacted", a)
				}
			}
			a0, _ := ex[0].Header("Authorization")
			a1, _ := ex[1].Header("Authorization")
			if a0 != a1 {
				t.Errorf("equal secrets redacted differently: %q %q", a0, a1)
			}
			if ex[1].RespBodyLen != int64(len("until the end")) || ex[1].Flags&tape.RespIncomplete != 0 {
				t.Errorf("close-delimited body %d flags %b", ex[1].RespBodyLen, ex[1].Flags)
			}
		},
	},
	{
		name: "snaplen", link: ethernet, snaplen: 96,
		write: func(w *pcapgen.Writer) error {
			return simple(w, "10.0.0.1:40017", "10.0.0.2:80",
				pcapgen.Request("GET", "/a-long-target-that-the-snap-length-cuts-off-before-the-end", []string{"User-Agent: test"}, nil),
				pcapgen.Response(200, nil, body(500, 'c')))
		},
		check: func(t *testing.T, ex []tape.Exchange, st Stats) {
			wantCount(t, ex, 0)
			if st.TruncatedPackets == 0 || st.RequestIncomplete != 1 {
				t.Errorf("truncated %d request_incomplete %d", st.TruncatedPackets, st.RequestIncomplete)
			}
		},
	},
}

// writeEdge renders an edge case as pcap bytes.
func writeEdge(t *testing.T, c edgeCase) []byte {
	t.Helper()
	return genPcap(t, c.link, t0, c.snaplen, c.write)
}

// genPcap renders what write writes as pcap bytes, its first packet at
// start (snaplen as pcapgen.NewWriter takes it).
func genPcap(t *testing.T, link pcapgen.Link, start time.Time, snaplen int, write func(w *pcapgen.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pcapgen.NewWriter(&b, link, start, snaplen)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(w); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEdgeCases checks the committed captures in testdata/edge against
// their generator (go test -update rewrites them) and what the capture
// makes of each.
func TestEdgeCases(t *testing.T) {
	for _, c := range edgeCases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", "edge", c.name+".pcap")
			data := writeEdge(t, c)
			if golden.Update() {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			committed, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(committed, data) {
				t.Fatalf("%s differs from its generator (go test -update rewrites it)", path)
			}
			ex, st := captureFile(t, path, Options{Redact: redact.Options{Key: []byte("k")}})
			c.check(t, ex, st)
		})
	}
}
