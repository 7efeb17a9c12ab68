package laf

import (
	"encoding/json"
	"net/http"
)

// The methods a Func is called with, as Laf names them in ctx.method.
const (
	// MethodConnection is the first event of every socket, fired once the
	// upgrade has succeeded and the socket is in the registry.
	MethodConnection = "WebSocket:connection"
	// MethodMessage is fired once per message the peer sends, in order.
	MethodMessage = "WebSocket:message"
	// MethodError is fired when reading fails for any reason other than a
	// clean close frame from the peer, just before the close event.
	MethodError = "WebSocket:error"
	// MethodClose is the last event of every socket, fired exactly once.
	MethodClose = "WebSocket:close"
)

// Func is the one function that handles every event of every socket of an
// Endpoint, like Laf's __websocket__ cloud function. See Handler for the
// order in which it is called and what its return value does.
type Func func(ctx *FunctionContext) error

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

// CloseCause says why a socket closed. It is set on the close event's
// Params.Cause.
type CloseCause int

// The causes of a close. Each maps to the close code shown beside it,
// which is what Params.Code holds unless the peer sent its own.
const (
	// CausePeer: the peer sent a close frame; Code is the peer's code.
	CausePeer CloseCause = iota + 1
	// CauseAbnormal: the connection dropped without a close frame (1006).
	CauseAbnormal
	// CauseServer: server code called Socket.Close or Endpoint.CloseSocket;
	// Code is the code it gave.
	CauseServer
	// CauseHandlerError: the Func returned an error or panicked (1011, or
	// the code of a returned *CloseError).
	CauseHandlerError
	// CauseReadLimit: the peer sent a message over the read limit (1009).
	CauseReadLimit
	// CauseProtocol: the peer broke the protocol (1002) or sent invalid
	// UTF-8 in a text message (1007).
	CauseProtocol
	// CauseSlowConsumer: the socket's send queue went over its budget under
	// the CloseSlow policy (1008). The peer sees the connection drop, as
	// it is not reading.
	CauseSlowConsumer
	// CausePingTimeout: no pong came back within the pong timeout (1006).
	CausePingTimeout
	// CauseIdle: no message went either way for the idle timeout (1000).
	CauseIdle
	// CauseLifetime: the socket reached its maximum lifetime (1001).
	CauseLifetime
	// CauseShutdown: Endpoint.Shutdown closed it (1001).
	CauseShutdown
)

var causeNames = [...]string{
	CausePeer:         "peer",
	CauseAbnormal:     "abnormal",
	CauseServer:       "server",
	CauseHandlerError: "handler error",
	CauseReadLimit:    "read limit",
	CauseProtocol:     "protocol",
	CauseSlowConsumer: "slow consumer",
	CausePingTimeout:  "ping timeout",
	CauseIdle:         "idle",
	CauseLifetime:     "lifetime",
	CauseShutdown:     "shutdown",
}

func (c CloseCause) String() string {
	if c > 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown"
}
