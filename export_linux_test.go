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
