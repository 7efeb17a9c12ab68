package laf

import (
	"encoding/json"
	"net/http"
)

// FunctionContext is what a Func is called with. A new one is made for
// every call; the Func may keep it.
type FunctionContext struct {
	// Method is one of the Method constants.
	Method string
	// Params holds the event's data; which fields are set depends on Method.
	Params Params
	// Socket is the socket the event belongs to. Sends on it are safe from
	// any goroutine and return ErrClosed once it has closed.
	Socket *Socket
	// Request is the upgrade request (headers, query, cookies, remote
	// address), the same on every event of the socket. Its body is closed.
	Request *http.Request
	// Shared is the Endpoint's store.
	Shared *Shared
}

// Params holds the data of an event.
type Params struct {
	// Data is the payload of a message event. It belongs to the Func,
	// which may keep it, unless the Endpoint has WithLentData.
	Data Data
	// IsBinary reports whether a message event's payload came in a binary
	// frame (otherwise it was a text frame, and Data is valid UTF-8).
	IsBinary bool
	// Code is the close event's status code: the peer's code when the peer
	// closed, the code the server sent when it closed, 1005 when the peer's
	// close frame had no code, and 1006 when the connection dropped without
	// a close frame.
	Code int
	// Reason is the close event's reason, from whichever side closed.
	Reason string
	// Cause tells a close event why the socket closed.
	Cause CloseCause
	// Err is the error event's error. errors.Is matches ErrMessageTooBig,
	// ErrInvalidUTF8 and ErrProtocol; a dropped connection gives the network
	// error.
	Err error
}

// Data is a message payload.
type Data []byte

// String returns the payload as a string.
func (d Data) String() string { return string(d) }

// JSON decodes the payload into v with encoding/json.
func (d Data) JSON(v any) error { return json.Unmarshal(d, v) }
