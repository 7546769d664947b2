package capture

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-replay/herd/internal/redact"
	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// orderSink records, for every exchange written, how many requests
// OnRequest had handed over by then.
type orderSink struct {
	memSink
	hooked *[]tape.Exchange
	seen   []int
}

func (s *orderSink) Write(e *tape.Exchange) error {
	s.seen = append(s.seen, len(*s.hooked))
	return s.memSink.Write(e)
}

// TestOnRequest: every request the capture writes was handed to
// OnRequest first, whole, with the connection and Seq of its exchange, and
// without waiting for its response. Requests the capture discards are
// never handed over. Shared real captures: pipelining (40 requests sent
// before the first response), requests cut by the snap length, and
// request-only traffic.
func TestOnRequest(t *testing.T) {
	dir := testenv.SharedPcaps(t)
	for _, name := range []string{
		"http-pipelined-40req-404.pcap",
		"http-snaplen96-truncated.pcap",
		"http-requests-only-unidirectional-378req.pcap",
		"http-post-chunked-req-gzip-100continue.pcap",
		"http-browsing-338req-large.pcap",
		// h2c, committed: streams with prior knowledge, and an Upgrade.
		"h2/h2c-prior-knowledge.pcap",
		"h2/h2c-upgrade.pcap",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if strings.HasPrefix(name, "h2/") {
				path = filepath.Join("testdata", name)
			}
			var hooked []tape.Exchange
			// Redaction off: the requests are handed over as captured, and
			// the exchanges are to be compared with them.
			opts := Options{Redact: redact.Options{Disabled: true}, OnRequest: func(e *tape.Exchange) {
				if e.Flags&tape.NoResponse == 0 || e.HasResponse() {
					t.Errorf("a hooked request claims a response: %+v", e)
				}
				c := *e
				c.ReqBody = append([]byte(nil), e.ReqBody...)
				hooked = append(hooked, c)
			}}
			src, err := OpenFiles([]string{path})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			sink := &orderSink{hooked: &hooked}
			if _, err := Run(context.Background(), src, opts, sink, nil); err != nil {
				t.Fatal(err)
			}
			written := sink.ex
			if len(hooked) != len(written) {
				t.Fatalf("%d requests handed over, %d exchanges written", len(hooked), len(written))
			}
			type key struct {
				conn uint64
				seq  uint32
			}
			byKey := map[key]int{}
			for i, h := range hooked {
				byKey[key{h.ConnID, h.Seq}] = i
			}
			for j, w := range written {
				i, ok := byKey[key{w.ConnID, w.Seq}]
				if !ok {
					t.Fatalf("exchange %d (conn %d seq %d) was never handed over", j, w.ConnID, w.Seq)
				}
				h := hooked[i]
				if h.Method != w.Method || h.Target != w.Target || h.ReqStart != w.ReqStart || h.ReqEnd != w.ReqEnd ||
					string(h.ReqBody) != string(w.ReqBody) || h.ReqBodyLen != w.ReqBodyLen {
					t.Fatalf("handed over %s %s [%d..%d] body %d, written %s %s [%d..%d] body %d", h.Method, h.Target, h.ReqStart,
						h.ReqEnd, h.ReqBodyLen, w.Method, w.Target, w.ReqStart, w.ReqEnd, w.ReqBodyLen)
				}
				if sink.seen[j] <= i {
					t.Fatalf("exchange %d was written before its request was handed over", j)
				}
			}
			if len(hooked) == 0 && name != "http-snaplen96-truncated.pcap" {
				t.Fatal("no request handed over")
			}
			if name == "http-pipelined-40req-404.pcap" && sink.seen[0] < 2 {
				t.Fatalf("the first of 40 pipelined requests was written after %d were handed over: OnRequest waited for responses", sink.seen[0])
			}
		})
	}
}
