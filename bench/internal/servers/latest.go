package servers

import (
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/lafgo/laf/bench/internal/wire"
)

// The latest-state scenario: every socket of a Latest server is in one
// room, and while the room has members a ticker sends it one frame of
// state LatestHz times a second. Each frame is LatestSize bytes, binary,
// a wire payload of kind wire.Latest stamped with its sequence number and
// the time it was sent. Frames are conflated per socket: a socket whose
// previous frame is still waiting gets the new one in its place, so that
// a slow reader gets the newest state, never a backlog.
const (
	LatestHz   = 30
	LatestSize = 1024
	LatestRoom = "board"
	// LatestLowat is the TCP_NOTSENT_LOWAT of the scenario's server
	// (see NotSentLowat).
	LatestLowat = 4096
)

// Latest is a contender's latest-state server: ServeHTTP upgrades a
// socket into the room. A request with ?slow=1 tags the socket as slow,
// for Stats only: the server treats every socket alike.
type Latest interface {
	http.Handler
	Stats() LatestStats
}

// LatestStats is a snapshot of a Latest server.
type LatestStats struct {
	Sockets  int    `json:"sockets"`  // in the room
	Frames   uint64 `json:"frames"`   // frames sent to the room so far
	Replaced uint64 `json:"replaced"` // frames replaced by a newer one before being written, over every socket
	Closed   uint64 `json:"closed"`   // sockets that have closed, for any reason
	// Slow and Fast are the bytes queued or being written, per socket:
	// laf's Socket.Buffered, or the frame in a gws socket's slot plus the
	// frame its writer is writing.
	Slow []int `json:"slow"`
	Fast []int `json:"fast"`
}

// latestFrame returns frame number seq, stamped now.
func latestFrame(seq uint64) []byte {
	return wire.New(wire.Latest, LatestSize, seq, time.Now().UnixNano())
}

// tickLoop calls send with frame after frame, LatestHz times a second,
// until stop is closed; then it closes done.
func tickLoop(stop, done chan struct{}, send func(seq uint64)) {
	defer close(done)
	t := time.NewTicker(time.Second / LatestHz)
	defer t.Stop()
	for seq := uint64(1); ; seq++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		send(seq)
	}
}

// tcpNotSentLowat is TCP_NOTSENT_LOWAT from linux/tcp.h.
const tcpNotSentLowat = 25

// NotSentLowat returns ln with TCP_NOTSENT_LOWAT set to bytes on every
// connection it accepts: a write blocks while more than bytes wait in the
// kernel unsent. The kernel's send buffer otherwise grows to megabytes
// (tcp_wmem), which would hold a slow reader's backlog where no
// conflation can reach it; real-time servers set this, or a small
// SO_SNDBUF, so that what waits, waits in their own queue.
func NotSentLowat(ln net.Listener, bytes int) net.Listener {
	return lowatListener{ln, bytes}
}

type lowatListener struct {
	net.Listener
	bytes int
}

func (l lowatListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, l.bytes)
			})
		}
	}
	return c, nil
}
