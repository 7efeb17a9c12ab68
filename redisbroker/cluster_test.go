package redisbroker_test

// Helpers shared, word for word, with natsbroker's tests.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
)

// sock is a client socket on one node, with its messages read into a
// channel so that a test can wait for one without closing the socket
// (coder/websocket closes a connection whose read times out).
type sock struct {
	id   string
	msgs chan string
}

// startPair starts one endpoint per broker and a socket on each, and
// waits until both nodes see both sockets. The heartbeat is long, so that
// no heartbeat publish falls inside the test and PublishErrors counts only
// the test's own sends.
func startPair(t *testing.T, brokers ...laf.Broker) ([]*laftest.Server, []*sock) {
	t.Helper()
	fn := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID())
		}
		return nil
	}
	var nodes []*laftest.Server
	var socks []*sock
	for _, b := range brokers {
		srv := laftest.NewServer(t, fn, laf.WithBroker(b), laf.WithHeartbeat(time.Hour))
		conn := srv.Dial(t)
		s := &sock{id: conn.ReadText(), msgs: make(chan string, 4096)}
		go func() {
			for {
				_, data, err := conn.WS.Read(context.Background())
				if err != nil {
					return
				}
				select {
				case s.msgs <- string(data):
				default: // the test has stopped reading
				}
			}
		}()
		nodes = append(nodes, srv)
		socks = append(socks, s)
	}
	eventually(t, "both nodes see both sockets", func() bool {
		for _, n := range nodes {
			for _, s := range socks {
				if !n.Endpoint.Presence().Online(s.id) {
					return false
				}
			}
		}
		return true
	})
	return nodes, socks
}

func push(t *testing.T, from *laftest.Server, to *sock, text string) {
	t.Helper()
	if err := from.Endpoint.SendSocket(context.Background(), to.id, laf.Text(text)); err != nil {
		t.Fatalf("push %q: %v", text, err)
	}
}

// expect waits for the socket's next message and checks it.
func (s *sock) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-s.msgs:
		if got != want {
			t.Fatalf("socket %s got %q, want %q", s.id, got, want)
		}
	case <-time.After(laftest.DefaultTimeout):
		t.Fatalf("socket %s: no %q within %v", s.id, want, laftest.DefaultTimeout)
	}
}

// outage checks a node while the broker is down: sends to its own socket
// are delivered, and sends that must go through the broker fail and are
// counted, one each.
func outage(t *testing.T, node *laftest.Server, local, remote *sock) {
	t.Helper()
	ep := node.Endpoint
	push(t, node, local, "local during outage")
	local.expect(t, "local during outage")

	before := ep.Stats().PublishErrors
	ctx, cancel := context.WithTimeout(context.Background(), laftest.DefaultTimeout)
	defer cancel()
	if err := ep.Broadcast(ctx, laf.Text("broadcast during outage")); err == nil {
		t.Fatal("Broadcast with the broker down: no error")
	}
	local.expect(t, "broadcast during outage")
	if got := ep.Stats().PublishErrors; got != before+1 {
		t.Fatalf("PublishErrors after a failed Broadcast: %d, want %d", got, before+1)
	}
	err := ep.SendSocket(ctx, remote.id, laf.Text("lost"))
	if err == nil || errors.Is(err, laf.ErrNotFound) {
		t.Fatalf("push to another node with the broker down: %v, want the broker's error", err)
	}
	if got := ep.Stats().PublishErrors; got != before+2 {
		t.Fatalf("PublishErrors after a failed push: %d, want %d", got, before+2)
	}
}

// resume pushes from node to the socket on the other node until one push
// gets through, as it must once the broker is back and both clients have
// reconnected by themselves; then checks that nothing published during the
// outage arrives late and that pushes keep flowing.
func resume(t *testing.T, from *laftest.Server, to *sock) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		// Errors are expected until this node's client has reconnected.
		from.Endpoint.SendSocket(context.Background(), to.id, laf.Text("resume"))
		select {
		case got := <-to.msgs:
			if got != "resume" {
				t.Fatalf("first message after the restart: %q, want \"resume\"", got)
			}
			// Drain the retries still in flight, up to a marker.
			push(t, from, to, "after")
			for {
				select {
				case got := <-to.msgs:
					if got == "after" {
						return
					}
					if got != "resume" {
						t.Fatalf("after the restart: got %q", got)
					}
				case <-time.After(laftest.DefaultTimeout):
					t.Fatalf("socket %s: no \"after\" within %v", to.id, laftest.DefaultTimeout)
				}
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushes did not resume within 30s of the restart (%d tries)", i+1)
		}
	}
}

// ownedMessages publishes distinct messages through b, keeps the slices
// its subscriber is given, and checks them all at the end.
func ownedMessages(t *testing.T, b laf.Broker) {
	t.Helper()
	const n = 500
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []byte, n)
	if err := b.Subscribe(ctx, func(msg []byte) { got <- msg }); err != nil {
		t.Fatal(err)
	}
	want := func(i int) string { return fmt.Sprintf("message %03d %s", i, strings.Repeat("x", i)) }
	for i := range n {
		if err := b.Publish(context.Background(), []byte(want(i))); err != nil {
			t.Fatal(err)
		}
	}
	kept := make([][]byte, 0, n)
	for range n {
		select {
		case msg := <-got:
			kept = append(kept, msg)
		case <-time.After(laftest.DefaultTimeout):
			t.Fatalf("%d of %d messages within %v", len(kept), n, laftest.DefaultTimeout)
		}
	}
	for i, msg := range kept {
		if string(msg) != want(i) {
			t.Fatalf("message %d is now %.20q…, want %.20q…", i, msg, want(i))
		}
	}
}
