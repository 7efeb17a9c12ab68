package laf

import (
	"context"

	"github.com/lafgo/laf/internal/wire"
)

// SendSocket queues m on the socket with the given id, on this node or,
// with a broker, on any node.
//
// A local socket is served directly: SendSocket returns what
// Socket.SendMessage returns, or ErrNotFound if this node has no such
// socket. With a broker, a socket's id names its node, and the send is
// published to that node's channel alone, waiting at most the broker
// timeout (WithBrokerTimeout). SendSocket then returns:
//
//   - ErrNotFound at once if the id names no node, or a node that said
//     goodbye or fell silent for three heartbeats (see WithHeartbeat);
//   - a *BrokerError if nothing left for that node: the broker refused
//     the send or was not connected, or had no subscriber for the node's
//     channel (Err is ErrNoSubscriber: the node died, or is reconnecting);
//     a retry is safe;
//   - an *OutcomeUnknownError (errors.Is(err, ErrOutcomeUnknown)) if the
//     deadline passed, or the connection failed, after the send may have
//     left: it may arrive, or not;
//   - nil once the broker took it. Delivery is then at most once: if the
//     socket closed a moment before (counted in Stats.DroppedNoSocket on
//     its node), or the node dies before writing it, the message is
//     dropped without an error.
func (e *Endpoint) SendSocket(ctx context.Context, id string, m Message) error {
	if s, ok := e.Socket(id); ok {
		return s.out.enqueue(m)
	}
	if e.cluster == nil {
		return ErrNotFound
	}
	return e.cluster.sendSocket(ctx, id, messageEnvelope(wire.OpSend, "", m))
}

// Broadcast queues m on every live socket, on every node with a broker.
// It holds no lock while any socket writes, and a socket over its queue
// budget is handled by the SlowPolicy without delaying the others. The
// payload is shared, not copied per socket. Local sockets get m first;
// if the broker then refuses it, Broadcast returns a *BrokerError whose
// Local says how many local sockets got it, so that a caller does not
// retry what was delivered; if its outcome for other nodes is unknown,
// an *OutcomeUnknownError with the same Local.
func (e *Endpoint) Broadcast(ctx context.Context, m Message) error {
	local := e.broadcastLocal(m)
	if e.cluster == nil {
		return nil
	}
	return e.cluster.broadcast(ctx, m, local)
}

func (e *Endpoint) broadcastLocal(m Message) int {
	return e.reg.sendAll(e.compressible(m))
}

// SendRoom queues m on every socket in room, as Broadcast does: on this
// node's members directly and, with a broker, through the room's
// channel, which only nodes with members hold. It returns ErrNotFound,
// and sends nothing, if no socket is in room: none on this node and none
// on a node holding the room's channel, as the broker counts its
// subscribers, while every node is known connected (else a *BrokerError
// with ErrNoSubscriber: a node may be reconnecting). A *BrokerError or an
// *OutcomeUnknownError says the send failed for other nodes, after local
// members got it, as for Broadcast.
func (e *Endpoint) SendRoom(ctx context.Context, room string, m Message) error {
	return e.sendTo(ctx, wire.OpRoom, room, m)
}

// SendIdentity queues m on every socket whose AuthFunc attached identity
// (every tab of one user, say), as SendRoom does, through the identity's
// channel. It returns ErrNotFound, and sends nothing, if no socket has
// identity.
func (e *Endpoint) SendIdentity(ctx context.Context, identity string, m Message) error {
	return e.sendTo(ctx, wire.OpIdentity, identity, m)
}

// sendTo serves SendRoom (op OpRoom) and SendIdentity (OpIdentity).
func (e *Endpoint) sendTo(ctx context.Context, op wire.Op, key string, m Message) error {
	index := byRoom
	if op == wire.OpIdentity {
		index = byIdentity
	}
	local := e.reg.sendTo(index, key, e.compressible(m))
	if e.cluster == nil {
		if local == 0 {
			return ErrNotFound
		}
		return nil
	}
	return e.cluster.sendKey(ctx, op, key, m, local)
}

// deliverLocal serves a send that another node published. A message that
// finds no socket here is counted in Stats.DroppedNoSocket.
func (e *Endpoint) deliverLocal(env *wire.Envelope) {
	m := e.compressible(Message{data: env.Data, binary: env.Binary, key: env.Key})
	n := 1
	switch env.Op {
	case wire.OpSend:
		s, ok := e.Socket(env.Target)
		if ok {
			s.out.enqueue(m)
		} else {
			n = 0
		}
	case wire.OpClose:
		s, ok := e.Socket(env.Target)
		if ok {
			s.Close(env.Code, env.Reason)
		} else {
			n = 0
		}
	case wire.OpRoom:
		n = e.reg.sendTo(byRoom, env.Target, m)
	case wire.OpIdentity:
		n = e.reg.sendTo(byIdentity, env.Target, m)
	case wire.OpBroadcast:
		e.broadcastLocal(m)
	}
	if n == 0 {
		e.stats.droppedNoSocket.Add(1)
	}
}

// CloseSocket closes the socket with the given id, on any node with a
// broker, as Socket.Close does. It returns ErrNotFound as SendSocket
// does.
func (e *Endpoint) CloseSocket(ctx context.Context, id string, code int, reason string) error {
	if s, ok := e.Socket(id); ok {
		return s.Close(code, reason)
	}
	if e.cluster == nil {
		return ErrNotFound
	}
	return e.cluster.closeSocket(ctx, id, code, reason)
}
