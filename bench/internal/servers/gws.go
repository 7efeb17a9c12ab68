package servers

import (
	"net/http"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// gwsServer uses gws's Upgrader with its documented `go ReadLoop()` idiom
// and gws.Broadcaster over a registry kept in OnOpen / OnClose.
type gwsServer struct {
	gws.BuiltinEventHandler
	up *gws.Upgrader

	// deadline, when above zero, is the read deadline OnOpen sets and
	// each pong pushes back (see newGwsPing).
	deadline time.Duration

	mu    sync.RWMutex
	conns map[*gws.Conn]struct{}
}

type nopLogger struct{}

func (nopLogger) Error(...any) {}

func newGws() Server { return newGwsWith(gws.PermessageDeflate{}) }

// newGwsCompressed is the gws server with permessage-deflate, without
// context takeover either way, as laf's WithCompression.
func newGwsCompressed() Server {
	return newGwsWith(gws.PermessageDeflate{
		Enabled:               true,
		Threshold:             CompressThreshold,
		ServerContextTakeover: false,
		ClientContextTakeover: false,
	})
}

func newGwsWith(pd gws.PermessageDeflate) Server {
	s := &gwsServer{conns: make(map[*gws.Conn]struct{})}
	s.up = gws.NewUpgrader(s, &gws.ServerOption{
		ReadMaxPayloadSize: ReadLimit,
		Logger:             nopLogger{},
		PermessageDeflate:  pd,
	})
	return s
}

func (s *gwsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r)
	if err != nil {
		return
	}
	go c.ReadLoop()
}

// newGwsPing is the gws server with keepalive: one goroutine for every
// socket pings them all each interval (WritePing, a synchronous write of
// the frame), and a socket whose pong has not come within interval+wait
// of the last one times out on its read deadline: gws's own heartbeat
// pattern (SetDeadline in OnOpen and on each heartbeat) with the server
// pinging instead of the client.
func newGwsPing(interval, wait time.Duration) Server {
	s := newGwsWith(gws.PermessageDeflate{}).(*gwsServer)
	s.deadline = interval + wait
	go s.pingLoop(interval)
	return s
}

// pingLoop pings every socket each interval, for the life of the process
// (a benchmark server is never shut down but by its process ending).
func (s *gwsServer) pingLoop(interval time.Duration) {
	var batch []*gws.Conn
	for range time.Tick(interval) {
		s.mu.RLock()
		for c := range s.conns {
			batch = append(batch, c)
		}
		s.mu.RUnlock()
		for _, c := range batch {
			c.WritePing(nil)
		}
		clear(batch)
		batch = batch[:0]
	}
}

func (s *gwsServer) OnPong(c *gws.Conn, _ []byte) {
	if s.deadline > 0 {
		c.SetReadDeadline(time.Now().Add(s.deadline))
	}
}

func (s *gwsServer) OnOpen(c *gws.Conn) {
	if s.deadline > 0 {
		c.SetReadDeadline(time.Now().Add(s.deadline))
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *gwsServer) OnClose(c *gws.Conn, err error) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *gwsServer) OnMessage(c *gws.Conn, m *gws.Message) {
	c.WriteMessage(m.Opcode, m.Bytes())
	m.Close()
}

func (s *gwsServer) Broadcast(p []byte) {
	b := gws.NewBroadcaster(gws.OpcodeText, p)
	s.mu.RLock()
	for c := range s.conns {
		b.Broadcast(c)
	}
	s.mu.RUnlock()
	b.Close()
}

func (s *gwsServer) Conns() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}
