package laf

import (
	"context"
	"time"
)

// Drain shuts the Endpoint down for a deploy: it is Shutdown with the
// closes spread over window, so that the clients of a node that restarts
// reconnect to the others a few at a time, rather than all in the same
// instant, and a balancer in front spreads them over every node.
//
// At once, new upgrades get 503 Service Unavailable with Retry-After
// (through a balancer that retries a refused upgrade on another node,
// such as nginx with proxy_next_upstream http_503, the client never
// sees it), and Ready returns an error that matches ErrNotReady, so that
// a readiness probe takes the node out of rotation. The Endpoint's
// sockets are then sent 1012 "service restart" (cause CauseShutdown),
// after what each had queued, at even intervals over window: the first
// at once, the last at (n-1)/n of it. Meanwhile the node serves its
// remaining sockets as before: sends reach them from this node and, with
// a broker, from every other. A window of zero or less closes them all
// at once, as Shutdown does but with 1012.
//
// Drain returns nil once every close event has returned, which is
// within window and WithCloseTimeout of the start if peers answer or
// not; then, with a broker, it leaves the cluster, as Shutdown does. If
// ctx is done first, it drops the connections still open, closing those
// not yet sent their 1012 without it (1006 for the peer), and returns
// ctx's error. Give ctx at least window plus the close timeout.
//
// As with Shutdown, start Drain before http.Server.Shutdown, and wait
// for it before the process exits. Unlike Shutdown it need not start
// from RegisterOnShutdown: run it while the server still serves, so that
// a probe of Ready sees the node drain and pushes keep reaching its
// sockets, then shut the server down. Shutdown during a Drain closes
// the sockets not yet closed at once, with 1001; Drain or Shutdown after
// either waits again.
func (e *Endpoint) Drain(ctx context.Context, window time.Duration) error {
	live := e.reg.shutdown()
	done := e.allClosed()
	defer e.leaveCluster()
	restart := closeFor(CauseShutdown).with(codeServiceRestart, "service restart")
	if !spreadCloses(ctx, done, live, window, restart) {
		return e.dropOpen(live, ctx.Err())
	}
	return e.awaitClosed(ctx, done, live)
}

// codeServiceRestart is the close code Drain sends: 1012, "service
// restart" in IANA's registry of WebSocket close codes.
const codeServiceRestart = 1012

// drainStep is the shortest wait between two batches of a drain's
// closes: a drain of many sockets over a short window closes them a
// batch at a time rather than on a timer each.
const drainStep = 5 * time.Millisecond

// spreadCloses decides close c for socket i of live at i/n of window from
// now. It reports false if ctx ended first, and returns early, true, once
// done is closed: every socket has gone by then.
func spreadCloses(ctx context.Context, done <-chan struct{}, live []*Socket, window time.Duration, c closeSpec) bool {
	n := len(live)
	start := time.Now()
	var timer *time.Timer
	for i := 0; i < n; {
		due := n
		if window > 0 {
			// Socket i is due from i/n of the window on.
			due = min(n, int(float64(n)*float64(time.Since(start))/float64(window))+1)
		}
		for ; i < due; i++ {
			live[i].out.decide(c)
		}
		if i == n {
			break
		}
		wait := max(drainStep, time.Until(start.Add(time.Duration(float64(window)*float64(i)/float64(n)))))
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// allClosed returns a channel closed once every socket has closed and
// every upgrade under way has finished: once Shutdown or Drain has
// begun, that is for good.
func (e *Endpoint) allClosed() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		e.conns.Wait()
		close(done)
	}()
	return done
}

// awaitClosed waits for done, or for ctx to end; then it drops the
// connections of live still open and returns ctx's error.
func (e *Endpoint) awaitClosed(ctx context.Context, done <-chan struct{}, live []*Socket) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	return e.dropOpen(live, ctx.Err())
}

// dropOpen makes every event's context done and closes the connections
// of live at once, which fails a handshake or write under way; it
// returns err.
func (e *Endpoint) dropOpen(live []*Socket, err error) error {
	e.abort()
	for _, s := range live {
		s.closeConn()
	}
	return err
}

// shutdownRetryAfter is the Retry-After, in seconds, of an upgrade
// refused because the Endpoint is shutting down or draining: through a
// balancer, a retry reaches another node.
const shutdownRetryAfter = "1"

// errShuttingDown is what Ready returns once Shutdown or Drain has
// begun.
var errShuttingDown error = shuttingDown{}

type shuttingDown struct{}

func (shuttingDown) Error() string        { return "laf: not ready: shutting down" }
func (shuttingDown) Is(target error) bool { return target == ErrNotReady }
