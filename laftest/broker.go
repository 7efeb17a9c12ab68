package laftest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/internal/wire"
)

// BrokerFactory returns a new client of one shared broker, one per node,
// and a function that cuts that client off at once, with no goodbye, as
// when its process dies.
type BrokerFactory func(t testing.TB) (b laf.Broker, cut func())

// BrokerHeartbeat is the heartbeat TestBroker runs its nodes with.
const BrokerHeartbeat = 100 * time.Millisecond

// TestBroker checks that a laf.Broker joins endpoints into a cluster:
// three endpoints on three servers, each with its own client of the
// broker, push by id to other nodes (and report unknown ids), broadcast
// to every socket exactly once, send to rooms and identities across
// nodes, agree on presence, drop a node that dies from presence, and
// take sends from an Emitter. It checks the broker's channels (publish
// to one, count its subscribers, subscribe and unsubscribe while
// running, keep one publisher's order across channels) and that sends go
// only where they must: a push by id to the node that holds the socket,
// a room send to the nodes with members. It checks the faults: a node
// that shuts down leaves presence at once and never comes back, and a
// send to a socket of a node that died is refused within a heartbeat.
// Adapters call it from their own tests.
func TestBroker(t *testing.T, newBroker BrokerFactory) {
	t.Run("Channels", func(t *testing.T) {
		a, _ := newBroker(t)
		b, _ := newBroker(t)
		channels(t, a, b)
	})
	t.Run("PushReachesOneNode", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 1)
		target := c.sockets[2][0]
		before := c.counts()
		for i := range 20 {
			c.require(c.nodes[0].Endpoint.SendSocket(context.Background(), target.id, laf.Text(fmt.Sprint("push ", i))))
		}
		for i := range 20 {
			target.conn.ExpectText(fmt.Sprint("push ", i))
		}
		after := c.counts()
		if got := after[2].get(wire.OpSend) - before[2].get(wire.OpSend); got != 20 {
			t.Fatalf("holding node got %d pushes, want 20", got)
		}
		for _, n := range []int{0, 1} {
			if got := after[n].get(wire.OpSend) - before[n].get(wire.OpSend); got != 0 {
				t.Fatalf("node %d, which does not hold the socket, got %d pushes", n, got)
			}
		}
	})
	t.Run("RoomsByInterest", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 2)
		for _, s := range c.sockets[2] {
			s.conn.Send("join blue")
			s.conn.ExpectText("joined blue")
		}
		c.eventually("room members seen", func() bool { return len(c.nodes[0].Endpoint.Presence().RoomMembers("blue")) == 2 })
		before := c.counts()
		c.require(c.nodes[0].Endpoint.SendRoom(context.Background(), "blue", laf.Text("blue news")))
		for _, s := range c.sockets[2] {
			s.conn.ExpectText("blue news")
		}
		after := c.counts()
		if got := after[2].get(wire.OpRoom) - before[2].get(wire.OpRoom); got != 1 {
			t.Fatalf("node with members got the room send %d times, want 1", got)
		}
		if got := after[1].get(wire.OpRoom) - before[1].get(wire.OpRoom); got != 0 {
			t.Fatalf("node without members got the room send %d times, want 0", got)
		}
		// Nobody in a room: ErrNotFound, from any node and an Emitter.
		if err := c.nodes[0].Endpoint.SendRoom(context.Background(), "nobody-here", laf.Text("x")); !errors.Is(err, laf.ErrNotFound) {
			t.Fatalf("room with no members: %v, want ErrNotFound", err)
		}
		if err := c.nodes[0].Endpoint.SendIdentity(context.Background(), "carol", laf.Text("x")); !errors.Is(err, laf.ErrNotFound) {
			t.Fatalf("identity with no sockets: %v, want ErrNotFound", err)
		}
		// Once the last member leaves, the room's channel goes too.
		for _, s := range c.sockets[2] {
			s.conn.Close(1000, "")
		}
		c.eventually("empty room refused", func() bool {
			return errors.Is(c.nodes[0].Endpoint.SendRoom(context.Background(), "blue", laf.Text("x")), laf.ErrNotFound)
		})
	})
	t.Run("Shutdown", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 20)
		leaving := c.nodes[2]
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		if err := leaving.Endpoint.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		c.eventually("node gone at once", func() bool {
			for _, n := range c.nodes[:2] {
				if n.Endpoint.Presence().Nodes() != 2 || n.Endpoint.Presence().Count() != 40 {
					return false
				}
			}
			return true
		})
		// It never comes back: not from a beat or a removal that was on
		// its way when it said goodbye.
		for deadline := time.Now().Add(10 * BrokerHeartbeat); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for i, n := range c.nodes[:2] {
				if got := n.Endpoint.Presence().Nodes(); got != 2 {
					t.Fatalf("node %d sees %d nodes after node 2 shut down, want 2", i, got)
				}
			}
		}
		if err := c.nodes[0].Endpoint.SendSocket(context.Background(), c.sockets[2][0].id, laf.Text("x")); !errors.Is(err, laf.ErrNotFound) {
			t.Fatalf("push to a socket of a node that shut down: %v, want ErrNotFound", err)
		}
	})
	t.Run("DeadNodeRefused", func(t *testing.T) {
		// A long heartbeat, so that the bound below, one heartbeat, is far
		// from the time the broker takes to see the connection close.
		const hb = 2 * time.Second
		c := newTestClusterHB(t, newBroker, 2, 1, hb)
		target := c.sockets[1][0]
		c.require(c.nodes[0].Endpoint.SendSocket(context.Background(), target.id, laf.Text("alive")))
		target.conn.ExpectText("alive")
		start := time.Now()
		c.cuts[1]()
		// Once the broker sees the connection close, a push is refused with
		// nothing delivered (ErrNoSubscriber: the node may be reconnecting),
		// within a heartbeat; ErrNotFound only once it has missed three
		// heartbeats, which the node may well take.
		refused := time.Duration(0)
		for {
			err := c.nodes[0].Endpoint.SendSocket(context.Background(), target.id, laf.Text("lost"))
			if errors.Is(err, laf.ErrNotFound) {
				if refused == 0 {
					t.Fatalf("push to a dead node: ErrNotFound after %v, before any ErrNoSubscriber", time.Since(start))
				}
				break
			}
			var be *laf.BrokerError
			switch {
			case errors.As(err, &be) && errors.Is(err, laf.ErrNoSubscriber):
				if refused == 0 {
					refused = time.Since(start)
					if refused > hb {
						t.Fatalf("push to a socket of a dead node still accepted after %v (one heartbeat)", refused)
					}
				}
			case err != nil:
				t.Fatalf("push to a dead node: %v, want nil, ErrNoSubscriber or ErrNotFound", err)
			case refused > 0:
				t.Fatalf("push to a dead node accepted after it was refused")
			case time.Since(start) > hb:
				t.Fatalf("push to a socket of a dead node still accepted after %v (one heartbeat)", hb)
			}
			if time.Since(start) > 3*hb+DefaultTimeout {
				t.Fatalf("no ErrNotFound %v after the node died", time.Since(start))
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("refused after %v, not found after %v", refused, time.Since(start))
	})
	t.Run("PushByID", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 1)
		target := c.sockets[2][0]
		for _, from := range c.nodes[:2] {
			c.require(from.Endpoint.SendSocket(context.Background(), target.id, laf.Text("hello from afar")))
			target.conn.ExpectText("hello from afar")
		}
		if err := c.nodes[0].Endpoint.SendSocket(context.Background(), "no-such-id", laf.Text("x")); err != laf.ErrNotFound {
			t.Fatalf("unknown id: got %v, want laf.ErrNotFound", err)
		}
		c.require(c.nodes[0].Endpoint.CloseSocket(context.Background(), target.id, 4000, "moved"))
		if got := target.conn.ExpectClose(4000); got != "moved" {
			t.Fatalf("close reason %q", got)
		}
	})
	t.Run("BroadcastExactlyOnce", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 2)
		c.require(c.nodes[1].Endpoint.Broadcast(context.Background(), laf.Text("to all")))
		// Then a push to each socket from the same node: per-publisher
		// order means it is the next message unless the broadcast came
		// twice.
		for _, s := range c.all() {
			c.require(c.nodes[1].Endpoint.SendSocket(context.Background(), s.id, laf.Text("end")))
		}
		for _, s := range c.all() {
			s.conn.ExpectText("to all")
			s.conn.ExpectText("end")
		}
	})
	t.Run("RoomsAndIdentities", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 2)
		// Socket 0 of every node joins "red"; all sockets of node 2 are "bob".
		for n := range c.nodes {
			c.sockets[n][0].conn.Send("join red")
			c.sockets[n][0].conn.ExpectText("joined red")
		}
		c.eventually("room members", func() bool {
			for _, node := range c.nodes {
				if len(node.Endpoint.Presence().RoomMembers("red")) != 3 {
					return false
				}
			}
			return true
		})
		c.require(c.nodes[0].Endpoint.SendRoom(context.Background(), "red", laf.Text("red news")))
		c.require(c.nodes[0].Endpoint.SendIdentity(context.Background(), "bob", laf.Text("for bob")))
		for n := range c.nodes {
			for i, s := range c.sockets[n] {
				if i == 0 {
					s.conn.ExpectText("red news")
				}
				if s.identity == "bob" {
					s.conn.ExpectText("for bob")
				}
				c.require(c.nodes[0].Endpoint.SendSocket(context.Background(), s.id, laf.Text("end")))
				s.conn.ExpectText("end")
			}
		}
	})
	t.Run("Presence", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 2)
		for _, node := range c.nodes {
			p := node.Endpoint.Presence()
			if p.Count() != 6 || p.Nodes() != 3 || p.IdentitySockets("bob") != 2 || p.IdentitySockets("alice") != 4 {
				t.Fatalf("presence: count %d, nodes %d, bob %d, alice %d", p.Count(), p.Nodes(), p.IdentitySockets("bob"), p.IdentitySockets("alice"))
			}
			for _, s := range c.all() {
				if !p.Online(s.id) {
					t.Fatalf("socket %s not online", s.id)
				}
			}
		}
		gone := c.sockets[1][1]
		gone.conn.Close(1000, "")
		c.eventually("departure seen everywhere", func() bool {
			for _, node := range c.nodes {
				if node.Endpoint.Presence().Online(gone.id) || node.Endpoint.Presence().Count() != 5 {
					return false
				}
			}
			return true
		})
	})
	t.Run("NodeDeath", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 3, 2)
		c.cuts[2]()
		c.eventually("dead node dropped from presence", func() bool {
			for _, node := range c.nodes[:2] {
				p := node.Endpoint.Presence()
				if p.Nodes() != 2 || p.Count() != 4 || p.Online(c.sockets[2][0].id) {
					return false
				}
			}
			return true
		})
	})
	t.Run("MessagesOwned", func(t *testing.T) {
		b, _ := newBroker(t)
		ownedMessages(t, b)
	})
	t.Run("Emitter", func(t *testing.T) {
		c := newTestCluster(t, newBroker, 2, 1)
		b, _ := newBroker(t)
		em := laf.NewEmitter(b, laf.WithHeartbeat(BrokerHeartbeat))
		defer em.Close()
		target := c.sockets[1][0]
		c.eventually("emitter sees presence", func() bool {
			return em.Presence().Online(target.id) && em.Presence().Count() == 2 && em.Presence().Nodes() == 2
		})
		c.require(em.SendSocket(context.Background(), target.id, laf.Text("from the emitter")))
		target.conn.ExpectText("from the emitter")
		if err := em.SendSocket(context.Background(), "no-such-id", laf.Text("x")); err != laf.ErrNotFound {
			t.Fatalf("unknown id: got %v, want laf.ErrNotFound", err)
		}
		c.require(em.Broadcast(context.Background(), laf.Binary([]byte{1, 2, 3})))
		for _, s := range c.all() {
			s.conn.ExpectBinary([]byte{1, 2, 3})
		}
		c.require(em.CloseSocket(context.Background(), target.id, 4001, "bye"))
		target.conn.ExpectClose(4001)
	})
}

type testSocket struct {
	id, identity string
	conn         *Conn
}

type testCluster struct {
	t        *testing.T
	nodes    []*Server
	cuts     []func()
	sockets  [][]*testSocket
	counters []*opCounts
}

// counts returns a copy of what each node's broker has delivered so far.
func (c *testCluster) counts() []opCounts {
	out := make([]opCounts, len(c.counters))
	for i, oc := range c.counters {
		out[i] = oc.snapshot()
	}
	return out
}

// opCounts counts envelopes by op.
type opCounts struct {
	mu sync.Mutex
	n  map[wire.Op]int
}

func (o *opCounts) add(op wire.Op) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = make(map[wire.Op]int)
	}
	o.n[op]++
}

func (o *opCounts) snapshot() opCounts {
	o.mu.Lock()
	defer o.mu.Unlock()
	return opCounts{n: maps.Clone(o.n)}
}

func (o *opCounts) get(op wire.Op) int { return o.n[op] }

// countingBroker counts what its Open delivers to its node.
type countingBroker struct {
	laf.Broker
	counts *opCounts
}

func (b *countingBroker) Open(ctx context.Context, fn func([]byte)) (laf.Channels, error) {
	return b.Broker.Open(ctx, func(msg []byte) {
		if env, err := wire.Decode(msg); err == nil {
			b.counts.add(env.Op)
		}
		fn(msg)
	})
}

// newTestCluster starts n endpoints, each with perNode sockets. Socket i
// of node n has identity "bob" on the last node and "alice" elsewhere.
// A socket's handler answers "join R" by joining room R.
func newTestCluster(t *testing.T, newBroker BrokerFactory, n, perNode int) *testCluster {
	return newTestClusterHB(t, newBroker, n, perNode, BrokerHeartbeat)
}

// newTestClusterHB is newTestCluster with heartbeat hb. Each node's
// broker is wrapped to count the envelopes it delivers, by op.
func newTestClusterHB(t *testing.T, newBroker BrokerFactory, n, perNode int, hb time.Duration) *testCluster {
	c := &testCluster{t: t}
	fn := func(ctx *laf.FunctionContext) error {
		switch ctx.Method {
		case laf.MethodConnection:
			return ctx.Socket.Send(ctx.Socket.ID())
		case laf.MethodMessage:
			var room string
			if _, err := fmt.Sscanf(ctx.Params.Data.String(), "join %s", &room); err == nil {
				ctx.Socket.Join(room)
				return ctx.Socket.Send("joined " + room)
			}
		}
		return nil
	}
	for i := range n {
		b, cut := newBroker(t)
		cb := &countingBroker{Broker: b, counts: new(opCounts)}
		c.counters = append(c.counters, cb.counts)
		identity := "alice"
		if i == n-1 {
			identity = "bob"
		}
		srv := NewServer(t, fn, laf.WithBroker(cb), laf.WithHeartbeat(hb),
			laf.WithAuth(func(*http.Request) (string, error) { return identity, nil }))
		c.nodes = append(c.nodes, srv)
		c.cuts = append(c.cuts, cut)
		var socks []*testSocket
		for range perNode {
			conn := srv.DialOptions(t, &websocket.DialOptions{})
			socks = append(socks, &testSocket{id: conn.ReadText(), identity: identity, conn: conn})
		}
		c.sockets = append(c.sockets, socks)
	}
	c.eventually("every node sees every socket", func() bool {
		for _, node := range c.nodes {
			if node.Endpoint.Presence().Count() != n*perNode || node.Endpoint.Presence().Nodes() != n {
				return false
			}
		}
		return true
	})
	return c
}

func (c *testCluster) all() []*testSocket { return slices.Concat(c.sockets...) }

func (c *testCluster) require(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) eventually(what string, cond func() bool) {
	c.t.Helper()
	waitFor(c.t, what, cond)
}

// channels checks a broker's channels with two clients, a and b.
func channels(t *testing.T, a, b laf.Broker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 100)
	chans, err := b.Open(ctx, func(msg []byte) { got <- string(msg) })
	if err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(DefaultTimeout):
			t.Fatalf("no message within %v", DefaultTimeout)
			return ""
		}
	}
	pub := func(channel, msg string) int {
		t.Helper()
		n, err := a.PublishTo(context.Background(), channel, []byte(msg))
		if err != nil {
			t.Fatalf("PublishTo %q: %v", channel, err)
		}
		return n
	}
	for _, ch := range []string{"", "n.node1", "r.room-1"} {
		if err := chans.Subscribe(context.Background(), ch); err != nil {
			t.Fatalf("Subscribe %q: %v", ch, err)
		}
	}
	// A channel nobody holds counts 0 subscribers: laf answers ErrNotFound
	// on it. (Channel "" may count -1: laf never asks.)
	if n := pub("r.nobody", "x"); n != 0 {
		t.Fatalf("PublishTo a channel with no subscriber: %d, want 0", n)
	}
	// One publisher's order holds across channels.
	for i := range 30 {
		ch := []string{"", "n.node1", "r.room-1"}[i%3]
		if n := pub(ch, fmt.Sprint("m", i)); n == 0 && ch != "" {
			t.Fatalf("PublishTo %q with a subscriber: 0", ch)
		}
	}
	for i := range 30 {
		if m := next(); m != fmt.Sprint("m", i) {
			t.Fatalf("message %d: %q, want m%d: order lost across channels", i, m, i)
		}
	}
	if err := chans.Unsubscribe(context.Background(), "r.room-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unsubscribed channel counts no subscriber", func() bool { return pub("r.room-1", "late") == 0 })
	// Subscribe again while running, then the set ends with ctx.
	if err := chans.Subscribe(context.Background(), "r.room-1"); err != nil {
		t.Fatal(err)
	}
	pub("r.room-1", "again")
	for m := next(); m != "again"; m = next() {
		if m != "late" {
			t.Fatalf("after resubscribing: %q", m)
		}
	}
	cancel()
	waitFor(t, "closed set counts no subscriber", func() bool { return pub("n.node1", "gone") == 0 })
}

// ownedMessages publishes distinct messages through b, keeps the slices
// its subscriber is given, and checks them all at the end.
func ownedMessages(t *testing.T, b laf.Broker) {
	t.Helper()
	const n = 500
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []byte, n)
	chans, err := b.Open(ctx, func(msg []byte) { got <- msg })
	if err != nil {
		t.Fatal(err)
	}
	// A channel of its own: laf's channel "" may still carry a goodbye
	// from the nodes of an earlier test.
	if err := chans.Subscribe(ctx, "t.owned"); err != nil {
		t.Fatal(err)
	}
	want := func(i int) string { return fmt.Sprintf("message %03d %s", i, strings.Repeat("x", i)) }
	for i := range n {
		if _, err := b.PublishTo(context.Background(), "t.owned", []byte(want(i))); err != nil {
			t.Fatal(err)
		}
	}
	kept := make([][]byte, 0, n)
	for range n {
		select {
		case msg := <-got:
			kept = append(kept, msg)
		case <-time.After(DefaultTimeout):
			t.Fatalf("%d of %d messages within %v", len(kept), n, DefaultTimeout)
		}
	}
	for i, msg := range kept {
		if string(msg) != want(i) {
			t.Fatalf("message %d is now %.20q…, want %.20q…", i, msg, want(i))
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(DefaultTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("laftest: %s: not within %v", what, DefaultTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
