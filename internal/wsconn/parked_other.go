//go:build !linux

package wsconn

// ServeParked reports true: elsewhere than on Linux, a connection does
// not park, and its reading goroutine serves every frame.
func (c *Conn) ServeParked() (wake bool) { return true }

// PingNow returns ErrWouldBlock: elsewhere than on Linux, Ping writes
// every ping.
func (c *Conn) PingNow() error { return ErrWouldBlock }
