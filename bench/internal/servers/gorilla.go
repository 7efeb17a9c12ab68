package servers

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// gorillaServer follows gorilla/websocket's chat example: a registry of
// clients, each with a buffered send channel drained by its own writePump
// goroutine, which also pings; the handler goroutine is the readPump.
// Echoes are written straight from the readPump (as the echo example
// does), under a mutex shared with the writePump, since gorilla allows one
// concurrent writer.
type gorillaServer struct {
	up websocket.Upgrader
	// ping is the writePump's ping period, pongWait the read deadline
	// each pong pushes back.
	ping, pongWait time.Duration

	mu      sync.RWMutex
	clients map[*gorillaClient]struct{}
}

type gorillaClient struct {
	c    *websocket.Conn
	ping time.Duration
	wmu  sync.Mutex
	send chan []byte
	once sync.Once
	done chan struct{}
}

const gorillaWriteWait = 10 * time.Second

func newGorilla() Server { return newGorillaPing(PingInterval, 10*time.Second) }

// newGorillaPing is the chat example's server pinging every interval and
// closing a socket whose pong has not come within interval+wait of the
// last one.
func newGorillaPing(interval, wait time.Duration) *gorillaServer {
	return &gorillaServer{
		up:       websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		ping:     interval,
		pongWait: interval + wait,
		clients:  make(map[*gorillaClient]struct{}),
	}
}

func (s *gorillaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	cl := &gorillaClient{c: c, ping: s.ping, send: make(chan []byte, QueueLimit), done: make(chan struct{})}
	s.mu.Lock()
	s.clients[cl] = struct{}{}
	s.mu.Unlock()
	go cl.writePump()

	c.SetReadLimit(ReadLimit)
	c.SetReadDeadline(time.Now().Add(s.pongWait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(s.pongWait)) })
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			break
		}
		cl.wmu.Lock()
		err = c.WriteMessage(typ, msg)
		cl.wmu.Unlock()
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	delete(s.clients, cl)
	s.mu.Unlock()
	cl.stop()
}

func (cl *gorillaClient) stop() {
	cl.once.Do(func() {
		close(cl.done)
		cl.c.Close()
	})
}

func (cl *gorillaClient) writePump() {
	ticker := time.NewTicker(cl.ping)
	defer func() {
		ticker.Stop()
		cl.stop()
	}()
	for {
		select {
		case msg := <-cl.send:
			cl.wmu.Lock()
			cl.c.SetWriteDeadline(time.Now().Add(gorillaWriteWait))
			err := cl.c.WriteMessage(websocket.TextMessage, msg)
			cl.wmu.Unlock()
			if err != nil {
				return
			}
		case <-ticker.C:
			cl.wmu.Lock()
			cl.c.SetWriteDeadline(time.Now().Add(gorillaWriteWait))
			err := cl.c.WriteMessage(websocket.PingMessage, nil)
			cl.wmu.Unlock()
			if err != nil {
				return
			}
		case <-cl.done:
			return
		}
	}
}

func (s *gorillaServer) Broadcast(p []byte) {
	var slow []*gorillaClient
	s.mu.RLock()
	for cl := range s.clients {
		select {
		case cl.send <- p:
		default:
			slow = append(slow, cl)
		}
	}
	s.mu.RUnlock()
	if len(slow) > 0 {
		// As the chat hub does: a client that cannot keep up is dropped.
		s.mu.Lock()
		for _, cl := range slow {
			delete(s.clients, cl)
		}
		s.mu.Unlock()
		for _, cl := range slow {
			go cl.stop()
		}
	}
}

func (s *gorillaServer) Conns() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.clients)
}
