//go:build !unix

package laf

import (
	"bufio"
	"net"
)

// idleReader is made only where a socket can wait for data without a
// buffer (see netread.go); elsewhere coder/websocket reads through
// net/http's buffer.
type idleReader struct{}

func (*idleReader) Read([]byte) (int, error) { return 0, net.ErrClosed }
func (*idleReader) atBoundary()              {}
func (*idleReader) messageBegun()            {}
func (*idleReader) controlRead()             {}
func (*idleReader) pending() int             { return 0 }

// frontReader returns the reader coder/websocket reads the connection
// through: net/http's.
func frontReader(g *gate, br *bufio.Reader) *bufio.Reader { return br }
