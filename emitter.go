package laf

import (
	"context"

	"github.com/lafgo/laf/internal/wire"
)

// Emitter sends to the sockets of a cluster from a process that holds
// none, such as a cron job or a plain HTTP API, through the cluster's
// broker: like Socket.IO's emitter or AWS's @connections API. Its methods
// are safe for concurrent use and behave as the Endpoint methods of the
// same names do for sockets on other nodes.
//
// An Emitter holds one channel of its own, for the answers to its
// presence queries, and hears the cluster's channel for the nodes'
// beats; it does not count as a node.
type Emitter struct {
	c *cluster
}

// NewEmitter joins the cluster behind b, with WithHeartbeat (which must
// match the endpoints'), WithBrokerTimeout, WithNodeName and WithLogger
// as options. Count and Nodes fill
// in within a broker round trip; sends work at once. Call Close when
// done.
func NewEmitter(b Broker, opts ...EmitterOption) *Emitter {
	cfg := newConfig(opts)
	return &Emitter{c: newCluster(b, nil, &cfg)}
}

// SendSocket sends m to the socket with the given id, through the channel
// of the node that the id names. It returns ErrNotFound if that node has
// left or the broker has no subscriber for its channel; see
// Endpoint.SendSocket.
func (em *Emitter) SendSocket(ctx context.Context, id string, m Message) error {
	return em.c.sendSocket(ctx, id, messageEnvelope(wire.OpSend, "", m))
}

// SendRoom sends m to every socket in room, through the room's channel,
// which only nodes with members hold. It returns ErrNotFound if the
// broker found no node holding it.
func (em *Emitter) SendRoom(ctx context.Context, room string, m Message) error {
	return em.c.sendKey(ctx, wire.OpRoom, room, m, 0)
}

// SendIdentity sends m to every socket carrying identity, as SendRoom
// does.
func (em *Emitter) SendIdentity(ctx context.Context, identity string, m Message) error {
	return em.c.sendKey(ctx, wire.OpIdentity, identity, m, 0)
}

// Broadcast sends m to every socket.
func (em *Emitter) Broadcast(ctx context.Context, m Message) error {
	return em.c.broadcast(ctx, m, 0)
}

// CloseSocket closes the socket with the given id with code and reason.
func (em *Emitter) CloseSocket(ctx context.Context, id string, code int, reason string) error {
	return em.c.closeSocket(ctx, id, code, reason)
}

// Presence returns the cluster's presence.
func (em *Emitter) Presence() Presence { return Presence{c: em.c} }

// PublishErrors returns how many sends failed for other nodes: those that
// returned a *BrokerError or an *OutcomeUnknownError.
func (em *Emitter) PublishErrors() uint64 { return em.c.publishErrors.Load() }

// Ready returns nil once the Emitter holds its channels and while the
// broker takes its messages; see Endpoint.Ready.
func (em *Emitter) Ready() error { return em.c.readyErr() }

// Close leaves the cluster and stops the Emitter's goroutines.
func (em *Emitter) Close() error {
	em.c.stop()
	return nil
}
