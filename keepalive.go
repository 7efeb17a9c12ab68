package laf

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// timers are a socket's keepalive, idle and lifetime timers. A stopped or
// idle timer costs no goroutine; a callback runs briefly when one fires.
type timers struct {
	mu      sync.Mutex // guards off and t; never held across a ping
	off     bool
	t       [timerCount]*time.Timer // nil for those turned off
	pinging sync.WaitGroup          // a keepalive under way, which stop waits for
}

// A socket's timers, by index in timers.t.
const (
	pingTimer     = iota // WithPing
	idleTimer            // WithIdleTimeout
	readIdleTimer        // WithReadIdleTimeout
	lifeTimer            // WithMaxLifetime
	timerCount
)

func (s *Socket) startTimers() {
	cfg := &s.ep.cfg
	t := &s.timers
	t.mu.Lock()
	defer t.mu.Unlock()
	if cfg.pingInterval > 0 {
		t.t[pingTimer] = time.AfterFunc(cfg.pingInterval, s.keepalive)
	}
	if cfg.idleTimeout > 0 {
		t.t[idleTimer] = time.AfterFunc(cfg.idleTimeout, func() { s.checkIdle(idleTimer, cfg.idleTimeout, &s.lastActive) })
	}
	if cfg.readIdle > 0 {
		t.t[readIdleTimer] = time.AfterFunc(cfg.readIdle, func() { s.checkIdle(readIdleTimer, cfg.readIdle, &s.lastRead) })
	}
	if cfg.maxLifetime > 0 {
		t.t[lifeTimer] = time.AfterFunc(cfg.maxLifetime, func() { s.out.decide(closeFor(CauseLifetime)) })
	}
}

// stopTimers stops the timers and waits for a keepalive under way, which
// returns promptly once the connection is closed.
func (s *Socket) stopTimers() {
	t := &s.timers
	t.mu.Lock()
	t.off = true
	for _, tm := range t.t {
		if tm != nil {
			tm.Stop()
		}
	}
	t.mu.Unlock()
	t.pinging.Wait()
}

// reset arms timer i again for d, unless the timers are stopped.
func (t *timers) reset(i int, d time.Duration) {
	t.mu.Lock()
	if !t.off {
		t.t[i].Reset(d)
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
	t.reset(pingTimer, cfg.pingInterval)
}

// checkIdle closes the socket if the last message it counts (last, a
// time since born) is timeout ago, and otherwise arms timer i for the
// rest of it. lastActive and lastRead start at zero: at born.
func (s *Socket) checkIdle(i int, timeout time.Duration, last *atomic.Int64) {
	idle := time.Since(s.born) - time.Duration(last.Load())
	if idle >= timeout {
		s.out.decide(closeFor(CauseIdle))
		return
	}
	s.timers.reset(i, timeout-idle)
}

// touch notes a message either way, for the idle timeout.
func (s *Socket) touch() {
	s.lastActive.Store(int64(time.Since(s.born)))
}
