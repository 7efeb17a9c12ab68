package laf

import (
	"context"
	"errors"
	"sync"
	"time"
)

// timers are a socket's keepalive, idle and lifetime timers. A stopped or
// idle timer costs no goroutine; a callback runs briefly when one fires.
type timers struct {
	mu      sync.Mutex // guards off and the timers' resets; never held across a ping
	off     bool
	ping    *time.Timer
	idle    *time.Timer
	life    *time.Timer
	pinging sync.WaitGroup // a keepalive under way, which stop waits for
}

func (s *Socket) startTimers() {
	cfg := &s.ep.cfg
	t := &s.timers
	t.mu.Lock()
	defer t.mu.Unlock()
	if cfg.pingInterval > 0 {
		t.ping = time.AfterFunc(cfg.pingInterval, s.keepalive)
	}
	if cfg.idleTimeout > 0 {
		s.touch()
		t.idle = time.AfterFunc(cfg.idleTimeout, s.checkIdle)
	}
	if cfg.maxLifetime > 0 {
		t.life = time.AfterFunc(cfg.maxLifetime, func() { s.out.decide(closeFor(CauseLifetime)) })
	}
}

// stopTimers stops the timers and waits for a keepalive under way, which
// returns promptly once the connection is closed.
func (s *Socket) stopTimers() {
	t := &s.timers
	t.mu.Lock()
	t.off = true
	for _, tm := range []*time.Timer{t.ping, t.idle, t.life} {
		if tm != nil {
			tm.Stop()
		}
	}
	t.mu.Unlock()
	t.pinging.Wait()
}

// reset arms tm again for d, unless the timers are stopped.
func (t *timers) reset(tm *time.Timer, d time.Duration) {
	t.mu.Lock()
	if !t.off {
		tm.Reset(d)
	}
	t.mu.Unlock()
}

// keepalive pings, and closes the socket if no pong comes in time.
func (s *Socket) keepalive() {
	t := &s.timers
	t.mu.Lock()
	if t.off {
		t.mu.Unlock()
		return
	}
	t.pinging.Add(1)
	t.mu.Unlock()
	defer t.pinging.Done()

	cfg := &s.ep.cfg
	ctx, cancel := context.WithTimeout(context.Background(), cfg.pongTimeout)
	err := s.conn.Ping(ctx)
	cancel()
	switch {
	case err == nil:
	case !errors.Is(err, context.DeadlineExceeded):
		// The connection is closing; the read loop sees why, and reports
		// the true cause.
		return
	case s.inHandler.Load():
		// Pongs are read only between messages: while the Func runs, a
		// late pong says nothing about the peer.
	default:
		s.out.decide(closeFor(CausePingTimeout))
		return
	}
	t.reset(t.ping, cfg.pingInterval)
}

// checkIdle closes the socket if no message went either way for the idle
// timeout, and otherwise waits for the rest of it.
func (s *Socket) checkIdle() {
	timeout := s.ep.cfg.idleTimeout
	idle := time.Since(s.born) - time.Duration(s.lastActive.Load())
	if idle >= timeout {
		s.out.decide(closeFor(CauseIdle))
		return
	}
	s.timers.reset(s.timers.idle, timeout-idle)
}

func (s *Socket) touch() {
	s.lastActive.Store(int64(time.Since(s.born)))
}
