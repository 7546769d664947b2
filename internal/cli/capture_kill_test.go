//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/herd-replay/herd/internal/testenv"
	"github.com/herd-replay/herd/tape"
)

// TestCaptureKill9 kills a live capture with SIGKILL and reads what it left:
// NAME.tape.partial holds every chunk written before the kill, readable up
// to the torn tail.
func TestCaptureKill9(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "herd")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/herd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build herd: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	out := filepath.Join(dir, "killed.tape")
	cmd := exec.Command(bin, "capture", "-i", "lo", "--port", fmt.Sprint(port), "-o", out)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill() // only the process this test started
			<-exited
		}
	}()

	// Send requests until a chunk of exchanges has reached the file (the
	// writer cuts one at least every second), bounded in time.
	partial := out + tape.PartialSuffix
	client := &http.Client{Timeout: 2 * time.Second}
	sent, before := 0, 0
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/r/%d", port, sent))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			sent++
		}
		if sent%10 == 0 {
			if before = countExchanges(partial); before > 0 && sent >= 20 {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if before == 0 {
		t.Fatalf("no exchange reached %s before the kill (sent %d requests)", partial, sent)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	killed = true
	<-exited

	if _, err := os.Stat(out); err == nil {
		t.Fatal("a killed capture must not leave the final name")
	}
	r, err := tape.Open(partial)
	if err != nil {
		t.Fatalf("open partial tape: %v", err)
	}
	defer r.Close()
	n := 0
	for {
		e, err := r.Next(context.Background())
		if err != nil {
			var te *tape.TruncatedError
			if !errors.Is(err, io.EOF) && !errors.As(err, &te) {
				t.Fatalf("after %d exchanges: %v", n, err)
			}
			break
		}
		if e.Status != 200 || e.Server.Port() != uint16(port) {
			t.Errorf("exchange %s: status %d server %s", e.Target, e.Status, e.Server)
		}
		n++
	}
	if n < before || n > sent {
		t.Errorf("read %d exchanges from the killed capture; %d were there before the kill, %d requests sent", n, before, sent)
	}
	t.Logf("sent %d requests, %d exchanges readable after kill -9", sent, n)
}

// countExchanges reads what a tape being written holds so far (0 when it
// cannot be opened yet).
func countExchanges(path string) int {
	r, err := tape.Open(path)
	if err != nil {
		return 0
	}
	defer r.Close()
	n := 0
	for {
		if _, err := r.Next(context.Background()); err != nil {
			return n
		}
		n++
	}
}
