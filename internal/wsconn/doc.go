// Package wsconn is laf's server side of RFC 6455 (WebSockets) and RFC
// 7692 (permessage-deflate): the upgrade, the only reader and the only
// writer of a connection, and its one connection state. It imports no laf
// type: laf's sockets, queues and events sit on top of it.
//
// A Conn is read by one goroutine at a time (ReadMessage), which also
// handles the control frames it meets: it answers pings, reports pongs and
// answers the peer's close frame. Any goroutine may write (WriteData,
// WriteVec, Ping, WriteClose); one lock, Conn.wmu, is held for each write
// and no other lock is taken under it, and every write has a deadline.
//
// The connection's state is one value, read by every path:
//
//	Open ──our close frame written──▶ CloseSent ──the peer's close frame read──▶ Closed
//	Open ──the peer's close frame read, ours echoed at once──▶ Closed
//	any ──Close (the TCP connection closed)──▶ Closed
//
// CloseReceived is the state, held under wmu, between reading the peer's
// close frame and writing the echo. Data frames go out only in Open; pongs
// in Open and CloseSent, so that a peer's ping after our close frame is
// still answered (RFC 6455 §5.5.2), unless the peer broke the protocol
// or passed the read limit: a connection being failed processes nothing
// more, and its close frame is followed by the end of our side of the TCP
// stream (§7.1.7).
//
// Lock order: Conn.wmu is a leaf. The reader takes it, briefly, to answer
// a ping or a close.
package wsconn
