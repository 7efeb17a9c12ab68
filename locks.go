package laf

// The lock order of the whole package, outermost first. A lock is only
// ever taken while holding locks above it on its line; a lock not named
// on a line with another is a leaf, held while calling no other code
// that locks.
//
//	localHistory.mu → LocalBroker.mu → localSub.mu     (LocalBroker.Append delivers in offset order)
//	LocalBroker.mu → localSub.mu → (delivering: the lines below)
//	feed.mu → registry.mu → outbox.mu                  (a room's feed delivers, and JoinSince recovers, in offset order)
//	registry.mu → clusterHistory.mu                    (clusterHistory.notify marks a feed stale)
//	clusterHistory.mu → feed.mu                        (only TryLock, freeing an idle feed)
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
// timers.mu (released before a close is decided), pinger.mu (released
// before a ping is written and before a close is decided), capacity.mu,
// Shared.mu, Socket.valsMu.
//
// Writes hold Conn.wmu alone: the outbox's writer takes no laf lock while
// it writes, a keepalive ping is written after pinger.mu is released, and
// the socket's goroutine, or the poller for a parked socket (after taking
// it out of parked, poller.mu released), answers pings and close frames
// holding nothing. The keepalive and the poller only try Conn.wmu
// (TryLock): when it is held, a goroutine that may wait writes the ping,
// and the parked socket is woken to answer the peer's ping itself.
