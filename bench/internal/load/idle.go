package load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
)

// IdleClients are client sockets that stay idle, as browser tabs left
// open do: each is dialled and upgraded like any other (the load client's
// dialer, source address and listener), then its file descriptor is taken
// from the net package and put in one epoll set, served by one goroutine
// for all of them. That goroutine answers every ping with its pong at
// once, closes a socket the server closes, and reads anything else to
// nowhere. An idle socket costs the client a file descriptor and a few
// dozen bytes, so one process can hold 100,000 of them.
type IdleClients struct {
	epfd   int
	silent bool // answer no ping (to check that the server then closes)
	conns  []idleConn
	pings  atomic.Uint64
	closed atomic.Int64  // sockets the server closed
	errs   atomic.Uint64 // pongs that could not be written whole, frames not understood
	stop   chan struct{}
	done   chan struct{}
}

// idleConn is one socket. Its fd is stored (atomically) before the fd
// joins the epoll set; the other fields belong to the epoll goroutine.
type idleConn struct {
	fd    atomic.Int32
	pings atomic.Uint32
	pend  []byte // the start of a frame not yet whole
	skip  int    // payload bytes of a data frame still to discard
	dead  bool   // closed by the server, and by us
}

// DialIdle opens n idle sockets. With silent, they answer no ping (a peer
// that has gone away without closing). Dialling stops at the first
// socket that cannot be opened in 3 tries, and then every open one is
// closed. timeout bounds the whole dialling.
func (t *Target) DialIdle(n int, silent bool, timeout time.Duration) (*IdleClients, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	ic := &IdleClients{epfd: epfd, silent: silent, conns: make([]idleConn, n),
		stop: make(chan struct{}), done: make(chan struct{})}
	for i := range ic.conns {
		ic.conns[i].fd.Store(-1)
	}
	go ic.loop()
	err = forEach(n, timeout, func(ctx context.Context, i int) error {
		c, err := t.Dial(ctx, i)
		if err != nil {
			return err
		}
		// gorilla's client has read nothing past the 101 response: the
		// server sends nothing before its first ping.
		fd, err := dupFD(c.NetConn().(syscall.Conn))
		c.Close() // the socket stays open: fd holds it
		if err != nil {
			return err
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return err
		}
		ic.conns[i].fd.Store(int32(fd))
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd), Pad: int32(i)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			ic.conns[i].fd.Store(-1)
			syscall.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		ic.Stop()
		return nil, err
	}
	return ic, nil
}

// dupFD returns a duplicate, close-on-exec, of c's file descriptor.
func dupFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	dup := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		dup = int(r)
	})
	return dup, errors.Join(err, derr)
}

// Pings returns the pings the sockets have received.
func (ic *IdleClients) Pings() uint64 { return ic.pings.Load() }

// MinPings returns the fewest pings any one socket has received.
func (ic *IdleClients) MinPings() uint32 {
	least := ^uint32(0)
	for i := range ic.conns {
		least = min(least, ic.conns[i].pings.Load())
	}
	return least
}

// Closed returns the sockets the server has closed.
func (ic *IdleClients) Closed() int { return int(ic.closed.Load()) }

// Errors returns pongs that could not be written whole and frames the
// client could not parse.
func (ic *IdleClients) Errors() uint64 { return ic.errs.Load() }

// Stop ends the epoll goroutine and drops every socket with a reset
// (SO_LINGER 0), which leaves nothing in TIME_WAIT.
func (ic *IdleClients) Stop() {
	close(ic.stop)
	<-ic.done
	for i := range ic.conns {
		c := &ic.conns[i]
		if fd := int(c.fd.Load()); fd >= 0 && !c.dead {
			syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
			syscall.Close(fd)
		}
	}
	syscall.Close(ic.epfd)
}

func (ic *IdleClients) loop() {
	defer close(ic.done)
	events := make([]syscall.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-ic.stop:
			return
		default:
		}
		n, err := syscall.EpollWait(ic.epfd, events, 100)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			panic(fmt.Sprintf("load: epoll_wait: %v", err))
		}
		for _, ev := range events[:n] {
			ic.serve(&ic.conns[ev.Pad], buf)
		}
	}
}

// serve reads what socket c has (the set is level-triggered: what is left
// comes back at the next wait).
func (ic *IdleClients) serve(c *idleConn, buf []byte) {
	if c.dead {
		return
	}
	fd := int(c.fd.Load())
	n, err := syscall.Read(fd, buf)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return
	case n <= 0 || err != nil:
		ic.drop(c, fd)
		return
	}
	if !ic.consume(c, fd, buf[:n]) {
		ic.drop(c, fd)
	}
}

// drop closes a socket the server has closed.
func (ic *IdleClients) drop(c *idleConn, fd int) {
	syscall.EpollCtl(ic.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	syscall.Close(fd)
	c.dead = true
	ic.closed.Add(1)
}

// consume parses the server's frames in p, answering pings; it returns
// false once the socket is to be closed (a close frame, or a frame no
// server may send).
func (ic *IdleClients) consume(c *idleConn, fd int, p []byte) bool {
	if c.pend != nil {
		p = append(c.pend, p...)
		c.pend = nil
	}
	for len(p) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(p))
			c.skip -= k
			p = p[k:]
			continue
		}
		if len(p) < 2 {
			c.pend = append([]byte(nil), p...)
			return true
		}
		op, n, h := p[0]&0x0f, uint64(p[1]&0x7f), 2
		if p[1]&0x80 != 0 { // a server's frames are never masked
			ic.errs.Add(1)
			return false
		}
		switch n {
		case 126:
			h = 4
		case 127:
			h = 10
		}
		if len(p) < h {
			c.pend = append([]byte(nil), p...)
			return true
		}
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(p[2:]))
		case 127:
			n = binary.BigEndian.Uint64(p[2:])
		}
		if op < 8 { // data: discarded as it comes
			k := min(n, uint64(len(p)-h))
			c.skip = int(n - k)
			p = p[h+int(k):]
			continue
		}
		if n > 125 {
			ic.errs.Add(1)
			return false
		}
		if len(p) < h+int(n) {
			c.pend = append([]byte(nil), p...)
			return true
		}
		payload := p[h : h+int(n)]
		p = p[h+int(n):]
		switch op {
		case 0x9:
			ic.pings.Add(1)
			c.pings.Add(1)
			if !ic.silent && !ic.write(fd, 0xA, payload) {
				ic.errs.Add(1)
			}
		case 0x8:
			ic.write(fd, 0x8, payload[:min(2, len(payload))]) // echo the status code
			return false
		}
	}
	return true
}

// mask is the masking key of every client frame: RFC 6455 asks for an
// unpredictable one against proxy cache poisoning, which loopback has no
// use for; the server unmasks whatever it is.
var mask = [4]byte{0x5a, 0xc3, 0x71, 0x0e}

// write sends one masked control frame whole, or reports false.
func (ic *IdleClients) write(fd int, op byte, payload []byte) bool {
	var f [6 + 125]byte
	f[0], f[1] = 0x80|op, 0x80|byte(len(payload))
	copy(f[2:6], mask[:])
	for i, b := range payload {
		f[6+i] = b ^ mask[i&3]
	}
	n, err := syscall.Write(fd, f[:6+len(payload)])
	return err == nil && n == 6+len(payload)
}
