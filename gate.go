package laf

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// errCloseSent refuses a frame because a close frame has gone out.
var errCloseSent = errors.New("laf: close frame already sent")

// gate is the one way to the wire: every byte a socket writes goes through
// it, coder/websocket's control frames (pings, pongs, close) as well as
// laf's data frames. It writes one frame, or one batch of whole frames,
// at a time, and notes when a close frame goes out; from then on it
// refuses every frame, as RFC 6455 §5.5.1 requires, whoever decided the
// close: the peer, a protocol error coder/websocket answered while
// reading, or laf.
//
// The connection's own methods (Read, Close, deadlines) pass through, so
// closing the gate drops the TCP connection and fails a write blocked in
// it.
type gate struct {
	net.Conn
	tcp       *net.TCPConn  // the Conn, if TCP: large batches go out with writev
	mu        sync.Mutex    // held for a whole write, so frames never interleave
	closeSent atomic.Bool   // set, under mu, before the close frame is written
	reader    *idleReader   // reads a TCP Conn; nil for others
	front     *bufio.Reader // what coder/websocket reads the Conn through
	sock      *Socket       // set once the socket is made
}

// buffered returns how many bytes have been read from the connection and
// not yet consumed.
func (g *gate) buffered() int {
	n := g.front.Buffered()
	if ir := g.reader; ir != nil {
		n += ir.pending()
	}
	return n
}

// Close closes the connection, and resumes the socket if it is parked: a
// closed descriptor leaves the poller's epoll set without a word.
func (g *gate) Close() error {
	err := g.Conn.Close()
	if s := g.sock; s != nil {
		s.ep.poll.unpark(s)
	}
	return err
}

// Read reads for coder/websocket, holding no buffer while it waits. The
// peer's end of the connection is errPeerClosed, not io.EOF: a reader of
// a message's payload takes io.EOF for the message's end, and would
// deliver a message the peer cut short as if it were whole.
func (g *gate) Read(p []byte) (n int, err error) {
	if g.reader != nil {
		n, err = g.reader.Read(p)
	} else {
		n, err = g.Conn.Read(p)
	}
	if err == io.EOF {
		err = errPeerClosed
	}
	return n, err
}

// errPeerClosed is a read of a connection the peer has closed.
var errPeerClosed = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("laf: connection closed by the peer")}

func newGate(c net.Conn) *gate {
	g := &gate{Conn: c}
	g.tcp, _ = c.(*net.TCPConn)
	return g
}

// controlBuffer is the size of the buffer coder/websocket writes its
// frames through: one whole control frame (a 2-byte header and at most
// 125 bytes of payload), so that each reaches Write in one piece and
// starts with its header. laf writes no data frame through coder/websocket.
const controlBuffer = 2 + 125

// Write writes one control frame: coder/websocket's, or laf's own close
// frame.
func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closeSent.Load() {
		return 0, errCloseSent
	}
	if len(p) > 0 && p[0]&0x0F == 0x8 {
		// Noted before the write: a close frame cut short by an error
		// counts as sent.
		g.closeSent.Store(true)
		if len(p) > 4 && !utf8.Valid(p[4:]) {
			// coder/websocket echoes the peer's close reason as it came;
			// a reason that is not UTF-8 fails the connection with 1007
			// instead (RFC 6455 §8.1).
			if _, err := g.Conn.Write(invalidUTF8Frame); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return g.Conn.Write(p)
}

// invalidUTF8Frame is a close frame with code 1007 and no reason.
var invalidUTF8Frame = []byte{0x88, 2, 1007 >> 8, 1007 & 0xFF}

// writeFrames writes laf's data frames, whole, from one buffer or a
// vector of them, unless a close frame has gone out.
func (g *gate) writeFrames(flat []byte, vec *net.Buffers) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closeSent.Load() {
		return 0, errCloseSent
	}
	if vec != nil {
		return vec.WriteTo(g.tcp)
	}
	n, err := g.Conn.Write(flat)
	return int64(n), err
}

// hijackWriter hands coder/websocket a gated connection at the hijack,
// with a write buffer sized for control frames rather than net/http's
// 4 KiB.
type hijackWriter struct {
	http.ResponseWriter
	gate *gate
	hook *controlHook
}

// controlHook is told, on the socket's goroutine, when coder/websocket
// has read a ping or a pong: a frame header is next, where the socket may
// park. It is its own small object, made before the hijack makes the
// gate, because coder/websocket keeps its methods as long as the socket.
type controlHook struct{ gate *gate }

func (h *controlHook) pingRead(context.Context, []byte) bool {
	h.controlRead()
	return true
}

func (h *controlHook) pongRead(context.Context, []byte) { h.controlRead() }

func (h *controlHook) controlRead() {
	if ir := h.gate.reader; ir != nil { // the hook fires only after the hijack
		ir.controlRead()
	}
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	w.gate = newGate(c)
	w.hook.gate = w.gate
	// net/http has flushed the response and left its writer empty.
	brw.Writer = bufio.NewWriterSize(w.gate, controlBuffer)
	brw.Reader = frontReader(w.gate, brw.Reader)
	w.gate.front = brw.Reader
	return w.gate, brw, nil
}
