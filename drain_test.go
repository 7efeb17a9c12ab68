package laf_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// greetID sends each socket its id, so that the test can push to it.
func greetID(ctx *laf.FunctionContext) error {
	if ctx.Method == laf.MethodConnection {
		return ctx.Socket.Send(ctx.Socket.ID())
	}
	return nil
}

// drained is what one client saw of a drain.
type drained struct {
	id     string
	got    []string // messages between the drain's start and the close
	code   websocket.StatusCode
	reason string
	at     time.Duration // when the close came, from the drain's start
}

// TestDrainSpreadsCloses checks Drain over real sockets: new upgrades get
// 503 with Retry-After and Ready fails at once; every socket gets 1012
// "service restart" after what was sent to it, and socket i of n not
// before i/n of the window, so the closes are spread; the close events
// say CauseShutdown and 1012; sends keep reaching the sockets not yet
// closed; Drain returns nil once all have closed.
func TestDrainSpreadsCloses(t *testing.T) {
	const n, window = 20, 800 * time.Millisecond
	rec := laftest.NewRecorder(greetID)
	srv := laftest.NewServer(t, rec.Func)
	clients := make([]*laftest.Conn, n)
	ids := make([]string, n)
	for i := range clients {
		clients[i] = srv.Dial(t)
		ids[i] = clients[i].ReadText()
		rec.Expect(t, laf.MethodConnection)
	}
	require.NoError(t, srv.Endpoint.Ready())

	results := make([]drained, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range clients {
		wg.Go(func() {
			r := &results[i]
			r.id = ids[i]
			for {
				_, data, err := c.WS.Read(context.Background())
				if err != nil {
					r.at = time.Since(start)
					var ce websocket.CloseError
					if errors.As(err, &ce) {
						r.code, r.reason = ce.Code, ce.Reason
					}
					return
				}
				r.got = append(r.got, string(data))
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	drainErr := make(chan error, 1)
	go func() { drainErr <- srv.Endpoint.Drain(ctx, window) }()

	require.Eventually(t, func() bool { return errors.Is(srv.Endpoint.Ready(), laf.ErrNotReady) },
		laftest.DefaultTimeout, time.Millisecond, "Ready during a drain")
	_, resp, err := srv.TryDial(nil)
	require.Error(t, err, "an upgrade during a drain")
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	// Push to every socket: those still open take it, and get it before
	// their 1012.
	accepted := map[string]bool{}
	for _, id := range ids {
		if err := srv.Endpoint.SendSocket(context.Background(), id, laf.Text("still here")); err == nil {
			accepted[id] = true
		} else {
			assert.True(t, errors.Is(err, laf.ErrClosed) || errors.Is(err, laf.ErrNotFound), "push during a drain: %v", err)
		}
	}
	require.NoError(t, <-drainErr)
	wg.Wait()
	assert.NotEmpty(t, accepted, "no socket was still open a moment into an %v drain", window)

	early := 0
	var last time.Duration
	for _, r := range results {
		assert.Equal(t, websocket.StatusCode(1012), r.code, "close code of %s", r.id)
		assert.Equal(t, "service restart", r.reason)
		if accepted[r.id] {
			assert.Equal(t, []string{"still here"}, r.got, "a push the drain accepted for %s", r.id)
		}
		if r.at < window/2 {
			early++
		}
		last = max(last, r.at)
	}
	// Socket i is closed no earlier than i/n of the window after the
	// start, so at most n/2 closes come in its first half, and the last
	// no earlier than (n-1)/n of it.
	assert.LessOrEqual(t, early, n/2, "closes in the window's first half")
	assert.GreaterOrEqual(t, last, window*(n-1)/n, "the last close")

	for range n {
		ev := rec.Expect(t, laf.MethodClose)
		assert.Equal(t, laf.CauseShutdown, ev.Params.Cause)
		assert.Equal(t, 1012, ev.Params.Code)
		assert.Equal(t, "service restart", ev.Params.Reason)
	}
	assert.Equal(t, uint64(n), srv.Endpoint.Stats().Closes[laf.CauseShutdown])
	assert.Equal(t, 0, srv.Endpoint.Len())
	assert.ErrorIs(t, srv.Endpoint.Ready(), laf.ErrNotReady)
}

// TestDrainDeadline checks that a drain whose context ends first drops
// what is still open, fires every close event once, and returns the
// context's error.
func TestDrainDeadline(t *testing.T) {
	const n = 10
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	for range n {
		srv.Dial(t) // never reads, so never answers a close
		rec.Expect(t, laf.MethodConnection)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Endpoint.Drain(ctx, time.Hour), context.DeadlineExceeded)
	seen := map[string]bool{}
	for len(seen) < n {
		ev := rec.Next(t)
		if ev.Method == laf.MethodError {
			continue // a read cut short by the drop
		}
		require.Equal(t, laf.MethodClose, ev.Method)
		assert.False(t, seen[ev.SocketID], "two close events for one socket")
		seen[ev.SocketID] = true
	}
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == 0 }, laftest.DefaultTimeout, time.Millisecond)
}

// TestShutdownDuringDrain checks that Shutdown cuts a drain short: the
// sockets the drain has not reached get 1001 at once.
func TestShutdownDuringDrain(t *testing.T) {
	const n = 10
	srv := laftest.NewServer(t, greetID)
	clients := make([]*laftest.Conn, n)
	for i := range clients {
		clients[i] = srv.Dial(t)
		clients[i].ReadText()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	drainErr := make(chan error, 1)
	go func() { drainErr <- srv.Endpoint.Drain(ctx, time.Hour) }()
	require.Eventually(t, func() bool { return srv.Endpoint.Ready() != nil }, laftest.DefaultTimeout, time.Millisecond)
	require.NoError(t, srv.Endpoint.Shutdown(ctx))
	require.NoError(t, <-drainErr)
	codes := map[websocket.StatusCode]int{}
	for _, c := range clients {
		code, _ := c.WaitClose()
		codes[code]++
	}
	// The drain's first close goes at once; an hour's window reaches no
	// other before Shutdown.
	assert.Equal(t, map[websocket.StatusCode]int{1012: 1, websocket.StatusGoingAway: n - 1}, codes)
}

// TestDrainWithoutSockets returns at once, and leaves the Endpoint shut.
func TestDrainWithoutSockets(t *testing.T) {
	srv := laftest.NewServer(t, greetID)
	require.NoError(t, srv.Endpoint.Drain(context.Background(), time.Hour))
	assert.ErrorIs(t, srv.Endpoint.Ready(), laf.ErrNotReady)
	_, resp, err := srv.TryDial(nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}
