package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/herd-replay/herd/internal/testenv"
)

// pathServer is a real server on 127.0.0.1 that counts requests by path
// and the Host they named.
type pathServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths map[string]int
	hosts map[string]int
}

func newPathServer(t *testing.T) *pathServer {
	s := &pathServer{paths: map[string]int{}, hosts: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths[r.URL.Path]++
		s.hosts[r.Host]++
		s.mu.Unlock()
		w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *pathServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.paths {
		n += v
	}
	return n
}

// browsingTape is the shared capture of real browsing: 338 requests to 27
// servers. By tshark (-Y http.request -e http.host), 166 went to
// images1.ynet.co.il and 115 to www.ynet.co.il.
func browsingTape(t *testing.T) string {
	return captureTape(t, filepath.Join(testenv.SharedPcaps(t), "http-browsing-338req-large.pcap"))
}

func TestInspectServers(t *testing.T) {
	tp := browsingTape(t)
	stdout, stderr, code := run(t, "inspect", tp, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var ins struct {
		Requests int64 `json:"requests"`
		Servers  []struct {
			Address     string  `json:"address"`
			Host        string  `json:"host"`
			Requests    int64   `json:"requests"`
			Connections int64   `json:"connections"`
			RPS         float64 `json:"rps"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(stdout), &ins); err != nil {
		t.Fatal(err)
	}
	if len(ins.Servers) != 27 {
		t.Fatalf("%d servers, want 27", len(ins.Servers))
	}
	var sum int64
	for _, s := range ins.Servers {
		sum += s.Requests
	}
	s0, s1 := ins.Servers[0], ins.Servers[1]
	if sum != ins.Requests || s0.Host != "images1.ynet.co.il" || s0.Requests != 166 || s1.Host != "www.ynet.co.il" || s1.Requests != 115 ||
		s0.Address != "212.199.202.9:80" || s0.Connections == 0 || s0.RPS <= 0 {
		t.Fatalf("servers %+v (sum %d of %d)", ins.Servers[:2], sum, ins.Requests)
	}
	text, _, _ := run(t, "inspect", tp)
	if !strings.Contains(text, "27 servers") || !strings.Contains(text, "images1.ynet.co.il") || !strings.Contains(text, "--target-map") {
		t.Fatalf("text lists no servers:\n%s", text)
	}
	// A tape of one server lists none in text.
	one := captureTape(t, filepath.Join(testenv.SharedPcaps(t), "http-pipelined-40req-404.pcap"))
	if text, _, _ := run(t, "inspect", one); strings.Contains(text, "servers (replay one") {
		t.Fatalf("a one-server tape lists servers:\n%s", text)
	}
}

// TestReplayTargetMap sends two services of the browsing capture to two
// staging servers and leaves the other 25 out: each server counts its
// service's requests exactly, and the results say which went where.
func TestReplayTargetMap(t *testing.T) {
	tp := browsingTape(t)
	images, www := newPathServer(t), newPathServer(t)
	js := filepath.Join(t.TempDir(), "r.json")
	_, stderr, code := run(t, "replay", tp, "--target-map", "images1.*="+images.URL, "--target-map", "www.ynet.co.il="+www.URL,
		"--scale-mode", "compress", "--scale", "8", "--json", js, "--slo", "errors<100%")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if images.total() != 166 || www.total() != 115 {
		t.Fatalf("images got %d, www %d; want 166 and 115", images.total(), www.total())
	}
	if images.hosts[strings.TrimPrefix(images.URL, "http://")] != 166 {
		t.Fatalf("images saw hosts %v", images.hosts)
	}
	f := resultsFile(t, js)
	st := f.Steps[0]
	if len(st.Targets) != 2 || st.Targets[0].Sent != 166 || st.Targets[1].Sent != 115 || st.Targets[0].Target != images.URL ||
		st.Targets[0].Name != "images1.*" {
		t.Fatalf("targets %+v", st.Targets)
	}
	if f.Window.Skipped["no_target"] != 338-166-115 {
		t.Fatalf("skipped %v", f.Window.Skipped)
	}
	if !strings.Contains(stderr, "herd: targets: images1.* -> "+images.URL+" (166 requests)") || !strings.Contains(stderr, "(no_target)") {
		t.Fatalf("stderr does not say where requests go:\n%s", stderr)
	}
	report, _, _ := run(t, "report", js)
	if !strings.Contains(report, www.URL) || !strings.Contains(report, "images1.*") {
		t.Fatalf("the text report does not name the targets:\n%s", report)
	}
}

// TestReplayManyServersWarns: a tape of many servers replayed whole to
// one target says so; --server picks one.
func TestReplayManyServersWarns(t *testing.T) {
	tp := browsingTape(t)
	srv := newPathServer(t)
	_, stderr, code := run(t, "replay", tp, "--target", srv.URL, "--scale-mode", "compress", "--scale", "8", "--slo", "errors<100%")
	if code != 0 || !strings.Contains(stderr, "27 servers") || !strings.Contains(stderr, "--server") {
		t.Fatalf("exit %d; no warning about the servers:\n%s", code, stderr)
	}
	gifs := func(s *pathServer) (n int) {
		for p, c := range s.paths {
			if strings.HasSuffix(p, ".gif") {
				n += c
			}
		}
		return n
	}
	// www.ynet.co.il alone, counted at the target: its 115, some gifs.
	all := newPathServer(t)
	if _, stderr, code = run(t, "replay", tp, "--target", all.URL, "--server", "www.ynet.co.il", "--scale-mode", "compress", "--scale", "8",
		"--slo", "errors<100%"); code != 0 || all.total() != 115 || gifs(all) == 0 {
		t.Fatalf("exit %d; the target got %d requests (%d gifs), want www.ynet.co.il's 115\n%s", code, all.total(), gifs(all), stderr)
	}
	srv = newPathServer(t)
	_, stderr, code = run(t, "replay", tp, "--target", srv.URL, "--server", "www.ynet.co.il", "--scale-mode", "compress", "--scale", "8",
		"--slo", "errors<100%", "--exclude", "*.gif", "--max-rate", "5000")
	if code != 0 || strings.Contains(stderr, "27 servers") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if n, want := srv.total(), 115-gifs(all); n != want || gifs(srv) != 0 {
		t.Fatalf("the target got %d requests (%d gifs): want www.ynet.co.il's 115 without its %d gifs, %d", n, gifs(srv), gifs(all), want)
	}
	if !strings.Contains(stderr, "capped at 5000 req/s (--max-rate)") {
		t.Fatalf("the plan line does not say the cap:\n%s", stderr)
	}
}

func TestFilterUsage(t *testing.T) {
	for _, args := range [][]string{
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--target-map", "a=http://127.0.0.1:2"},
		{"replay", sampleTape, "--server", "a", "--target-map", "a=http://127.0.0.1:2"},
		{"replay", sampleTape, "--target-map", "a"},
		{"replay", sampleTape, "--target-map", "a=ftp://x"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--server", ""},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--rewrite-path", "v1=/v2"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--rewrite-path", "/a=/b/*"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--include", ""},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--exclude", "GET api"},
		{"replay", sampleTape, "--target", "http://127.0.0.1:1", "--max-rate", "-1"},
		{"ramp", sampleTape, "--target", "http://127.0.0.1:1", "--max-rate", "-1"},
		// HTTP/2 goes to one target.
		{"replay", sampleTape, "--target-map", "shop*=http://127.0.0.1:2", "--target-map", "*=http://127.0.0.1:3", "--protocol", "h2c"},
	} {
		if _, stderr, code := run(t, args...); code != ExitUsage {
			t.Errorf("herd %v: exit %d, want %d\n%s", args, code, ExitUsage, stderr)
		}
	}
}
