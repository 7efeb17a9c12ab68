//go:build !unix

package wsconn

// idleReader is made only where a connection can wait for data without a
// buffer (see netread_unix.go); elsewhere a Conn reads through an
// ordinary bufio.Reader.
type idleReader struct{ boundary bool }

func newIdleReader(*Conn, []byte) *idleReader { return nil }
func (*idleReader) Read([]byte) (int, error)  { return 0, nil }
func (*idleReader) pending() int              { return 0 }
func (*idleReader) release()                  {}
