package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/tape"
)

// sampledTape writes the same small recording with the sampling rate pct
// in its metadata (0: not sampled).
func sampledTape(t *testing.T, pct float64) string {
	t.Helper()
	base := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC).UnixNano()
	var exs []tape.Exchange
	for c := range 20 {
		for i := range 3 {
			start := base + int64(c)*int64(50*time.Millisecond) + int64(i)*int64(200*time.Millisecond)
			exs = append(exs, tape.Exchange{
				ConnID: uint64(c + 1), Seq: uint32(i),
				Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(30000+c)), Server: netip.MustParseAddrPort("10.0.1.1:80"),
				ReqStart: start, ReqEnd: start + 1000, RespStart: start + 2e6, RespEnd: start + 3e6,
				Method: "GET", Target: fmt.Sprintf("/c/%d/r/%d", c, i), Proto: "HTTP/1.1", Status: 200, RespProto: "HTTP/1.1",
			})
		}
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("sampled-%g.tape", pct))
	meta := tape.Meta{Source: tape.Source{Kind: "live", SamplePct: pct}}
	if err := tape.WriteFile(path, meta, tape.WriterOptions{NoSync: true, FlushInterval: -1}, exs); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSampledTapeScalesBack: a tape that kept 25% of the connections
// stands for four times its traffic: replayed at 1x, the target receives
// four times what the same recording unsampled sends (counted at the
// server), the results' 1x rate is four times the recorded one, and
// inspect says so.
func TestSampledTapeScalesBack(t *testing.T) {
	replayed := func(path string) (int64, float64) {
		srv, n := okServer(t, 0)
		out := filepath.Join(t.TempDir(), "r.json")
		if _, stderr, code := run(t, "replay", path, "--target", srv.URL, "--window", "all", "--json", out); code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		m := contract(t, out)
		return n.Load(), m["window"].(map[string]any)["rps"].(float64)
	}
	whole, wholeRPS := replayed(sampledTape(t, 0))
	sampled, sampledRPS := replayed(sampledTape(t, 25))
	if whole != 60 || sampled != 4*whole {
		t.Errorf("the server received %d requests from the sampled tape and %d from the unsampled one; want 4 times 60", sampled, whole)
	}
	if math.Abs(sampledRPS-4*wholeRPS) > 0.01 { // each rounded to 3 decimals
		t.Errorf("1x rate %v for the 25%% sample, %v unsampled", sampledRPS, wholeRPS)
	}

	path := sampledTape(t, 25)
	out, _, code := run(t, "inspect", path)
	if code != 0 || !strings.Contains(out, "sampled") || !strings.Contains(out, "25% of the connections") || !strings.Contains(out, "1x as 4 times them") {
		t.Errorf("inspect (exit %d):\n%s", code, out)
	}
	js, _, _ := run(t, "inspect", path, "--json")
	var m struct {
		SamplePct float64 `json:"sample_pct"`
	}
	if err := json.Unmarshal([]byte(js), &m); err != nil || m.SamplePct != 25 {
		t.Errorf("inspect --json sample_pct %v (%v)", m.SamplePct, err)
	}
}
