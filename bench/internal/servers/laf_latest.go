package servers

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/lafgo/laf"
)

// lafLatest is the latest-state server as laf's README shows it: sockets
// join the room on connection, WithRoomHook starts the room's ticker when
// it gets its first member and stops it when it loses its last, and each
// frame goes out with SendRoom(laf.Latest(key, laf.Owned(frame, true))).
type lafLatest struct {
	ep     *laf.Endpoint
	frames atomic.Uint64

	mu         sync.Mutex
	stop, done chan struct{} // the running ticker's, or nil
}

func newLafLatest() Latest {
	s := &lafLatest{}
	s.ep = laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			if ctx.Request.URL.Query().Get("slow") == "1" {
				ctx.Socket.Set("slow", true)
			}
			ctx.Socket.Join(LatestRoom)
		}
		return nil
	}, laf.WithRoomHook(s.roomHook)) // defaults otherwise: 256 messages / 1 MiB queue, CloseSlow, ping every 30 s
	return s
}

// roomHook is called one change at a time, in order.
func (s *lafLatest) roomHook(room string, occupied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if occupied {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go tickLoop(s.stop, s.done, s.send)
		return
	}
	close(s.stop)
	<-s.done // a tick only queues: this is prompt
	s.stop, s.done = nil, nil
}

func (s *lafLatest) send(seq uint64) {
	s.frames.Add(1)
	// The room's latest state: a socket whose previous frame is still
	// queued gets this one in its place. Owned: the frame is not touched
	// again, and every socket shares it.
	s.ep.SendRoom(context.Background(), LatestRoom, laf.Latest("state", laf.Owned(latestFrame(seq), true /* binary */)))
}

func (s *lafLatest) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.ep.ServeHTTP(w, r) }

func (s *lafLatest) Stats() LatestStats {
	st := s.ep.Stats()
	out := LatestStats{Frames: s.frames.Load(), Replaced: st.Replaced}
	for _, n := range st.Closes {
		out.Closed += n
	}
	s.ep.RangeRoom(LatestRoom, func(sock *laf.Socket) bool {
		out.Sockets++
		if _, slow := sock.Get("slow"); slow {
			out.Slow = append(out.Slow, sock.Buffered())
		} else {
			out.Fast = append(out.Fast, sock.Buffered())
		}
		return true
	})
	return out
}
