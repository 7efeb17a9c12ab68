package laf

// The lock order of the whole package, outermost first. A lock is only
// ever taken while holding locks above it on its line; a lock not named
// on a line with another is a leaf, held while calling no other code
// that locks.
//
//	LocalBroker.mu → localSub.mu → (delivering: the lines below)
//	streams.mu → stream.mu                             (only TryLock, freeing an idle room)
//	stream.mu → registry.mu → outbox.mu                (Publish and JoinSince order a room's sends)
//	registry.mu → outbox.mu → lateFlusher.mu
//	registry.mu → outbox.mu → poller.mu                (Socket.closeConn unparks)
//	registry.mu → interests.mu                         (registry.notify, through cluster.queue)
//	wsconn's Conn.wmu                                  (a leaf: every write, and the reader's answers)
//
// Leaves: the cluster's parts, each of which holds its own lock and calls
// no other part while holding it (membership.mu, interests.mu but for the
// line above, queries.mu, health.mu, failLog.mu, cluster.stopMu);
// timers.mu (released before a ping is written and before a close is
// decided), capacity.mu, Shared.mu, Socket.valsMu.
//
// Writes hold Conn.wmu alone: the outbox's writer takes no laf lock while
// it writes, a keepalive ping is written after timers.mu is released, and
// the socket's goroutine answers pings and close frames holding nothing.
