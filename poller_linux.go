package laf

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
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
	ep      *os.File   // the epoll set, made on the first park and kept for the Endpoint's life
	epfd    int        // ep's descriptor (ep.Fd would make it blocking)
	raw     syscall.RawConn
	parked  map[uint64]*Socket
	running bool // the poller's goroutine runs
	err     error
	events  []syscall.EpollEvent // the goroutine's
}

// park hands s, idle at a frame boundary with nothing buffered, to the
// poller, and reports false if it cannot take it; the socket's goroutine
// then waits as it would have.
func (p *poller) park(s *Socket) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return false
	}
	if p.ep == nil {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err == nil {
			err = syscall.SetNonblock(fd, true)
		}
		if err != nil {
			p.err = err
			return false
		}
		p.ep, p.epfd = os.NewFile(uintptr(fd), "laf-epoll"), fd
		if p.raw, p.err = p.ep.SyscallConn(); p.err != nil {
			return false
		}
		p.parked = make(map[uint64]*Socket)
	}
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(s.token)),
		Pad:    int32(uint32(s.token >> 32)),
	}
	var err error
	raw := s.conn.Raw()
	if raw == nil {
		return false
	}
	cerr := raw.Control(func(fd uintptr) {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil || err != nil {
		return false // closed meanwhile: the socket's goroutine reads the error
	}
	p.parked[s.token] = s
	if !p.running {
		p.running = true
		go p.run()
	}
	return true
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
		go s.resume()
	}
}

// forget takes s's connection out of the epoll set, once s has been
// taken out of parked.
func (p *poller) forget(s *Socket) {
	p.mu.Lock()
	epfd := p.epfd // set before s was parked, and kept
	p.mu.Unlock()
	s.conn.Raw().Control(func(fd uintptr) {
		syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
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
		// Not expected: the set cannot be waited on. Park no more, and
		// resume every parked socket.
		p.err, p.running = err, false
		parked := p.parked
		p.parked = make(map[uint64]*Socket)
		p.mu.Unlock()
		for _, s := range parked {
			go s.resume()
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
			if s := p.take(token); s != nil {
				go s.resume()
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

// count returns how many sockets are parked, and whether the poller's
// goroutine runs.
func (p *poller) count() (parked int, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked), p.running
}
