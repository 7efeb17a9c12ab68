package laf

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrClosed is returned by sends on a socket that is closing or has
// closed, or whose connection can take no more writes, and by
// Socket.Close on a socket already closing. Test for it with errors.Is.
var ErrClosed = errors.New("laf: socket closed")

// ErrNotFound is returned by Endpoint.SendSocket and Endpoint.CloseSocket
// when no live socket has the given id, and by Endpoint.SendRoom and
// Endpoint.SendIdentity when no live socket is in the room or has the
// identity.
var ErrNotFound = errors.New("laf: no such socket")

// ErrOutcomeUnknown is returned by a send to other nodes whose deadline
// (WithBrokerTimeout) passed after the message may have left for the
// broker: it may have been delivered, or not. Retrying may deliver it
// twice; not retrying may lose it. Compare with *BrokerError, returned
// when nothing left, so that a retry is safe.
var ErrOutcomeUnknown = errors.New("laf: outcome of the send to other nodes unknown")

// ErrMessageTooBig is the Params.Err of the error event fired when a peer
// sends a message over the read limit. The socket is then closed with 1009.
var ErrMessageTooBig = errors.New("laf: message over the read limit")

// ErrInvalidUTF8 is the Params.Err of the error event fired when a peer
// sends a text message that is not valid UTF-8. The socket is then closed
// with 1007.
var ErrInvalidUTF8 = errors.New("laf: text message is not valid UTF-8")

// ErrProtocol wraps the Params.Err of the error event fired when a peer
// breaks the WebSocket protocol. The socket is then closed with 1002.
var ErrProtocol = errors.New("laf: WebSocket protocol error")

// ErrRateLimited is the Params.Err of the error event fired when a peer
// sends over its rate limit (see WithRateLimit).
var ErrRateLimited = errors.New("laf: peer over its rate limit")

// ErrQueueFull is returned by a send that the socket's queue budget
// refused: under DropNewest always, under DropOldest when the new message
// does not fit even once every older message not yet being written is
// dropped, and under CloseSlow, where the send also closes the socket.
var ErrQueueFull = errors.New("laf: socket send queue full")

// CloseError closes the socket with Code and Reason when a Func returns it
// (or an error wrapping it):
//
//	return &laf.CloseError{Code: 4401, Reason: "unauthorized"}
//
// Any other non-nil error closes the socket with 1011 (internal error).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("laf: close %d %q", e.Code, e.Reason)
}

// HTTPError refuses an upgrade with Status when an AuthFunc returns it (or
// an error wrapping it). Message, if set, is the response body; otherwise
// the status text is. Any other non-nil error from an AuthFunc refuses the
// upgrade with 401 Unauthorized.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("laf: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("laf: HTTP %d %s", e.Status, http.StatusText(e.Status))
}
