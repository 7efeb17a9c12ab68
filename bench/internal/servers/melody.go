package servers

import (
	"net/http"

	"github.com/olahol/melody"
)

type melodyServer struct{ m *melody.Melody }

func newMelody() Server {
	m := melody.New()
	m.Config.MaxMessageSize = ReadLimit // its default, 512 B, refuses the 1 KiB payloads
	m.HandleMessage(func(s *melody.Session, msg []byte) { s.Write(msg) })
	m.HandleMessageBinary(func(s *melody.Session, msg []byte) { s.WriteBinary(msg) })
	return &melodyServer{m: m}
}

func (s *melodyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.m.HandleRequest(w, r) }

func (s *melodyServer) Broadcast(p []byte) { s.m.Broadcast(p) }

func (s *melodyServer) Conns() int { return s.m.Len() }
