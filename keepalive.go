package laf

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wsconn"
)

// pinger is an Endpoint's keepalive: one schedule of every socket's next
// ping or pong check, and one timer for the earliest of them. When the
// timer fires, one goroutine pings every socket then due with a write
// that does not wait (see wsconn's ControlIO), and closes those whose pong
// is overdue: a ping round starts no goroutine per socket, and pongs are
// counted by whoever reads them (the socket's goroutine, or the poller
// while it is parked) with no goroutine woken for them either.
//
// Each socket's first ping comes at a random point in the second half of
// its first interval, and each later one an interval after the one
// before: sockets connected together are not pinged together.
type pinger struct {
	interval, timeout time.Duration

	mu    sync.Mutex  // a leaf: see locks.go
	epoch time.Time   // what the schedule's times count from: the first add
	queue pingQueue   // the sockets by their next check
	timer *time.Timer // armed for the first check; nil before the first socket
	armed clock       // when timer fires; 0 while it is stopped
}

// pingState is a socket's place in its Endpoint's keepalive, guarded by
// pinger.mu.
type pingState struct {
	next        clock  // the next check: a ping, or a pong's deadline
	pingAt      clock  // when the last ping went; 0 before the first
	index       int32  // in pinger.queue; -1 once out of it
	pongsAtPing uint32 // the connection's pongs when it went, mod 2^32
	awaiting    bool   // a ping is out, and its pong not yet seen
}

// clock is a time in a pinger's schedule: how long after its epoch.
type clock = time.Duration

// now returns the time in p's schedule. p.mu is held.
func (p *pinger) now() clock { return time.Since(p.epoch) }

// pingSlack is how much later than due a check may run, so that one
// timer wake-up serves every socket due within it (see slack).
const pingSlack = 20 * time.Millisecond

// slack is pingSlack, or less for intervals and timeouts that short.
func (p *pinger) slack() time.Duration {
	return min(pingSlack, p.interval/4, p.timeout/4)
}

// add schedules s's first ping.
func (p *pinger) add(s *Socket) {
	first := p.interval/2 + rand.N(p.interval/2+1)
	p.mu.Lock()
	if p.epoch.IsZero() {
		p.epoch = time.Now()
	}
	s.ping.next = p.now() + first
	heap.Push(&p.queue, s)
	p.arm()
	p.mu.Unlock()
}

// remove takes s out of the schedule, if it is in it.
func (p *pinger) remove(s *Socket) {
	p.mu.Lock()
	if s.ping.index >= 0 {
		heap.Remove(&p.queue, int(s.ping.index))
	}
	p.mu.Unlock()
}

// arm sets the timer for the first check, if it is not already set for
// about then. p.mu is held.
func (p *pinger) arm() {
	if len(p.queue) == 0 {
		if p.timer != nil && p.armed != 0 {
			p.timer.Stop()
			p.armed = 0
		}
		return
	}
	now, at := p.now(), p.queue[0].ping.next
	if p.armed != 0 && at >= p.armed-p.slack() {
		return // the armed timer comes soon enough
	}
	d := max(at-now, p.slack())
	p.armed = now + d
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.round)
	} else {
		p.timer.Reset(d)
	}
}

// round runs the checks that are due: it pings every socket whose ping
// is due, once the pong of its last ping has come, and closes with
// CausePingTimeout every socket whose pong is overdue. A pong is read
// only between messages: while the Func runs, a missing pong says nothing
// about the peer, and the wait goes on.
func (p *pinger) round() {
	var ping, late []*Socket
	p.mu.Lock()
	p.armed = 0
	now := p.now()
	horizon := now + p.slack()
	for len(p.queue) > 0 && p.queue[0].ping.next <= horizon {
		s := p.queue[0]
		st := &s.ping
		if st.awaiting && uint32(s.conn.Pongs()) != st.pongsAtPing {
			st.awaiting = false
		}
		switch {
		case st.awaiting && now < st.pingAt+p.timeout:
			st.next = min(st.pingAt+p.timeout, now+p.interval)
		case st.awaiting && s.inHandler.Load():
			st.next = now + min(p.timeout, p.interval)
		case st.awaiting:
			heap.Pop(&p.queue)
			late = append(late, s)
			continue
		case st.pingAt != 0 && now < st.pingAt+p.interval-p.slack():
			st.next = st.pingAt + p.interval
		default:
			st.awaiting, st.pongsAtPing, st.pingAt = true, uint32(s.conn.Pongs()), max(now, 1)
			st.next = now + min(p.timeout, p.interval)
			ping = append(ping, s)
		}
		if st.next <= horizon {
			st.next = horizon + 1 // in the next round: this one ends
		}
		heap.Fix(&p.queue, 0)
	}
	p.arm()
	p.mu.Unlock()

	if len(ping) > 0 {
		cio := controlIOs.Get().(*wsconn.ControlIO)
		for _, s := range ping {
			s.pingNow(cio)
		}
		controlIOs.Put(cio)
	}
	for _, s := range late {
		s.out.decide(closeFor(CausePingTimeout))
	}
}

// pingNow writes a ping without waiting if it can, and otherwise leaves
// it to a goroutine that waits for the writer, or for room in the socket
// buffer. An error means the connection is closing: the read loop sees
// why, and reports the true cause.
func (s *Socket) pingNow(cio *wsconn.ControlIO) {
	if err := cio.Ping(s.conn); err == wsconn.ErrWouldBlock {
		go s.conn.Ping(nil)
	}
}

// controlIOs are the pinger's scratch for writing pings without waiting.
var controlIOs = sync.Pool{New: func() any { return wsconn.NewControlIO() }}

// pingQueue is a min-heap of sockets by their next keepalive check.
type pingQueue []*Socket

func (q pingQueue) Len() int           { return len(q) }
func (q pingQueue) Less(i, j int) bool { return q[i].ping.next < q[j].ping.next }
func (q pingQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].ping.index, q[j].ping.index = int32(i), int32(j)
}
func (q *pingQueue) Push(x any) {
	s := x.(*Socket)
	s.ping.index = int32(len(*q))
	*q = append(*q, s)
}
func (q *pingQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	s.ping.index = -1
	if cap(*q) > 64 && len(*q) < cap(*q)/4 {
		*q = append(pingQueue(nil), *q...) // give back what a crowd left
	}
	return s
}

// timers are a socket's idle and lifetime timers, made only for those
// configured. A stopped or idle timer costs no goroutine; a callback runs
// briefly when one fires.
type timers struct {
	mu  sync.Mutex // guards the fields below; a leaf
	off bool
	t   [timerCount]*time.Timer // nil for those turned off
}

// A socket's timers, by index in timers.t.
const (
	idleTimer     = iota // WithIdleTimeout
	readIdleTimer        // WithReadIdleTimeout
	lifeTimer            // WithMaxLifetime
	timerCount
)

// startTimers schedules the socket's keepalive and makes its timers.
func (s *Socket) startTimers() {
	cfg := &s.ep.cfg
	s.ping.index = -1
	if cfg.pingInterval > 0 {
		s.ep.pinger.add(s)
	}
	if cfg.idleTimeout <= 0 && cfg.readIdle <= 0 && cfg.maxLifetime <= 0 {
		return
	}
	t := new(timers)
	t.mu.Lock()
	defer t.mu.Unlock()
	s.timers = t
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

// stopTimers takes the socket out of the keepalive and stops its timers.
func (s *Socket) stopTimers() {
	if s.ep.cfg.pingInterval > 0 {
		s.ep.pinger.remove(s)
	}
	t := s.timers
	if t == nil {
		return
	}
	t.mu.Lock()
	t.off = true
	for _, tm := range t.t {
		if tm != nil {
			tm.Stop()
		}
	}
	t.mu.Unlock()
}

// reset arms timer i again for d, unless the timers are stopped.
func (t *timers) reset(i int, d time.Duration) {
	t.mu.Lock()
	if !t.off {
		t.t[i].Reset(d)
	}
	t.mu.Unlock()
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
