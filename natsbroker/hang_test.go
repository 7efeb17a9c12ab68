package natsbroker_test

import (
	"net"
	"sync"
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/natsbroker"
)

// hungProxy forwards TCP connections to a server until paused: then it
// stops forwarding in both directions but keeps every connection open,
// so the clients see what they would of a server process that hangs
// (accepted, written to, silent); resumed, it forwards what it held. It is
// an honest model of SIGSTOP for the in-process server.
type hungProxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	conns  []net.Conn
	closed bool
}

func startProxy(t testing.TB, target string) *hungProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hungProxy{l: l, target: target}
	p.cond = sync.NewCond(&p.mu)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, s) {
				return
			}
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(s, c) }()
			go func() { defer wg.Done(); p.pipe(c, s) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		p.closed, p.paused = true, false
		for _, c := range p.conns {
			c.Close()
		}
		p.cond.Broadcast()
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *hungProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// pipe copies from src to dst, holding each chunk while paused.
func (p *hungProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.paused {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *hungProxy) URL() string { return "nats://" + p.l.Addr().String() }

func (p *hungProxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
}

func (p *hungProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
	p.cond.Broadcast()
}

// TestHang hangs the NATS server under two nodes, through a proxy that
// stops forwarding, for four heartbeats, then lets it go on. See
// laftest.TestBrokerHang for what it checks.
func TestHang(t *testing.T) {
	srv := startNATS(t)
	p := startProxy(t, srv.URL()[len("nats://"):])
	laftest.TestBrokerHang(t, natsbroker.New(connect(t, p.URL())), natsbroker.New(connect(t, p.URL())), p.pause, p.resume)
}
