package laf

import (
	"bufio"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// An idle socket would hold a read buffer while it waits for the peer: 4
// KiB of net/http's, kept by coder/websocket. Over TCP, laf reads instead
// through a tiny bufio.Reader on top of an idleReader, which waits for
// data with no buffer at all, and only then reads into a pooled chunk
// that goes back to the pool once it has been consumed. A large read
// (a message's payload) goes straight into the caller's buffer. Other
// connections (TLS) keep an ordinary buffer.

// readChunk is the size of the pooled chunks an idleReader reads into.
const readChunk = 4 << 10

// frontBuffer is the size of the bufio.Reader that coder/websocket reads
// frame headers through: enough for a header and its mask key, so that a
// small frame costs few calls.
const frontBuffer = 64

var readChunks = sync.Pool{New: func() any { return new([readChunk]byte) }}

// idleReader reads a TCP connection for coder/websocket, which reads with
// one goroutine at a time.
type idleReader struct {
	raw   syscall.RawConn
	chunk *[readChunk]byte // nil while nothing is buffered
	r, w  int              // chunk[r:w] is unread
	dst   []byte           // for readFD: the caller's buffer, or nil for a chunk
	n     int              // of readFD: bytes read into dst
	err   error            // of readFD
	fill  func(fd uintptr) bool
}

func newIdleReader(c *net.TCPConn, pending []byte) (*idleReader, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	ir := &idleReader{raw: raw}
	ir.fill = ir.readFD // made once: a method value allocates
	if len(pending) > 0 {
		// What the peer sent right behind the upgrade request.
		ir.chunk = readChunks.Get().(*[readChunk]byte)
		ir.w = copy(ir.chunk[:], pending)
	}
	return ir, nil
}

func (ir *idleReader) Read(p []byte) (int, error) {
	if ir.chunk == nil {
		if len(p) >= readChunk {
			ir.dst = p // the caller holds it anyway
		}
		ir.n, ir.err = 0, nil
		err := ir.raw.Read(ir.fill)
		ir.dst = nil
		if err != nil {
			return 0, err
		}
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
			return true
		default:
			ir.n = n
			return true
		}
		if chunk != nil {
			readChunks.Put(chunk)
		}
		return err != syscall.EAGAIN
	}
}

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
	return bufio.NewReaderSize(g, frontBuffer)
}
