//go:build !linux

package wsconn

// ControlIO writes control frames without waiting where it can; elsewhere
// than on Linux, it never can: connections do not park, their reading
// goroutines serve every frame, and Conn.Ping writes every ping.
type ControlIO struct{}

// NewControlIO returns a ControlIO.
func NewControlIO() *ControlIO { return new(ControlIO) }

// Serve reports true: the connection's reading goroutine serves it.
func (*ControlIO) Serve(*Conn) (wake bool) { return true }

// Ping returns ErrWouldBlock.
func (*ControlIO) Ping(*Conn) error { return ErrWouldBlock }
