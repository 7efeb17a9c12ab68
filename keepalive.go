package laf

import (
	"sync"
	"sync/atomic"
	"time"
)

// timers are a socket's keepalive, idle and lifetime timers. A stopped or
// idle timer costs no goroutine; a callback runs briefly when one fires.
type timers struct {
	mu          sync.Mutex // guards the fields below; never held across a ping
	off         bool
	awaiting    bool                    // a ping is out, and its pong not yet seen
	pongsAtPing uint64                  // the connection's pongs when it went
	pingAt      time.Time               // when the last ping went
	t           [timerCount]*time.Timer // nil for those turned off
	pinging     sync.WaitGroup          // a keepalive under way, which stop waits for
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
		t.t[lifeTimer] = time.AfterFunc(cfg.lifetime(), func() { s.out.decide(closeFor(CauseLifetime)) })
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

// keepalive runs each time the ping timer fires. It pings once a ping
// interval has passed since the last ping and that ping's pong has come,
// and closes the socket with CausePingTimeout if the pong has not come
// within the pong timeout. Pongs are read only between messages: while
// the Func runs, a missing pong says nothing about the peer, and the wait
// goes on.
func (s *Socket) keepalive() {
	t := &s.timers
	cfg := &s.ep.cfg
	t.mu.Lock()
	if t.off {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	if t.awaiting && s.conn.Pongs() != t.pongsAtPing {
		t.awaiting = false
	}
	if t.awaiting {
		left := t.pingAt.Add(cfg.pongTimeout).Sub(now)
		switch {
		case left > 0:
			t.t[pingTimer].Reset(min(left, cfg.pingInterval))
		case s.inHandler.Load():
			t.t[pingTimer].Reset(min(cfg.pongTimeout, cfg.pingInterval))
		default:
			t.mu.Unlock()
			s.out.decide(closeFor(CausePingTimeout))
			return
		}
		t.mu.Unlock()
		return
	}
	if due := t.pingAt.Add(cfg.pingInterval).Sub(now); due > 0 && !t.pingAt.IsZero() {
		t.t[pingTimer].Reset(due)
		t.mu.Unlock()
		return
	}
	t.awaiting, t.pongsAtPing, t.pingAt = true, s.conn.Pongs(), now
	t.t[pingTimer].Reset(min(cfg.pongTimeout, cfg.pingInterval))
	t.pinging.Add(1)
	t.mu.Unlock()
	// An error means the connection is closing: the read loop sees why,
	// and reports the true cause.
	s.conn.Ping(nil)
	t.pinging.Done()
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
