package servers

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// coderServer is raw coder/websocket with the leanest hub we could write:
// one goroutine per socket (the handler's read loop), and a writer
// goroutine per socket only while it has broadcasts queued.
type coderServer struct {
	reader bool // Reader into a reused buffer, not Read

	mu    sync.RWMutex
	conns map[*coderConn]struct{}
}

// newCoderPing is the coder server with keepalive. coder/websocket has
// none of its own, and its Conn.Ping blocks until the pong, which the
// handler's Read reads: so one goroutine for every socket starts, each
// interval, a short goroutine per socket that calls Ping with a timeout
// of wait and closes the socket if it fails.
func newCoderPing(reader bool, interval, wait time.Duration) Server {
	s := &coderServer{reader: reader, conns: make(map[*coderConn]struct{})}
	go s.pingLoop(interval, wait)
	return s
}

// pingLoop pings every socket each interval, for the life of the process.
func (s *coderServer) pingLoop(interval, wait time.Duration) {
	for range time.Tick(interval) {
		s.mu.RLock()
		for cc := range s.conns {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				if cc.c.Ping(ctx) != nil {
					cc.c.CloseNow()
				}
			}()
		}
		s.mu.RUnlock()
	}
}

type coderConn struct {
	c       *websocket.Conn
	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte // the writer's last batch, reused
	writing bool
	dead    bool
	writeFn func() // cc.write, made once: "go cc.write()" allocates each time
}

func newCoder(reader bool) Server {
	return &coderServer{reader: reader, conns: make(map[*coderConn]struct{})}
}

func (s *coderServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(ReadLimit)
	cc := &coderConn{c: c}
	cc.writeFn = cc.write
	s.mu.Lock()
	s.conns[cc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		c.CloseNow()
	}()

	// A context that is never done: coder/websocket sets up a timer per
	// frame for one that can be.
	ctx := context.Background()
	if !s.reader {
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if c.Write(ctx, typ, b) != nil {
				return
			}
		}
	}
	buf := make([]byte, 0, 512)
	for {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		if c.Write(ctx, typ, buf) != nil {
			return
		}
	}
}

func (s *coderServer) Broadcast(p []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for cc := range s.conns {
		cc.enqueue(p)
	}
}

func (s *coderServer) Conns() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

func (cc *coderConn) enqueue(p []byte) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.dead {
		return
	}
	if len(cc.queue) >= QueueLimit {
		// Slow consumer: drop it, as a typical hub does.
		cc.dead = true
		cc.queue = nil
		go cc.c.CloseNow()
		return
	}
	cc.queue = append(cc.queue, p)
	if !cc.writing {
		cc.writing = true
		go cc.writeFn()
	}
}

func (cc *coderConn) write() {
	ctx := context.Background()
	for {
		cc.mu.Lock()
		if len(cc.queue) == 0 || cc.dead {
			cc.writing = false
			cc.mu.Unlock()
			return
		}
		batch := cc.queue
		cc.queue, cc.spare = cc.spare[:0], nil
		cc.mu.Unlock()
		var err error
		for _, p := range batch {
			if err = cc.c.Write(ctx, websocket.MessageText, p); err != nil {
				break
			}
		}
		clear(batch)
		cc.mu.Lock()
		cc.spare = batch[:0]
		if err != nil {
			cc.dead, cc.writing, cc.queue = true, false, nil
			cc.mu.Unlock()
			return
		}
		cc.mu.Unlock()
	}
}
