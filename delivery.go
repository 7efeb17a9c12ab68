package laf

import (
	"context"

	"github.com/lafgo/laf/internal/wire"
)

// SendSocket queues m on the socket with the given id, on this node or,
// with a broker, on any node. It returns ErrNotFound if no node has it
// (as far as presence knows), the error of the publish if the broker
// refused it, or what Socket.SendMessage returns for a local socket.
func (e *Endpoint) SendSocket(ctx context.Context, id string, m Message) error {
	if s, ok := e.Socket(id); ok {
		return s.out.enqueue(m)
	}
	if e.cluster == nil {
		return ErrNotFound
	}
	return e.cluster.sendSocket(ctx, id, m)
}

// Broadcast queues m on every live socket, on every node with a broker.
// It holds no lock while any socket writes, and a socket over its queue
// budget is handled by the SlowPolicy without delaying the others. The
// payload is shared, not copied per socket. Local sockets get m even if
// publishing to the broker fails, which Broadcast then returns.
func (e *Endpoint) Broadcast(ctx context.Context, m Message) error {
	e.broadcastLocal(m)
	return e.publish(ctx, wire.OpBroadcast, "", m)
}

func (e *Endpoint) broadcastLocal(m Message) {
	e.reg.sendAll(m)
}

// SendRoom queues m on every socket in room, as Broadcast does. It
// returns ErrNotFound, and sends nothing, if no socket is in room: none
// on this node and, with a broker, none on another as far as presence
// knows.
func (e *Endpoint) SendRoom(ctx context.Context, room string, m Message) error {
	return e.sendTo(ctx, wire.OpRoom, room, m)
}

// SendIdentity queues m on every socket whose AuthFunc attached identity
// (every tab of one user, say), as Broadcast does. It returns ErrNotFound,
// and sends nothing, if no socket has identity, as SendRoom does.
func (e *Endpoint) SendIdentity(ctx context.Context, identity string, m Message) error {
	return e.sendTo(ctx, wire.OpIdentity, identity, m)
}

// sendTo serves SendRoom (op OpRoom) and SendIdentity (OpIdentity).
func (e *Endpoint) sendTo(ctx context.Context, op wire.Op, key string, m Message) error {
	index := byRoom
	if op == wire.OpIdentity {
		index = byIdentity
	}
	local := e.reg.sendTo(index, key, m)
	if e.cluster == nil || (local == 0 && !e.cluster.remoteMembers(op, key)) {
		if local == 0 {
			return ErrNotFound
		}
		return nil
	}
	return e.cluster.publishMessage(ctx, op, key, m)
}

func (e *Endpoint) publish(ctx context.Context, op wire.Op, target string, m Message) error {
	if e.cluster == nil {
		return nil
	}
	return e.cluster.publishMessage(ctx, op, target, m)
}

// deliverLocal serves a send that another node published.
func (e *Endpoint) deliverLocal(env *wire.Envelope) {
	m := Message{data: env.Data, binary: env.Binary, key: env.Key}
	switch env.Op {
	case wire.OpSend:
		if s, ok := e.Socket(env.Target); ok {
			s.out.enqueue(m)
		}
	case wire.OpClose:
		if s, ok := e.Socket(env.Target); ok {
			s.Close(env.Code, env.Reason)
		}
	case wire.OpRoom:
		e.reg.sendTo(byRoom, env.Target, m)
	case wire.OpIdentity:
		e.reg.sendTo(byIdentity, env.Target, m)
	case wire.OpBroadcast:
		e.broadcastLocal(m)
	}
}

// CloseSocket closes the socket with the given id, on any node with a
// broker, as Socket.Close does. It returns ErrNotFound if no node has it.
func (e *Endpoint) CloseSocket(ctx context.Context, id string, code int, reason string) error {
	if s, ok := e.Socket(id); ok {
		return s.Close(code, reason)
	}
	if e.cluster == nil {
		return ErrNotFound
	}
	return e.cluster.closeSocket(ctx, id, code, reason)
}
