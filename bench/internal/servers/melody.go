package servers

import (
	"net/http"
	"time"

	"github.com/olahol/melody"
)

type melodyServer struct{ m *melody.Melody }

func newMelody() Server { return newMelodyPing(0, 0) }

// newMelodyPing is the melody server with its built-in ping set to every
// interval and a pong wait of interval+wait (its defaults, 54 s and 60 s,
// with interval zero).
func newMelodyPing(interval, wait time.Duration) Server {
	m := melody.New()
	if interval > 0 {
		m.Config.PingPeriod, m.Config.PongWait = interval, interval+wait
	}
	m.Config.MaxMessageSize = ReadLimit // its default, 512 B, refuses the 1 KiB payloads
	m.HandleMessage(func(s *melody.Session, msg []byte) { s.Write(msg) })
	m.HandleMessageBinary(func(s *melody.Session, msg []byte) { s.WriteBinary(msg) })
	return &melodyServer{m: m}
}

func (s *melodyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.m.HandleRequest(w, r) }

func (s *melodyServer) Broadcast(p []byte) { s.m.Broadcast(p) }

func (s *melodyServer) Conns() int { return s.m.Len() }
