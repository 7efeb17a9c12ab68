package laf

import "context"

// The methods a Func is called with, as Laf names them in ctx.method.
const (
	// MethodConnection is the first event of every socket, fired once the
	// upgrade has succeeded and the socket is in the registry.
	MethodConnection = "WebSocket:connection"
	// MethodMessage is fired once per message the peer sends, in order.
	MethodMessage = "WebSocket:message"
	// MethodError is fired when the socket fails for any reason other
	// than a clean close frame from the peer (a protocol error, a message
	// over the read limit, a broken connection): then the close event
	// follows, with no message event between them. It is also fired, once
	// per run of drops, when DropOverRate drops messages; the socket then
	// stays open.
	MethodError = "WebSocket:error"
	// MethodClose is the last event of every socket, fired exactly once.
	MethodClose = "WebSocket:close"
)

// Func is the one function that handles every event of every socket of an
// Endpoint, like Laf's __websocket__ cloud function. See Handler for the
// order in which it is called and what its return value does.
type Func func(ctx *FunctionContext) error

// Handler returns an Endpoint that calls fn for every event of every
// socket it accepts.
//
// For each socket, fn is called first once with MethodConnection, then
// once with MethodMessage per message in the order the messages arrived,
// and last once with MethodClose; a MethodError that fails the socket
// comes before MethodClose, with no message event after it. Calls for one socket never overlap, and the close
// event runs after the last message event has returned. Calls for
// different sockets run in parallel, each socket on a goroutine of its
// own, so sockets dialled one after another may see their connection
// events run in either order.
//
// When fn returns a non-nil error (or panics, which is recovered and
// logged with its stack), the socket is closed with 1011, or with the code
// and reason of a *CloseError; no further message events are delivered,
// and the close event follows. An error from the connection event closes
// the socket before any message is delivered. Errors returned from the
// error and close events are only logged.
//
// Requests that are not WebSocket upgrades get 426 Upgrade Required (with
// Upgrade: websocket), and so do upgrades of a version other than 13
// (with Sec-WebSocket-Version: 13); methods other than GET get 405, a bad
// Sec-WebSocket-Key 400, a request whose URL and headers pass
// WithMaxRequestBytes 431; cross-origin requests not allowed by
// WithOriginPatterns get 403; requests refused by the AuthFunc get its
// status; requests after Shutdown get 503.
func Handler(fn Func, opts ...Option) *Endpoint {
	if fn == nil {
		panic("laf: nil Func")
	}
	e := &Endpoint{fn: fn, cfg: newConfig(opts), reg: newRegistry()}
	e.pinger.interval, e.pinger.timeout = e.cfg.pingInterval, e.cfg.pongTimeout
	e.streams = newStreams(e.cfg.historySize, e.cfg.historyTTL)
	e.reg.hook = e.cfg.roomHook
	e.aborted, e.abort = context.WithCancel(context.Background())
	if e.cfg.broker != nil {
		b := e.cfg.broker
		if e.streams.cluster = newClusterHistory(e, b); e.streams.cluster != nil {
			b = historyRouting{e.streams.cluster.hb, e.streams.cluster} // room history through the broker
		}
		e.cluster = newCluster(b, e, &e.cfg)
		e.reg.notify = e.cluster.queue
		if e.streams.cluster != nil {
			e.reg.notify = e.streams.cluster.notify(e.cluster.queue)
		}
	}
	return e
}
