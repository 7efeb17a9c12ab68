//go:build unix

package wsconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// An idle connection would hold a read buffer while it waits for the
// peer: 4 KiB of net/http's. Over TCP, a Conn reads instead through a
// tiny bufio.Reader on top of an idleReader, which waits for data with no
// buffer at all, and only then reads into a pooled chunk that goes back
// to the pool once it has been consumed. A large read (a message's
// payload) goes straight into the caller's buffer.
//
// With Config.ParkAfter, the idleReader also arms a read deadline
// ParkAfter ahead whenever it waits with none armed. When the deadline
// finds it waiting for the first byte of a frame at a message boundary
// (the reader sets boundary), with nothing buffered and nothing read since
// the deadline was armed, it fails that read with ErrPark, and
// ReadMessage returns it with nothing consumed. Otherwise the deadline is
// armed again and the read waits on. A busy connection thus pays one
// deadline per ParkAfter and never parks.

var readChunks = sync.Pool{New: func() any { return new([readChunk]byte) }}

// idleReader reads a TCP connection for the reader, the connection's only
// reading goroutine.
type idleReader struct {
	tcp       *net.TCPConn
	raw       syscall.RawConn
	parkAfter time.Duration
	chunk     *[readChunk]byte // nil while nothing is buffered
	r, w      int              // chunk[r:w] is unread
	dst       []byte           // for readFD: the caller's buffer, or nil for a chunk
	n         int              // of readFD: bytes read into dst
	err       error            // of readFD
	fill      func(fd uintptr) bool
	deadline  bool   // a park deadline is armed
	reads     uint64 // reads that returned data
	armedAt   uint64 // reads when the deadline was armed
	boundary  bool   // the next Read is for the first byte of a frame at a message boundary, with nothing buffered
}

// idleReaders are the idleReaders of parked connections' past, ready for
// the next one that needs one: a parked connection holds none.
var idleReaders = sync.Pool{New: func() any {
	ir := new(idleReader)
	ir.fill = ir.readFD // made once: a method value allocates
	return ir
}}

// newIdleReader returns an idleReader for c, holding pending, the bytes
// read with the upgrade request; or nil if c cannot have one.
func newIdleReader(c *Conn, pending []byte) *idleReader {
	if c.raw == nil || len(pending) > readChunk {
		return nil // more than a chunk came early: read it plainly
	}
	ir := idleReaders.Get().(*idleReader)
	ir.tcp, ir.raw, ir.parkAfter = c.tcp, c.raw, c.cfg.ParkAfter
	if len(pending) > 0 {
		ir.chunk = readChunks.Get().(*[readChunk]byte)
		ir.w = copy(ir.chunk[:], pending)
	}
	return ir
}

// release gives ir, holding nothing, back to idleReaders, as its
// connection parks.
func (ir *idleReader) release() {
	*ir = idleReader{fill: ir.fill}
	idleReaders.Put(ir)
}

func (ir *idleReader) Read(p []byte) (int, error) {
	atBoundary := ir.boundary
	ir.boundary = false
	if ir.chunk == nil {
		if len(p) >= readChunk {
			ir.dst = p // the caller holds it anyway
		}
		for {
			if ir.parkAfter > 0 && !ir.deadline {
				ir.deadline, ir.armedAt = true, ir.reads
				ir.tcp.SetReadDeadline(time.Now().Add(ir.parkAfter))
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
				return 0, ErrPark
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

// pending returns the bytes read into the chunk and not yet consumed.
func (ir *idleReader) pending() int { return ir.w - ir.r }
