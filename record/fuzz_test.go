package record

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzProxy sends arbitrary bytes to a running proxy, as a client would:
// whatever they are, the proxy answers or closes within its timeouts and
// never panics.
func FuzzProxy(f *testing.F) {
	be := newBackend(f, nil)
	pr := startProxy(f, be.URL, Options{IOTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, ResponseTimeout: time.Second, MaxBody: 64}, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", pr.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the proxy neither answered nor closed: %v", err)
		}
	})
}
