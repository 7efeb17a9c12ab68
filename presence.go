package laf

import (
	"context"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// Presence answers who is connected: on one node from its registry, and
// across a cluster from the other nodes' beats and by asking them.
//
// Count and Nodes cost nothing: every node beats a summary of a few bytes
// (its socket count) every heartbeat and soon after its count changes, so
// they lag by about the broker's latency plus a tenth of a heartbeat. A
// node that dies silently drops out within three heartbeats (see
// WithHeartbeat); one that shuts down, at once and for good.
//
// Online, IdentitySockets and RoomMembers ask by query through the
// broker, as Socket.IO's fetchSockets does: Online asks the node a
// socket's id names, the others every live node, and each waits for the
// answers, up to DefaultPresenceTimeout (2 s) without a context. A node
// that does not answer in time is left out; the Context variants then
// return what came and the context's error, and the broker's error if it
// refused the query. They cost a broker round trip, and the cluster-wide
// ones one message to every node: use them for occasional questions, not
// per message. A room or identity is reported on another node once that
// node holds its channel, so a SendRoom or SendIdentity published after
// the answer reaches the members it named.
//
// Each node keeps, for presence, its own registry and one small entry per
// other node. All methods are safe for concurrent use.
type Presence struct {
	ep *Endpoint // nil for an Emitter
	c  *cluster  // nil without a broker
}

// Presence returns the Endpoint's view of presence.
func (e *Endpoint) Presence() Presence { return Presence{ep: e, c: e.cluster} }

// Count returns the number of live sockets: the Endpoint's Len plus, with
// a broker, the counts of the other nodes' last beats.
func (p Presence) Count() int {
	n := 0
	if p.ep != nil {
		n = p.ep.Len()
	}
	if p.c != nil {
		others, _ := p.c.members.sockets()
		n += others
	}
	return n
}

// Nodes returns the number of endpoints presence knows of, this one
// included. Emitters do not count.
func (p Presence) Nodes() int {
	n := 0
	if p.ep != nil {
		n = 1
	}
	if p.c != nil {
		_, others := p.c.members.sockets()
		n += others
	}
	return n
}

func presenceContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), DefaultPresenceTimeout)
}

// Online reports whether a socket with the given id is live, asking the
// node that holds it if that is another (see OnlineContext). It reports
// false if the answer did not come within DefaultPresenceTimeout.
func (p Presence) Online(id string) bool {
	ctx, cancel := presenceContext()
	defer cancel()
	ok, _ := p.OnlineContext(ctx, id)
	return ok
}

// OnlineContext reports whether a socket with the given id is live. A
// socket of another node is looked up by asking that node, one message
// each way; a node that has left answers false at once, and one whose
// channel the broker has no subscriber for, false with a *BrokerError.
func (p Presence) OnlineContext(ctx context.Context, id string) (bool, error) {
	if p.ep != nil {
		if _, ok := p.ep.Socket(id); ok {
			return true, nil
		}
	}
	if p.c == nil {
		return false, nil
	}
	return p.c.online(ctx, id)
}

// IdentitySockets returns how many live sockets carry identity: 0 when
// that user is offline. See IdentitySocketsContext.
func (p Presence) IdentitySockets(identity string) int {
	ctx, cancel := presenceContext()
	defer cancel()
	n, _ := p.IdentitySocketsContext(ctx, identity)
	return n
}

// IdentitySocketsContext returns how many live sockets carry identity,
// asking every other live node.
func (p Presence) IdentitySocketsContext(ctx context.Context, identity string) (int, error) {
	n := 0
	if p.ep != nil {
		n = p.ep.reg.identityLen(identity)
	}
	if p.c == nil {
		return n, nil
	}
	replies, err := p.c.ask(ctx, wire.OpAskIdentity, identity, "")
	for _, r := range replies {
		n += int(r.Count)
	}
	return n, err
}

// RoomMembers returns the ids of the sockets in room, in no particular
// order. See RoomMembersContext.
func (p Presence) RoomMembers(room string) []string {
	ctx, cancel := presenceContext()
	defer cancel()
	ids, _ := p.RoomMembersContext(ctx, room)
	return ids
}

// RoomMembersContext returns the ids of the sockets in room, asking every
// other live node.
func (p Presence) RoomMembersContext(ctx context.Context, room string) ([]string, error) {
	var ids []string
	if p.ep != nil {
		ids = p.ep.reg.roomIDs(room)
	}
	if p.c == nil {
		return ids, nil
	}
	replies, err := p.c.ask(ctx, wire.OpAskRoom, room, "")
	for _, r := range replies {
		ids = append(ids, r.IDs...)
	}
	return ids, err
}

// Ready returns nil once the Endpoint can serve its part of the cluster:
// always without a broker; with one, once it holds its channels, while
// the broker takes its messages and echoes its probes, and while no
// subscription to a room's or identity's channel is failing. It is judged
// when called, from the latest evidence: a publish that failed or timed
// out since the last one the broker confirmed, or a probe (one every half
// heartbeat) not echoed within half a heartbeat, so that a broker that
// refuses, hangs or stops delivering makes the node not ready within about
// one heartbeat, and one that recovers makes it ready again as soon. The
// error matches ErrNotReady and says why, wrapping the error of the
// current fault, never an earlier one. Serve it as a readiness check, so
// a balancer sends new sockets elsewhere meanwhile; the node's own
// sockets are served whatever it says. Once Shutdown or Drain has begun,
// with a broker or without, it returns an error that matches ErrNotReady
// and says so.
func (e *Endpoint) Ready() error {
	if e.reg.closing() {
		return errShuttingDown
	}
	if e.cluster == nil {
		return nil
	}
	return e.cluster.readyErr()
}

// brokerState names the broker's state for Stats: "" without a broker,
// else "starting", "up" or "down".
func (e *Endpoint) brokerState() string {
	if e.cluster == nil {
		return ""
	}
	return stateNames[e.cluster.health.state(time.Now())]
}

// nodes returns Presence().Nodes() without a lock, for Stats; 0 without
// a broker.
func (e *Endpoint) nodes() int {
	if e.cluster == nil {
		return 0
	}
	return 1 + int(e.cluster.members.live.Load())
}
