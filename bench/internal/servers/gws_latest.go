package servers

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/lxzan/gws"
)

// gwsLatest is the latest-state server written by hand on gws, the
// idiomatic way to conflate with it: gws's own asynchronous queue
// (WriteAsync, Broadcaster) keeps every message, so each socket gets a
// "latest frame" slot and a writer goroutine that writes whatever the
// slot holds with WriteMessage. A new frame replaces one still in the
// slot. A registry kept in OnOpen and OnClose is the room; the ticker
// runs while it is not empty.
type gwsLatest struct {
	gws.BuiltinEventHandler
	up *gws.Upgrader

	frames, replaced, closed atomic.Uint64

	mu         sync.RWMutex
	slots      map[*gws.Conn]*slot
	stop, done chan struct{} // the running ticker's, or nil
}

// slot is one socket's newest unwritten frame and its writer.
type slot struct {
	c    *gws.Conn
	slow bool
	wake chan struct{} // capacity 1: the writer has work
	gone chan struct{} // closed in OnClose

	mu      sync.Mutex
	next    []byte // the newest frame not yet written, or nil
	writing int    // bytes of the frame being written
}

func newGwsLatest() Latest {
	s := &gwsLatest{slots: make(map[*gws.Conn]*slot)}
	s.up = gws.NewUpgrader(s, &gws.ServerOption{
		ReadMaxPayloadSize: ReadLimit,
		Logger:             nopLogger{},
	})
	return s
}

func (s *gwsLatest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r)
	if err != nil {
		return
	}
	c.Session().Store("slow", r.URL.Query().Get("slow") == "1")
	go c.ReadLoop()
}

func (s *gwsLatest) OnOpen(c *gws.Conn) {
	slow, _ := c.Session().Load("slow")
	sl := &slot{c: c, slow: slow == true, wake: make(chan struct{}, 1), gone: make(chan struct{})}
	go sl.writer()
	s.mu.Lock()
	s.slots[c] = sl
	if len(s.slots) == 1 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go tickLoop(s.stop, s.done, s.send)
	}
	s.mu.Unlock()
}

func (s *gwsLatest) OnClose(c *gws.Conn, err error) {
	s.closed.Add(1)
	s.mu.Lock()
	sl := s.slots[c]
	delete(s.slots, c)
	var stop, done chan struct{}
	if len(s.slots) == 0 && s.stop != nil {
		stop, done = s.stop, s.done
		s.stop, s.done = nil, nil
	}
	s.mu.Unlock()
	if sl != nil {
		close(sl.gone)
	}
	if stop != nil {
		close(stop)
		<-done // not under s.mu, which the tick takes
	}
}

func (s *gwsLatest) OnMessage(c *gws.Conn, m *gws.Message) { m.Close() }

// send puts frame seq in every socket's slot and wakes its writer.
func (s *gwsLatest) send(seq uint64) {
	s.frames.Add(1)
	frame := latestFrame(seq) // shared by every socket, never modified
	s.mu.RLock()
	for _, sl := range s.slots {
		if sl.put(frame) {
			s.replaced.Add(1)
		}
	}
	s.mu.RUnlock()
}

// put makes frame the slot's next, and reports whether it replaced one.
func (sl *slot) put(frame []byte) (replaced bool) {
	sl.mu.Lock()
	replaced = sl.next != nil
	sl.next = frame
	sl.mu.Unlock()
	select {
	case sl.wake <- struct{}{}:
	default: // already awake
	}
	return replaced
}

// writer writes the slot's frame each time it has one, until the socket
// closes or a write fails (which makes gws close it).
func (sl *slot) writer() {
	for {
		select {
		case <-sl.gone:
			return
		case <-sl.wake:
		}
		sl.mu.Lock()
		f := sl.next
		sl.next, sl.writing = nil, len(f)
		sl.mu.Unlock()
		if f == nil {
			continue
		}
		err := sl.c.WriteMessage(gws.OpcodeBinary, f)
		sl.mu.Lock()
		sl.writing = 0
		sl.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// buffered returns the bytes in the slot and being written.
func (sl *slot) buffered() int {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return len(sl.next) + sl.writing
}

func (s *gwsLatest) Stats() LatestStats {
	out := LatestStats{Frames: s.frames.Load(), Replaced: s.replaced.Load(), Closed: s.closed.Load()}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out.Sockets = len(s.slots)
	for _, sl := range s.slots {
		if sl.slow {
			out.Slow = append(out.Slow, sl.buffered())
		} else {
			out.Fast = append(out.Fast, sl.buffered())
		}
	}
	return out
}
