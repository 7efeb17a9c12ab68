package laf

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/lafgo/laf/internal/wsconn"
)

// canPark: a socket can wait for its peer with no goroutine (see park).
const canPark = true

// poller waits for the parked sockets of an Endpoint with an epoll set of
// its own, and gives each socket that has something to read a goroutine
// again. The epoll set's own descriptor waits in Go's network poller, so
// no thread blocks on it; its goroutine runs only while some socket is
// parked.
//
// A parked socket is in parked under its token until exactly one of two
// things takes it out and resumes it: the poller, once its connection has
// something to read (or has failed), or the close of its connection (see
// Socket.closeConn), which the poller would not see.
type poller struct {
	mu      sync.Mutex // a leaf: see locks.go
	ep      *os.File   // the epoll set, made on the first park (and again, parkRetry after it failed); nil before
	epfd    int        // ep's descriptor (ep.Fd would make it blocking)
	raw     syscall.RawConn
	parked  map[uint64]*Socket
	running bool                 // the poller's goroutine runs
	failed  time.Time            // when the epoll set last failed; no park until parkRetry later
	events  []syscall.EpollEvent // the goroutine's
	woken   uint64               // sockets resumed
	served  uint64               // wake-ups served with the socket left parked (control frames)
	control *wsconn.ControlIO    // the goroutine's

	// ctl's arguments and result, guarded by mu: passing them to a
	// closure made for each call would allocate.
	ctlOp  int
	ctlEv  syscall.EpollEvent
	ctlErr error
	ctlFn  func(fd uintptr)
}

// parkRetry is how long sockets keep their goroutines after the epoll set
// failed (out of descriptors, say) before a park tries a new one.
const parkRetry = time.Second

// park hands s, idle at a frame boundary with nothing buffered, to the
// poller, and reports false if it cannot take it; the socket's goroutine
// then waits as it would have.
func (p *poller) park(s *Socket) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ep == nil {
		if !p.failed.IsZero() && time.Since(p.failed) < parkRetry {
			return false
		}
		if err := p.open(); err != nil {
			p.failed = time.Now()
			return false
		}
	}
	if p.ctl(s, syscall.EPOLL_CTL_ADD) != nil {
		return false // closed meanwhile: the socket's goroutine reads the error
	}
	p.parked[s.token] = s
	if !p.running {
		p.running = true
		go p.run()
	}
	return true
}

var errNotTCP = errors.New("laf: not a TCP connection")

// ctl adds s's connection to the epoll set, or arms it again (op
// EPOLL_CTL_MOD), for one event: its next bytes, or its end; or takes it
// out (EPOLL_CTL_DEL). p.mu is held.
func (p *poller) ctl(s *Socket, op int) error {
	raw := s.conn.Raw()
	if raw == nil {
		return errNotTCP
	}
	p.ctlOp = op
	p.ctlEv = syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(s.token)),
		Pad:    int32(uint32(s.token >> 32)),
	}
	if err := raw.Control(p.ctlFn); err != nil {
		return err
	}
	return p.ctlErr
}

// ctlFD is ctl's work on the connection's descriptor. p.mu is held.
func (p *poller) ctlFD(fd uintptr) {
	p.ctlErr = syscall.EpollCtl(p.epfd, p.ctlOp, int(fd), &p.ctlEv)
}

// open makes the epoll set. p.mu is held.
func (p *poller) open() error {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return err
	}
	ep := os.NewFile(uintptr(fd), "laf-epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return err
	}
	p.ep, p.epfd, p.raw = ep, fd, raw
	if p.parked == nil {
		p.parked = make(map[uint64]*Socket)
		p.ctlFn = p.ctlFD // made once: a method value allocates
	}
	return nil
}

// take removes the socket parked under token, if it still is, and
// returns it, or nil.
func (p *poller) take(token uint64) *Socket {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.parked[token]
	delete(p.parked, token)
	if s != nil && len(p.parked) == 0 && p.running {
		// A closed descriptor leaves the set without an event: wake the
		// poller's goroutine, so that it ends.
		p.ep.SetReadDeadline(time.Now())
	}
	return s
}

// unpark resumes s if it is parked: its connection has been closed.
func (p *poller) unpark(s *Socket) {
	if p.take(s.token) == s {
		p.wake(s)
	}
}

// serve handles what the socket parked under token has received, if it
// still is parked: control frames are served where they are (see
// wsconn's ControlIO.Serve), and the socket is parked again; anything else
// resumes it. While it is served, the socket is out of parked, so that a
// close (unpark) leaves it to serve; the park again then fails on the
// closed connection, and resumes it.
func (p *poller) serve(token uint64) {
	p.mu.Lock()
	s := p.parked[token]
	delete(p.parked, token)
	p.mu.Unlock()
	if s == nil {
		return
	}
	if p.control == nil {
		p.control = wsconn.NewControlIO()
	}
	if p.control.Serve(s.conn) {
		p.wake(s)
		return
	}
	p.mu.Lock()
	err := p.ctl(s, syscall.EPOLL_CTL_MOD)
	if err == nil {
		p.parked[token] = s
		p.served++
	}
	p.mu.Unlock()
	if err != nil {
		p.wake(s)
	}
}

// wake resumes s, taken out of parked, on a goroutine of its own.
func (p *poller) wake(s *Socket) {
	p.mu.Lock()
	p.woken++
	p.mu.Unlock()
	go s.resume()
}

// forget takes s's connection out of the epoll set, once s has been
// taken out of parked.
func (p *poller) forget(s *Socket) {
	p.mu.Lock()
	p.ctl(s, syscall.EPOLL_CTL_DEL) // the set was made before s was parked, and is kept
	p.mu.Unlock()
}

// run resumes the sockets the epoll set reports, until none is parked.
func (p *poller) run() {
	if p.events == nil {
		p.events = make([]syscall.EpollEvent, 128)
	}
	for {
		err := p.raw.Read(p.poll)
		if err == nil {
			return // none is parked
		}
		p.mu.Lock()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// take's wake-up.
			if len(p.parked) == 0 {
				p.running = false
				p.mu.Unlock()
				return
			}
			p.ep.SetReadDeadline(time.Time{}) // under mu: take sets it under mu
			p.mu.Unlock()
			continue
		}
		// Not expected: the set cannot be waited on. Resume every parked
		// socket, and make a new set for the next park, parkRetry from now.
		p.running, p.failed = false, time.Now()
		parked := p.parked
		p.parked = make(map[uint64]*Socket)
		p.ep.Close()
		p.ep = nil
		p.mu.Unlock()
		for _, s := range parked {
			p.wake(s)
		}
		return
	}
}

// poll resumes the sockets that have something to read, and reports true
// once none is parked.
func (p *poller) poll(fd uintptr) bool {
	for {
		n, err := syscall.EpollWait(int(fd), p.events, 0)
		if err == syscall.EINTR {
			continue
		}
		for _, ev := range p.events[:max(n, 0)] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
				p.serve(token)
			} else if s := p.take(token); s != nil {
				p.wake(s)
			}
		}
		if n == len(p.events) {
			continue
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.parked) == 0 {
			p.running = false
			return true
		}
		return false
	}
}

// wakeups returns how many times a parked socket was resumed, and how
// many times one was served and left parked.
func (p *poller) wakeups() (woken, served uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.woken, p.served
}

// count returns how many sockets are parked, and whether the poller's
// goroutine runs.
func (p *poller) count() (parked int, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked), p.running
}
