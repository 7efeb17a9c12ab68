package laf

import (
	"bytes"
	"context"
	"strconv"
	"time"
)

// A HistoryBroker is a Broker that also keeps each room's published
// messages, so that a room's positions and history are the cluster's
// rather than one node's. When the Broker given to WithBroker implements
// it, Endpoint.Publish appends through it and Socket.JoinSince recovers
// from it, on every node: positions are totally ordered per room across
// the cluster, every node's sockets receive a room's messages in offset
// order, and JoinSince on any node recovers exactly what a socket missed
// on any other, or says it did not. A node that dies loses no history.
// redisbroker (Redis Streams), natsbroker (JetStream) and LocalBroker
// implement it; laftest.TestHistoryBroker checks an implementation.
//
// Messages are laf's own bytes, opaque to the broker.
type HistoryBroker interface {
	Broker
	// Append gives msg the next position in the history of the room
	// whose channel is channel (see Broker: the channel names the room's
	// history too), keeps it there, within limits (at least the last
	// limits.Size messages, none needed longer than limits.TTL), and
	// publishes AppendHistoryFrame(nil, pos, msg) to channel: one step, so that
	// every subscriber of channel receives a room's appended messages in
	// position order, whoever appended them. Offsets are 1 for the first
	// message of an epoch, then +1 for each. The epoch changes whenever
	// the room's history was lost (expired, flushed, failed over
	// without it), so that an offset is never given twice in one epoch.
	// On an error nothing may have been kept, or, if the error is a
	// deadline or wraps ErrOutcomeUnknown, it may have been.
	Append(ctx context.Context, channel string, msg []byte, limits HistoryLimits) (Position, error)
	// History returns the last position of the room whose channel is
	// channel (the zero Position if the broker keeps nothing of it) and,
	// if since has that epoch,
	// the messages it keeps after since.Offset, oldest first: the last
	// limits.Size at most, none older than limits.TTL. laf checks that
	// they are exactly the ones missed before it recovers from them.
	History(ctx context.Context, channel string, since Position, limits HistoryLimits) (last Position, missed []HistoryEntry, err error)
}

// HistoryLimits bound what a HistoryBroker keeps of each room: WithHistory's
// size and ttl.
type HistoryLimits struct {
	Size int
	TTL  time.Duration
}

// HistoryEntry is one message a HistoryBroker kept.
type HistoryEntry struct {
	Offset uint64
	Msg    []byte
}

// historyFramePrefix starts every message a HistoryBroker publishes to a
// room's channel. laf's other messages start with a version byte, never
// with this.
const historyFramePrefix = "lafh "

// AppendHistoryFrame appends to b what a HistoryBroker publishes to a
// room's channel for msg appended at pos:
//
//	"lafh " EPOCH ":" OFFSET " " MSG
//
// with OFFSET in decimal. An adapter that cannot call it (a script run
// by the broker) builds the same bytes.
func AppendHistoryFrame(b []byte, pos Position, msg []byte) []byte {
	b = append(b, historyFramePrefix...)
	b = append(b, pos.Epoch...)
	b = append(b, ':')
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, ' ')
	return append(b, msg...)
}

// parseHistoryFrame splits what AppendHistoryFrame made; ok is false for
// any other message.
func parseHistoryFrame(frame []byte) (pos Position, msg []byte, ok bool) {
	rest, found := bytes.CutPrefix(frame, []byte(historyFramePrefix))
	if !found {
		return pos, nil, false
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return pos, nil, false
	}
	p, err := ParsePosition(string(rest[:sp]))
	if err != nil || p == (Position{}) {
		return pos, nil, false
	}
	return p, rest[sp+1:], true
}
