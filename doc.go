// Package laf brings the Laf cloud-function model of WebSockets to
// ordinary Go servers.
//
// In Laf you write one function, __websocket__, that the platform calls
// for every event of every socket, and you keep sockets in cloud.shared
// so another function can push to them. In laf, Handler turns such a
// function into an http.Handler that you mount on any mux:
//
//	func ws(ctx *laf.FunctionContext) error {
//		switch ctx.Method {
//		case laf.MethodConnection:
//			return ctx.Socket.Send("hi connection succeed")
//		case laf.MethodMessage:
//			return ctx.Socket.Send("I have received your message")
//		}
//		return nil
//	}
//
//	ep := laf.Handler(ws)
//	http.Handle("/__websocket__", ep)
//
// The Endpoint keeps a registry of its live sockets, so any goroutine or
// HTTP handler can push to one by id (Endpoint.SendSocket), to a room
// (Socket.Join, Endpoint.SendRoom), to every socket of one user
// (WithAuth, Endpoint.SendIdentity) or to all (Endpoint.Broadcast).
//
// # Events and their order
//
// For each socket the Func is called once with MethodConnection, then
// once per message with MethodMessage, in arrival order, and last once
// with MethodClose; a MethodError that fails the socket comes before
// MethodClose, with no message event between them. Calls for one socket never overlap; different sockets run
// in parallel. The close event fires whoever closed (the peer, server
// code, a handler error, a fault, or a timeout) and says why in
// Params.Cause. By then the socket has left the registry and its rooms
// (Socket.Rooms still names the rooms it was in), and sends on it return
// ErrClosed.
//
// # Contexts and per-socket state
//
// The *FunctionContext is also the event's context.Context: pass it to
// the send methods and to any call made while handling the event. It is
// never done while the Func runs, unless Shutdown gives up, and its Value
// carries the upgrade request's context values, so a middleware in front
// of the Endpoint can hand auth claims to every event. Socket.Context is
// for work that should stop once the socket closes. Socket.Set, Get and
// Delete keep per-socket values, which live as long as the socket.
//
// # Errors
//
// A Func that returns an error, or panics, gets its socket closed with
// 1011 (or the code of a returned *CloseError); the panic is recovered
// and logged with its stack, and every other socket carries on. Bad input
// from a peer closes its socket with the matching code: 1009 for a message
// over the read limit, 1007 for invalid UTF-8 in a text message, 1002 for
// a protocol error, 1008 for a peer over its rate limit (WithRateLimit);
// the error event carries ErrMessageTooBig, ErrInvalidUTF8, ErrProtocol
// or ErrRateLimited. Refused upgrades get an HTTP status: 426 for a
// request that is not a WebSocket upgrade (or not version 13), 405 for a
// method other than GET, 400 for a bad Sec-WebSocket-Key, 431 for a
// request over WithMaxRequestBytes, 403 for a cross-origin request (see
// WithOriginPatterns), the AuthFunc's status, 503 over WithMaxSockets or
// once Shutdown or Drain has begun, and 429 over WithMaxSocketsPerKey.
//
// laf speaks RFC 6455 and RFC 7692 itself (internal/wsconn): one reader
// and one writer per connection, with one connection state. A frame
// header that declares a message over the read limit gets 1009 at once;
// compressed data must end exactly where its message ends, or the socket
// gets 1002; every write has a deadline (WithWriteTimeout).
//
// # Sending
//
// Sends never wait for the network: each socket has a bounded queue. What
// is sent to a socket while its own event runs is written by the socket's
// goroutine once the event returns (or within about 1–2 ms if it runs
// longer), so a reply costs no extra goroutine; other sends are written by
// a goroutine that runs only while the queue is not empty. WithSendQueue
// sets the budget and WithSlowPolicy what happens to a socket over it.
// Broadcasts encode a message once and share its bytes. Every frame a
// socket writes goes out whole, and none follows its close frame, whoever
// decided the close.
//
// For state that changes many times a second, laf.Latest marks a message
// as the newest of its key: a slow socket's queue then holds one of each
// key rather than a backlog, while other messages are never dropped.
// Socket.Buffered and Socket.Dropped show a socket falling behind.
// WithCompression negotiates permessage-deflate and compresses a
// broadcast once for every socket.
//
// A message event, and its Params.Data, belong to the Func, which may keep
// them; laf.Owned sends Data back without a copy. WithLentData lends them
// instead, valid until the Func returns, and reuses their memory, so that
// a message costs no allocation.
//
// # Messages that survive reconnects
//
// Endpoint.Publish gives a room's messages positions (an epoch and an
// offset), orders them, and with WithHistory keeps the last of them, so
// that Socket.JoinSince can send a reconnecting client exactly what it
// missed, or say that it cannot. ClientScript serves a browser client
// that reconnects by itself and sends the positions it last got; Since
// and Socket.Resume read them in the Func.
//
// # Lifetimes
//
// Sockets are pinged (WithPing, on by default) so that idle connections
// survive proxies and dead peers are found; WithIdleTimeout,
// WithReadIdleTimeout and WithMaxLifetime bound a socket's life, and
// WithCloseTimeout how long a graceful close may take. WithRoomHook hears
// a room get its first socket and lose its last. Endpoint.Shutdown closes
// every socket with 1001 and waits for their close events; Endpoint.Drain,
// for a deploy behind a balancer, closes them with 1012 spread over a
// window, so that their clients reconnect to other nodes a few at a time.
//
// On Linux a socket whose peer has been silent for a quarter to half a
// second, with nothing half read, gives up its goroutine and waits in
// its Endpoint's epoll set, which answers the peer's pings and counts its
// pongs; the peer's next data, or the connection's close, give it one
// again. An idle socket then costs about 6.4 KiB of RSS with keepalive on. One schedule per Endpoint
// sends every socket's keepalive pings, spread over the interval.
//
// # Clusters
//
// Shared and the registry live in one process. With WithBroker, sends by
// id, room, identity and broadcast reach sockets on every process that
// shares the broker, and each goes only where it must: a socket's id names
// its node, and a node holds a room's or an identity's channel only while
// it has a member there. Presence counts every node's sockets from a
// small beat per node and answers questions about particular sockets,
// rooms and identities by asking the other nodes. An Emitter sends from
// processes that hold no sockets. Adapters for Redis and NATS live in
// their own modules.
//
// # Testing
//
// Package laftest starts an Endpoint on an httptest server and dials it
// with real clients, so a Func is tested over real sockets in a few lines.
package laf
