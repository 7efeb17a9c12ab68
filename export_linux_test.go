package laf

// ParkedSockets returns how many of e's sockets are parked: they hold no
// goroutine.
func (e *Endpoint) ParkedSockets() int {
	n, _ := e.poll.count()
	return n
}

// PollerRunning reports whether e's poller has a goroutine.
func (e *Endpoint) PollerRunning() bool {
	_, running := e.poll.count()
	return running
}

// PollerWakeups returns how many times e's parked sockets were resumed,
// and how many times one was served and left parked.
func (e *Endpoint) PollerWakeups() (woken, served uint64) { return e.poll.wakeups() }
