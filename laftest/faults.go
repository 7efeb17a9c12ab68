package laftest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lafgo/laf"
)

// OutageHeartbeat is the heartbeat TestBrokerOutage runs its nodes with.
const OutageHeartbeat = 200 * time.Millisecond

// TestBrokerOutage checks two endpoints, on a and b (two clients of one
// broker), through an outage of the broker. stop takes the broker down and
// returns once both clients have noticed; start brings it back. While it
// is down, each node still delivers to its own sockets, and sends that
// must cross the broker fail with its error and count in
// Stats.PublishErrors, one each. Even after many heartbeats down, each
// node still counts the other, and a push to the other's socket fails with
// the broker's error, never laf.ErrNotFound. Once it is back, pushes
// between the nodes resume by themselves, and nothing sent during the
// outage arrives late. Adapters call it from their own tests.
func TestBrokerOutage(t *testing.T, a, b laf.Broker, stop, start func()) {
	nodes, socks := startPair(t, []laf.Option{laf.WithHeartbeat(OutageHeartbeat)}, a, b)
	push(t, nodes[0], socks[1], "before")
	socks[1].expect(t, "before")
	stop()
	// Not ready within a heartbeat: publishes fail, probes go unanswered.
	for i, n := range nodes {
		waitWithin(t, fmt.Sprintf("node %d not ready with the broker down", i), OutageHeartbeat+readyMargin,
			func() bool { return n.Endpoint.Ready() != nil })
	}
	outage(t, nodes[0], socks[0], socks[1])
	// Longer than three heartbeats: the cut is this node's, not the
	// other's, so presence keeps it.
	time.Sleep(5 * OutageHeartbeat)
	for i, n := range nodes {
		if got := n.Endpoint.Presence().Nodes(); got != 2 {
			t.Fatalf("node %d counts %d nodes after %v without the broker, want 2", i, got, 5*OutageHeartbeat)
		}
		if n.Endpoint.Ready() == nil {
			t.Fatalf("node %d ready with the broker down", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := nodes[1].Endpoint.SendSocket(ctx, socks[0].id, laf.Text("lost")); err == nil || errors.Is(err, laf.ErrNotFound) {
		t.Fatalf("push to another node after a long outage: %v, want the broker's error", err)
	}
	start()
	resume(t, nodes[0], socks[1])
	resume(t, nodes[1], socks[0])
	waitFor(t, "both nodes ready", func() bool { return nodes[0].Endpoint.Ready() == nil && nodes[1].Endpoint.Ready() == nil })
	for i, n := range nodes {
		if got := n.Endpoint.Presence().Nodes(); got != 2 {
			t.Fatalf("node %d counts %d nodes after the outage, want 2", i, got)
		}
	}
}

// sock is a client socket on one node, with its messages read into a
// channel so that a test can wait for one without closing the socket
// (coder/websocket closes a connection whose read times out).
type sock struct {
	id   string
	msgs chan string
}

// startPair starts one endpoint per broker and a socket on each, and
// waits until both nodes see both sockets. PublishErrors counts sends
// only, not beats.
func startPair(t *testing.T, opts []laf.Option, brokers ...laf.Broker) ([]*Server, []*sock) {
	t.Helper()
	fn := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID())
		}
		return nil
	}
	var nodes []*Server
	var socks []*sock
	for _, b := range brokers {
		srv := NewServer(t, fn, append([]laf.Option{laf.WithBroker(b)}, opts...)...)
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
	waitFor(t, "both nodes see both sockets", func() bool {
		for _, n := range nodes {
			if n.Endpoint.Presence().Nodes() != len(nodes) {
				return false
			}
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

func push(t *testing.T, from *Server, to *sock, text string) {
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
	case <-time.After(DefaultTimeout):
		t.Fatalf("socket %s: no %q within %v", s.id, want, DefaultTimeout)
	}
}

// outage checks a node while the broker is down: sends to its own socket
// are delivered, and sends that must go through the broker fail and are
// counted, one each.
func outage(t *testing.T, node *Server, local, remote *sock) {
	t.Helper()
	ep := node.Endpoint
	push(t, node, local, "local during outage")
	local.expect(t, "local during outage")

	before := ep.Stats().PublishErrors
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	start := time.Now()
	err := ep.Broadcast(ctx, laf.Text("broadcast during outage"))
	checkBlock(t, "Broadcast with the broker down", time.Since(start), laf.DefaultBrokerTimeout)
	var be *laf.BrokerError
	if !errors.As(err, &be) || be.Local != 1 {
		t.Fatalf("Broadcast with the broker down: %v, want a *laf.BrokerError with Local 1", err)
	}
	local.expect(t, "broadcast during outage")
	if got := ep.Stats().PublishErrors; got != before+1 {
		t.Fatalf("PublishErrors after a failed Broadcast: %d, want %d", got, before+1)
	}
	start = time.Now()
	err = ep.SendSocket(ctx, remote.id, laf.Text("lost"))
	checkBlock(t, "push with the broker down", time.Since(start), laf.DefaultBrokerTimeout)
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
func resume(t *testing.T, from *Server, to *sock) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		// Errors are expected until this node's client has reconnected,
		// but never ErrNotFound: the other node is live.
		if err := from.Endpoint.SendSocket(context.Background(), to.id, laf.Text("resume")); errors.Is(err, laf.ErrNotFound) {
			t.Fatalf("push to a live socket after the broker came back: %v", err)
		}
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
				case <-time.After(DefaultTimeout):
					t.Fatalf("socket %s: no \"after\" within %v", to.id, DefaultTimeout)
				}
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushes did not resume within 30s of the restart (%d tries)", i+1)
		}
	}
}

// Margins for the bounds the fault tests assert, for a slow shared
// machine: a send may block for the broker timeout plus blockMargin, and
// readiness may lag one heartbeat plus readyMargin.
const (
	blockMargin = 1500 * time.Millisecond
	readyMargin = 1500 * time.Millisecond
)

// checkBlock fails the test if a send blocked longer than the broker
// timeout plus blockMargin.
func checkBlock(t *testing.T, what string, took, timeout time.Duration) {
	t.Helper()
	if took > timeout+blockMargin {
		t.Fatalf("%s blocked %v, over the broker timeout %v plus %v", what, took, timeout, blockMargin)
	}
}

// waitWithin waits for cond, failing the test if it does not hold
// within d. It returns how long it took.
func waitWithin(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("laftest: %s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}
