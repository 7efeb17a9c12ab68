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
type Emitter struct {
	c *cluster
}

// NewEmitter joins the cluster behind b, with WithHeartbeat (which must
// match the endpoints') and WithLogger as options. Presence, and
// with it SendSocket's ErrNotFound, is filled in within a broker round
// trip. Call Close when done.
func NewEmitter(b Broker, opts ...EmitterOption) *Emitter {
	cfg := newConfig(opts)
	return &Emitter{c: newCluster(b, nil, cfg.heartbeat, cfg.logger)}
}

// SendSocket sends m to the socket with the given id. It returns
// ErrNotFound if presence knows no such socket.
func (em *Emitter) SendSocket(ctx context.Context, id string, m Message) error {
	return em.c.sendSocket(ctx, id, m)
}

// SendRoom sends m to every socket in room.
func (em *Emitter) SendRoom(ctx context.Context, room string, m Message) error {
	return em.c.publishMessage(ctx, wire.OpRoom, room, m)
}

// SendIdentity sends m to every socket carrying identity.
func (em *Emitter) SendIdentity(ctx context.Context, identity string, m Message) error {
	return em.c.publishMessage(ctx, wire.OpIdentity, identity, m)
}

// Broadcast sends m to every socket.
func (em *Emitter) Broadcast(ctx context.Context, m Message) error {
	return em.c.publishMessage(ctx, wire.OpBroadcast, "", m)
}

// CloseSocket closes the socket with the given id with code and reason.
func (em *Emitter) CloseSocket(ctx context.Context, id string, code int, reason string) error {
	return em.c.closeSocket(ctx, id, code, reason)
}

// Presence returns the cluster's presence.
func (em *Emitter) Presence() Presence { return Presence{c: em.c} }

// PublishErrors returns how many sends the broker did not take.
func (em *Emitter) PublishErrors() uint64 { return em.c.publishErrors.Load() }

// Close leaves the cluster and stops the Emitter's goroutines.
func (em *Emitter) Close() error {
	em.c.stop()
	return nil
}
