package laf

import (
	"encoding/json"
	"unsafe"
)

// Message is an outbound WebSocket message, built once and sent to any
// number of sockets by the Endpoint's send methods. Its payload is shared
// by every socket it goes to and is never copied per socket. A Message is
// immutable and safe to use from any goroutine.
//
// The zero Message is an empty text message.
type Message struct {
	data   []byte
	binary bool
	json   bool       // made by JSON or SendJSON: Publish puts data in its envelope as it is
	key    string     // Latest's
	z      *deflated  // with WithCompression: compressed once, shared by every socket it goes to
	pub    *published // made by Publish
}

// Text returns a text message. It does not copy s.
func Text(s string) Message {
	return Message{data: unsafe.Slice(unsafe.StringData(s), len(s))}
}

// Binary returns a binary message holding a copy of b.
func Binary(b []byte) Message {
	return Message{data: append([]byte(nil), b...), binary: true}
}

// Owned returns a message whose payload is b itself, not a copy: b is
// handed over and must not be modified afterwards. A text message's b
// must be valid UTF-8. A Func owns ctx.Params.Data, so it can echo it
// without a copy:
//
//	ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
func Owned(b []byte, binary bool) Message {
	return Message{data: b, binary: binary}
}

// JSON returns a text message holding v encoded with encoding/json, or
// the encoding error.
func JSON(v any) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, err
	}
	return Message{data: b, json: true}, nil
}

// Data returns the payload. It must not be modified.
func (m Message) Data() []byte { return m.data }

// IsBinary reports whether m goes out as a binary frame.
func (m Message) IsBinary() bool { return m.binary }

// Latest returns m marked as the latest state of key: when it is queued
// on a socket that still has an unwritten message with the same key, it
// replaces that message in its place in the queue, so a socket that reads
// slowly gets the newest state rather than a backlog of old ones, like
// Lightstreamer's MERGE mode. Use a key per item of state (a board's
// cursor frame, a price by symbol).
//
// Messages without a key, or with another key, are never dropped by it,
// and the order of the messages left is kept. It works for every send
// (Socket.SendMessage, Endpoint.Broadcast, SendRoom, SendIdentity,
// SendSocket, on any node). A replacement takes no more room in the
// queue: it is always accepted, whatever the budget, and is counted in
// Stats.Replaced, apart from the slow policy's drops. A message already
// being written is not replaced; the new one queues behind it.
func Latest(key string, m Message) Message {
	m.key = key
	return m
}
