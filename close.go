package laf

import (
	"fmt"
	"unicode/utf8"
)

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
	// CauseShutdown: Endpoint.Shutdown closed it (1001 "going away"), or
	// Endpoint.Drain did (1012 "service restart").
	CauseShutdown
	// CausePolicy: the peer sent over its rate limit (1008); see
	// WithRateLimit.
	CausePolicy

	causeCount // one past the last cause
)

// closeMode says how a decided close reaches the wire.
type closeMode uint8

const (
	// graceful writes what is queued, then the close frame, and waits for
	// the peer's.
	graceful closeMode = iota
	// drop closes the TCP connection at once, writing nothing more: the
	// peer is gone, or is not reading.
	drop
)

// closeSpec is a close as decided: the code and reason the close event
// reports (and, for a graceful close, sends), why, and how.
type closeSpec struct {
	cause  CloseCause
	code   int
	reason string
	mode   closeMode
}

// closeSpecs holds, by cause, the code, reason and mode of every close
// laf decides. A graceful close decided once the connection is past
// open (the reader has answered the peer's close frame) drops the
// connection instead: there is nothing left to write or wait for.
var closeSpecs = [...]closeSpec{
	CausePeer:         {CausePeer, 1005, "", graceful}, // the peer's code and reason replace these
	CauseAbnormal:     {CauseAbnormal, 1006, "", drop},
	CauseServer:       {CauseServer, 1000, "", graceful}, // the caller's code and reason replace these
	CauseHandlerError: {CauseHandlerError, 1011, "internal error", graceful},
	CauseReadLimit:    {CauseReadLimit, 1009, "message too big", graceful},
	CauseProtocol:     {CauseProtocol, 1002, "protocol error", graceful},
	CauseSlowConsumer: {CauseSlowConsumer, 1008, "slow consumer", drop},
	CausePingTimeout:  {CausePingTimeout, 1006, "ping timeout", drop},
	CauseIdle:         {CauseIdle, 1000, "idle", graceful},
	CauseLifetime:     {CauseLifetime, 1001, "lifetime", graceful},
	CauseShutdown:     {CauseShutdown, 1001, "going away", graceful},
	CausePolicy:       {CausePolicy, 1008, "rate limit", graceful},
}

// closeFor returns the close that cause decides.
func closeFor(cause CloseCause) closeSpec { return closeSpecs[cause] }

// with returns c sending code and reason instead of its own.
func (c closeSpec) with(code int, reason string) closeSpec {
	c.code, c.reason = code, reason
	return c
}

// invalidUTF8 is the one close whose code is not its cause's.
var invalidUTF8 = closeFor(CauseProtocol).with(1007, "invalid UTF-8")

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
	CausePolicy:       "policy",
}

func (c CloseCause) String() string {
	if c > 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown"
}

// checkClose reports whether code and reason may be sent in a close frame.
func checkClose(code int, reason string) error {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
	default:
		return fmt.Errorf("laf: close code %d may not be sent", code)
	}
	if len(reason) > 123 || !utf8.ValidString(reason) {
		return fmt.Errorf("laf: close reason must be at most 123 bytes of UTF-8, got %d bytes", len(reason))
	}
	return nil
}
