package laf

import (
	"encoding/json"
	"net/http"
	"time"
)

// FunctionContext is what a Func is called with. A new one is made for
// every call; the Func may keep it.
//
// A *FunctionContext is also the context.Context of its event, so it can
// be passed straight to the Endpoint's send methods, to a database call or
// to an outgoing HTTP request made while handling the event:
//
//	ep.SendRoom(ctx, "lobby", laf.Text("hi"))
//	db.QueryContext(ctx, "SELECT …")
//
// It is never done while the event's Func runs, on any event, the close
// event included, unless the context given to Endpoint.Shutdown ends
// first: then it is done, so that slow work gives up. It has no deadline.
// Its Value carries the values of the upgrade request's context, so a
// middleware in front of the Endpoint can attach what it learned (say, an
// authenticated user's claims) for every event of the socket to read:
//
//	http.Handle("/ws", auth(ep)) // auth calls r.WithContext(context.WithValue(…))
//
// Which context to use for what:
//   - the event's (the *FunctionContext): work done while handling the
//     event, sends included;
//   - Socket.Context(): work that should stop once the socket closes, such
//     as a goroutine that streams to the socket; it is already done during
//     the close event;
//   - Request.Context(): none. net/http cancels it once the upgrade
//     returns, which is as the connection event starts, so it is done,
//     or about to be, in every event.
type FunctionContext struct {
	// Method is one of the Method constants.
	Method string
	// Params holds the event's data; which fields are set depends on Method.
	Params Params
	// Socket is the socket the event belongs to. Sends on it are safe from
	// any goroutine and return ErrClosed once it has closed.
	Socket *Socket
	// Request is the upgrade request (headers, query, cookies, remote
	// address), the same on every event of the socket. Its body is
	// closed, and its Context is done: use the FunctionContext itself.
	Request *http.Request
	// Shared is the Endpoint's store.
	Shared *Shared
	// Endpoint is the Endpoint the socket belongs to, for sends to other
	// sockets, rooms and identities.
	Endpoint *Endpoint
}

// Deadline reports that the event's context has no deadline.
func (c *FunctionContext) Deadline() (deadline time.Time, ok bool) { return time.Time{}, false }

// Done returns a channel that is closed once the context given to
// Endpoint.Shutdown ends with the socket still open; until then, and for
// a FunctionContext with no Endpoint, it is never closed.
func (c *FunctionContext) Done() <-chan struct{} {
	if c.Endpoint == nil {
		return nil
	}
	return c.Endpoint.aborted.Done()
}

// Err returns context.Canceled once Done is closed, and nil before.
func (c *FunctionContext) Err() error {
	if c.Endpoint == nil {
		return nil
	}
	return c.Endpoint.aborted.Err()
}

// Value returns the value the upgrade request's context holds for key.
func (c *FunctionContext) Value(key any) any {
	if c.Endpoint != nil {
		// Only the context package's own key finds anything here: it
		// lets a context derived from this one be cancelled along with
		// it, without a goroutine.
		if v := c.Endpoint.aborted.Value(key); v != nil {
			return v
		}
	}
	if c.Request == nil {
		return nil
	}
	return c.Request.Context().Value(key)
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
