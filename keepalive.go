package laf

import (
	"context"
	"errors"
	"time"
)

// Timers do the keepalive, idle and lifetime checks. A stopped or idle
// timer costs no goroutine; a callback runs briefly when one fires.

func (s *Socket) startTimers() {
	cfg := &s.ep.cfg
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if cfg.pingInterval > 0 {
		s.pingT = time.AfterFunc(cfg.pingInterval, s.keepalive)
	}
	if cfg.idleTimeout > 0 {
		s.touch()
		s.idleT = time.AfterFunc(cfg.idleTimeout, s.checkIdle)
	}
	if cfg.maxLifetime > 0 {
		s.lifeT = time.AfterFunc(cfg.maxLifetime, func() {
			s.timerMu.Lock()
			defer s.timerMu.Unlock()
			if !s.timersOff {
				s.closeWith(1001, "lifetime", CauseLifetime, false)
			}
		})
	}
}

// stopTimers stops the timers and waits for a running callback, which
// returns promptly once the connection is closed.
func (s *Socket) stopTimers() {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	s.timersOff = true
	for _, t := range []*time.Timer{s.pingT, s.idleT, s.lifeT} {
		if t != nil {
			t.Stop()
		}
	}
}

// keepalive pings, and closes the socket if no pong comes in time.
func (s *Socket) keepalive() {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.timersOff {
		return
	}
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
		s.closeWith(1006, "ping timeout", CausePingTimeout, true)
		return
	}
	s.pingT.Reset(cfg.pingInterval)
}

// checkIdle closes the socket if no message went either way for the idle
// timeout, and otherwise waits for the rest of it.
func (s *Socket) checkIdle() {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.timersOff {
		return
	}
	timeout := s.ep.cfg.idleTimeout
	idle := time.Since(s.born) - time.Duration(s.lastActive.Load())
	if idle >= timeout {
		s.closeWith(1000, "idle", CauseIdle, false)
		return
	}
	s.idleT.Reset(timeout - idle)
}
