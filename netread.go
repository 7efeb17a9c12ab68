//go:build unix

package laf

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// An idle socket would hold a read buffer while it waits for the peer: 4
// KiB of net/http's, kept by coder/websocket. Over TCP, laf reads instead
// through a tiny bufio.Reader on top of an idleReader, which waits for
// data with no buffer at all, and only then reads into a pooled chunk
// that goes back to the pool once it has been consumed. A large read
// (a message's payload) goes straight into the caller's buffer. Other
// connections (TLS) keep an ordinary buffer.

// An idle socket would also keep its goroutine, whose stack has grown to
// 4 KiB in coder/websocket's frame reader and never shrinks back (the
// runtime shrinks a stack only while under a quarter of it is in use).
// So, where it can park (Linux), the idleReader arms a read deadline
// parkAfter ahead whenever it waits with none armed. When the deadline
// finds it waiting for the first byte of a frame, with nothing buffered
// and nothing read since the deadline was armed, it fails that read with
// errPark. coder/websocket returns the error from Reader with its
// connection untouched (and so does peekFrame); the socket's goroutine
// hands the socket to the Endpoint's poller (an epoll set) and ends, and
// the poller starts a goroutine for it once the peer sends. Anywhere else
// the deadline is armed again and the read waits on. A busy socket thus
// pays one deadline per parkAfter and does not park; one that has been
// silent for one to two parkAfters holds no goroutine. This needs the
// socket's goroutine to be the connection's only reader: laf writes its
// close frame itself, rather than with coder/websocket's Close, whose
// handshake would read on another goroutine.

// parkAfter is how long, at least, a socket waits for its peer on its own
// goroutine before it parks.
const parkAfter = 250 * time.Millisecond

var readChunks = sync.Pool{New: func() any { return new([readChunk]byte) }}

// idleReader reads a TCP connection for coder/websocket. It belongs to the
// socket's goroutine, the connection's only reader.
type idleReader struct {
	tcp      *net.TCPConn
	raw      syscall.RawConn
	front    *bufio.Reader    // coder/websocket's reader, over this one
	chunk    *[readChunk]byte // nil while nothing is buffered
	r, w     int              // chunk[r:w] is unread
	dst      []byte           // for readFD: the caller's buffer, or nil for a chunk
	n        int              // of readFD: bytes read into dst
	err      error            // of readFD
	fill     func(fd uintptr) bool
	deadline bool   // a park deadline is armed
	reads    uint64 // reads that returned data
	armedAt  uint64 // reads when the deadline was armed
	boundary bool   // the next Read is for the first byte of a frame, with nothing buffered
	inMsg    bool   // coder/websocket reads a message: its frames are not boundaries
}

func newIdleReader(c *net.TCPConn, pending []byte) (*idleReader, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	ir := &idleReader{tcp: c, raw: raw}
	ir.fill = ir.readFD // made once: a method value allocates
	if len(pending) > 0 {
		// What the peer sent right behind the upgrade request.
		ir.chunk = readChunks.Get().(*[readChunk]byte)
		ir.w = copy(ir.chunk[:], pending)
	}
	return ir, nil
}

func (ir *idleReader) Read(p []byte) (int, error) {
	atBoundary := ir.boundary
	ir.boundary = false
	if ir.chunk == nil {
		if len(p) >= readChunk {
			ir.dst = p // the caller holds it anyway
		}
		for {
			if canPark && !ir.deadline {
				ir.deadline, ir.armedAt = true, ir.reads
				ir.tcp.SetReadDeadline(time.Now().Add(parkAfter))
			}
			ir.n, ir.err = 0, nil
			err := ir.raw.Read(ir.fill)
			if err == nil {
				break
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				ir.dst = nil
				return 0, err
			}
			ir.deadline = false                       // it has fired
			if atBoundary && ir.reads == ir.armedAt { // and nothing came since it was armed
				ir.dst = nil
				ir.tcp.SetReadDeadline(time.Time{})
				return 0, errPark
			}
		}
		ir.dst = nil
		if ir.chunk == nil {
			return ir.n, ir.err
		}
	}
	n := copy(p, ir.chunk[ir.r:ir.w])
	ir.r += n
	if ir.r == ir.w {
		readChunks.Put(ir.chunk)
		ir.chunk, ir.r, ir.w = nil, 0, 0
	}
	return n, nil
}

// readFD reads what the socket has, into dst or a pooled chunk, and
// reports false, holding no chunk, when there is nothing yet, so that
// raw.Read waits for the socket to become readable and calls it again.
func (ir *idleReader) readFD(fd uintptr) bool {
	buf := ir.dst
	var chunk *[readChunk]byte
	if buf == nil {
		chunk = readChunks.Get().(*[readChunk]byte)
		buf = chunk[:]
	}
	for {
		n, err := syscall.Read(int(fd), buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
		case err != nil:
			ir.err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
		case n == 0:
			ir.err = io.EOF
		case chunk != nil:
			ir.chunk, ir.r, ir.w = chunk, 0, n
			ir.reads++
			return true
		default:
			ir.n = n
			ir.reads++
			return true
		}
		if chunk != nil {
			readChunks.Put(chunk)
		}
		return err != syscall.EAGAIN
	}
}

// atBoundary notes that a message has been read whole and the next frame
// header is next: if nothing is buffered for it, the socket may park
// there.
func (ir *idleReader) atBoundary() {
	ir.inMsg = false
	ir.boundary = ir.chunk == nil && ir.front.Buffered() == 0
}

// controlRead notes that coder/websocket has read a ping or a pong: a
// frame header is next, a boundary unless a message is half read.
func (ir *idleReader) controlRead() {
	if !ir.inMsg {
		ir.atBoundary()
	}
}

// pending returns the bytes read into the chunk and not yet consumed.
func (ir *idleReader) pending() int { return ir.w - ir.r }

// messageBegun notes that coder/websocket has begun reading a message:
// until the next atBoundary, a control frame it reads between the
// message's fragments is no boundary.
func (ir *idleReader) messageBegun() { ir.inMsg = true }

// frontReader returns the reader coder/websocket reads the connection
// through, given what net/http has buffered of it.
func frontReader(g *gate, br *bufio.Reader) *bufio.Reader {
	tcp := g.tcp
	if tcp == nil {
		return br
	}
	pending, _ := br.Peek(br.Buffered())
	ir, err := newIdleReader(tcp, pending)
	if err != nil {
		return br
	}
	g.reader = ir
	ir.front = bufio.NewReaderSize(g, frontBuffer)
	return ir.front
}
