package servers

import (
	"net/http"
	"sync"

	"github.com/lxzan/gws"
)

// gwsServer uses gws's Upgrader with its documented `go ReadLoop()` idiom
// and gws.Broadcaster over a registry kept in OnOpen / OnClose.
type gwsServer struct {
	gws.BuiltinEventHandler
	up *gws.Upgrader

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

func (s *gwsServer) OnOpen(c *gws.Conn) {
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
