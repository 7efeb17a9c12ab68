package natsbroker_test

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsServer is an in-process nats-server on a loopback port, which a
// test can shut down and start again on the same port.
type natsServer struct {
	t    testing.TB
	port int
	dir  string // JetStream's store, kept across restarts

	mu sync.Mutex
	s  *server.Server
}

// startNATS starts a server, with JetStream, on a free port and shuts it
// down when the test ends.
func startNATS(t testing.TB) *natsServer {
	t.Helper()
	n := &natsServer{t: t, port: server.RANDOM_PORT, dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// start runs the server, on the port it had before if it ran already.
func (n *natsServer) start() {
	n.t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: n.port, NoLog: true, NoSigs: true, JetStream: true, StoreDir: n.dir})
	if err != nil {
		n.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		n.t.Fatalf("nats-server on port %d not ready", n.port)
	}
	n.mu.Lock()
	n.s = s
	n.port = s.Addr().(*net.TCPAddr).Port
	n.mu.Unlock()
}

// stop shuts the server down, dropping every client, and waits for it.
func (n *natsServer) stop() {
	n.mu.Lock()
	s := n.s
	n.s = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// server returns the running server.
func (n *natsServer) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.s
}

// URL returns the server's client URL.
func (n *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// connect opens a connection that reconnects quickly and forever, as the
// package doc asks of users, and closes it when the test ends.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// eventually waits for cond, failing the test after a generous timeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	const timeout = 30 * time.Second
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
