//go:build unix

package redisbroker_test

import (
	"syscall"
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/redisbroker"
)

// signal sends sig to redis-server.
func (s *redisServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// TestHang stops redis-server (SIGSTOP) under two nodes for four
// heartbeats and lets it go on (SIGCONT): Redis still accepts connections
// and bytes, and answers nothing, then processes what it was sent. See
// laftest.TestBrokerHang for what it checks.
func TestHang(t *testing.T) {
	srv := startRedis(t)
	t.Cleanup(func() { srv.signal(syscall.SIGCONT) })
	laftest.TestBrokerHang(t, redisbroker.New(newClient(t, srv)), redisbroker.New(newClient(t, srv)),
		func() { srv.signal(syscall.SIGSTOP) }, func() { srv.signal(syscall.SIGCONT) })
}
