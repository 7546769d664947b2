package record

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herd-replay/herd/tape"
)

// TestStreamingResponse: the first part of a response reaches the client
// while the upstream still holds the rest back, so nothing waits for a
// whole body.
func TestStreamingResponse(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "event: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		fmt.Fprint(w, "event: second\n\n")
	})
	pr := startProxy(t, be.URL, Options{}, nil)
	resp, err := http.Get("http://" + pr.addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "event: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release) // only now does the upstream send the rest
	rest, _ := io.ReadAll(br)
	if string(rest) != "\nevent: second\n\n" {
		t.Fatalf("rest %q", rest)
	}
	pr.stop(t)
	exs := readTape(t, pr.path)
	if len(exs) != 1 || exs[0].RespBodyLen != int64(len("event: first\n\nevent: second\n\n")) || !exs[0].ResponseComplete() {
		t.Fatalf("tape: %+v", exs)
	}
}

// TestStreamingRequest: the upstream reads the first part of a request
// body before the client has sent the rest.
func TestStreamingRequest(t *testing.T) {
	gotFirst := make(chan struct{})
	be := newBackend(t, nil)
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		io.ReadFull(r.Body, buf)
		close(gotFirst)
		rest, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", buf, rest)
	})
	pr := startProxy(t, be.URL, Options{MaxBody: 8}, nil)
	c, err := net.Dial("tcp", pr.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "PUT /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\nfirst")
	select {
	case <-gotFirst:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream did not get the first part of the body before the rest was sent")
	}
	fmt.Fprint(c, "later")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "first|later" {
		t.Fatalf("upstream saw %q", b)
	}
	c.Close()
	pr.stop(t)
	exs := readTape(t, pr.path)
	if len(exs) != 1 || string(exs[0].ReqBody) != "firstlat" || exs[0].ReqBodyLen != 10 || exs[0].Flags&tape.ReqBodyTruncated == 0 {
		t.Fatalf("tape: %+v", exs)
	}
}

// TestExpectContinue: a client that waits for 100 Continue gets it from
// the upstream through the proxy, then sends its body.
func TestExpectContinue(t *testing.T) {
	be := newBackend(t, nil)
	pr := startProxy(t, be.URL, Options{}, nil)
	c, err := net.Dial("tcp", pr.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "POST /e HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("interim response: %q %v", line, err)
	}
	br.ReadString('\n') // the empty line after it
	fmt.Fprint(c, "body")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("final response: %v %v", resp, err)
	}
	c.Close()
	st := pr.stop(t)
	if got := be.received(); len(got) != 1 || got[0] != "POST /e 4" {
		t.Fatalf("backend received %q", got)
	}
	exs := readTape(t, pr.path)
	if len(exs) != 1 || string(exs[0].ReqBody) != "body" || st.Interim != 1 {
		t.Fatalf("tape %+v, interim %d", exs, st.Interim)
	}
}

// TestUpgradeTunnel: a WebSocket-style upgrade is passed through and its
// bytes counted, not recorded.
func TestUpgradeTunnel(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 64)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				c.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	})
	pr := startProxy(t, be.URL, Options{}, nil)
	c, err := net.Dial("tcp", pr.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for _, msg := range []string{"ping", "pong!"} {
		fmt.Fprint(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q: %q %v", msg, got, err)
		}
	}
	c.Close()
	st := pr.stop(t)
	exs := readTape(t, pr.path)
	if len(exs) != 1 || exs[0].Status != 101 || exs[0].Flags&tape.Upgraded == 0 {
		t.Fatalf("tape %+v", exs)
	}
	if st.Upgraded != 1 || st.TunnelBytes != 2*int64(len("pingpong!")) {
		t.Fatalf("upgraded %d, tunnel bytes %d", st.Upgraded, st.TunnelBytes)
	}
}

// TestSlowUploadNoTimeout: the response timeout runs from the end of the
// request, so an upload slower than it is not cut.
func TestSlowUploadNoTimeout(t *testing.T) {
	be := newBackend(t, nil)
	pr := startProxy(t, be.URL, Options{ResponseTimeout: 200 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", pr.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "POST /slow HTTP/1.1\r\nHost: svc\r\nContent-Length: 6\r\n\r\n")
	for _, part := range []string{"ab", "cd", "ef"} {
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(c, part)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slow upload: %v %v", resp, err)
	}
	c.Close()
	st := pr.stop(t)
	if got := be.received(); len(got) != 1 || got[0] != "POST /slow 6" || st.UpstreamTimeouts != 0 {
		t.Fatalf("backend %v, timeouts %d", got, st.UpstreamTimeouts)
	}
}
