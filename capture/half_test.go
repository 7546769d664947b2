package capture

import (
	"testing"

	"github.com/herd-replay/herd/tape"
)

// TestRefusedUpgradeClosedByServer: a server refuses an Upgrade with a
// response delimited by its FIN. The client's bytes held while it waited
// (a pipelined request) are parsed as HTTP as soon as that response ends,
// not kept buffered, and accounted, until the connection is over.
func TestRefusedUpgradeClosedByServer(t *testing.T) {
	var sink memSink
	c := testConn(t, Options{}, &sink)
	cli, srv := &c.h[0], &c.h[1]
	ts := int64(1)
	send := func(h *half, data string) {
		ts++
		h.feed(&segment{data: []byte(data), ts: ts, packet: true})
		c.afterData()
	}
	send(cli, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
	send(cli, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	if cli.st != stHold || cli.heldBytes == 0 {
		t.Fatalf("client state %d, %d bytes held; want it waiting on the Upgrade", cli.st, cli.heldBytes)
	}
	send(srv, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nno upgrade here")
	srv.end()
	c.afterData()
	if cli.st == stHold || cli.heldBytes != 0 || c.holdFor != nil {
		t.Errorf("after the refusal ended: client state %d, %d bytes held, still waiting %v; want the held bytes parsed", cli.st, cli.heldBytes, c.holdFor != nil)
	}
	if c.eng.mem != 0 {
		t.Errorf("%d bytes accounted after the refusal ended, want 0", c.eng.mem)
	}
	if len(c.q) != 1 || c.q[0].h.target != "/next" {
		t.Errorf("%d requests queued, want /next waiting for its response", len(c.q))
	}
	c.ReassemblyComplete(nil)
	if len(sink.ex) != 2 || sink.ex[0].Status != 400 || sink.ex[1].Target != "/next" || sink.ex[1].Flags != tape.NoResponse {
		t.Errorf("got %+v", sink.ex)
	}
}
