package capture

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// TestConformance captures every shared real-world capture and compares
// the exchanges written with the hand-checked counts of expected.tsv.
func TestConformance(t *testing.T) {
	dir := testenv.SharedPcaps(t)
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 {
			t.Fatalf("expected.tsv: bad line %q", line)
		}
		want, err := strconv.Atoi(cols[1])
		if err != nil {
			t.Fatalf("expected.tsv: bad count in %q", line)
		}
		name := cols[0]
		n++
		t.Run(name, func(t *testing.T) {
			ex, st := captureFile(t, filepath.Join(dir, name), Options{})
			if len(ex) != want {
				t.Errorf("got %d exchanges, want %d (stats %+v)", len(ex), want, st)
			}
			if st.Exchanges != int64(len(ex)) {
				t.Errorf("Stats.Exchanges %d, exchanges written %d", st.Exchanges, len(ex))
			}
			if sum := st.Responses + st.NoResponse + st.IncompleteGap + st.IncompleteEnd + st.IncompleteFlush + st.IncompleteBroken + st.IncompleteReset; sum != st.Exchanges {
				t.Errorf("exchange counters add up to %d, not %d", sum, st.Exchanges)
			}
			if check := conformanceChecks[name]; check != nil {
				check(t, ex, st)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 25 {
		t.Errorf("expected.tsv lists %d captures, want 25", n)
	}
}

// conformanceChecks hold what the notes of expected.tsv and SOURCES.md say
// about a file beyond its count.
//
// http-pcapng-two-interfaces-asymmetric.pcapng: SOURCES.md describes one
// connection split across the two interfaces. The packets say otherwise:
// the client side is 192.168.0.1:1044 -> 10.10.10.1:80 (interface 1) and
// the server side 192.168.1.146:80 -> 192.168.1.103:1044 (interface 0), a
// NAT between them (tshark -T fields -e ip.src -e ip.dst -e tcp.stream puts
// them in streams 0 and 1). No 4-tuple joins them, so the 3 requests are
// written without response and the 3 responses are orphans; the count of
// complete requests, 3, is as expected.
var conformanceChecks = map[string]func(t *testing.T, ex []tape.Exchange, st Stats){
	"http-requests-only-unidirectional-378req.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		if st.RequestIncomplete != 242 || st.NoResponse != 139 {
			t.Errorf("request_incomplete %d, without response %d; want 242 and 139", st.RequestIncomplete, st.NoResponse)
		}
	},
	"http-scan-797req-requests-only.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		n := 0
		for _, e := range ex {
			if strings.Contains(e.Target, " ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d targets with a raw space, want 1 kept as sent", n)
		}
	},
	"http-tcp-retrans-ooo-gap-synthetic.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		found := false
		for _, e := range ex {
			if e.Target == "/tcp-gap" {
				found = true
				if e.Flags&(tape.Gap|tape.RespIncomplete) != tape.Gap|tape.RespIncomplete {
					t.Errorf("/tcp-gap flags %06b, want gap and response incomplete", e.Flags)
				}
			}
		}
		if !found {
			t.Error("no exchange for /tcp-gap")
		}
	},
	"http-midstream-starts-with-response-nosyn.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		if st.OrphanResponses != 1 || len(ex) != 1 || ex[0].Status != 404 {
			t.Errorf("orphans %d; want 1, and the request paired with its 404", st.OrphanResponses)
		}
	},
	"http-docker-api-json-upgrade-port2375.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		if st.UpgradedConnections != 1 || st.Responses != 6 {
			t.Errorf("upgraded %d, complete responses %d; want 1 and 6", st.UpgradedConnections, st.Responses)
		}
	},
	"http-post-chunked-req-gzip-100continue.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		if st.InterimResponses != 3 || st.Responses != 10 {
			t.Errorf("interim %d, responses %d; want 3 and 10", st.InterimResponses, st.Responses)
		}
	},
	"http-snaplen96-truncated.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		if st.TruncatedPackets == 0 || st.RequestIncomplete != 1 {
			t.Errorf("truncated packets %d, request_incomplete %d", st.TruncatedPackets, st.RequestIncomplete)
		}
	},
	"http-pipelined-40req-404.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		for i, e := range ex {
			if e.Status != 404 || e.Seq != uint32(i) {
				t.Errorf("exchange %d: status %d seq %d", i, e.Status, e.Seq)
			}
		}
	},
	"http-mixed-protocols-vlan-ipv6-noise.pcap": func(t *testing.T, ex []tape.Exchange, st Stats) {
		if st.NonHTTPConnections == 0 || st.NonTCPPackets == 0 {
			t.Errorf("non-HTTP connections %d, non-TCP packets %d", st.NonHTTPConnections, st.NonTCPPackets)
		}
	},
}
