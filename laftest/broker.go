package laftest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
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
// take sends from an Emitter. Adapters call it from their own tests.
func TestBroker(t *testing.T, newBroker BrokerFactory) {
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
	t       *testing.T
	nodes   []*Server
	cuts    []func()
	sockets [][]*testSocket
}

// newTestCluster starts n endpoints, each with perNode sockets. Socket i
// of node n has identity "bob" on the last node and "alice" elsewhere.
// A socket's handler answers "join R" by joining room R.
func newTestCluster(t *testing.T, newBroker BrokerFactory, n, perNode int) *testCluster {
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
		identity := "alice"
		if i == n-1 {
			identity = "bob"
		}
		srv := NewServer(t, fn, laf.WithBroker(b), laf.WithHeartbeat(BrokerHeartbeat),
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
	deadline := time.Now().Add(DefaultTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("laftest: %s: not within %v", what, DefaultTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
