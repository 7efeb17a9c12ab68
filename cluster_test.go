package laf_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errDown = errors.New("broker down")

// faulty is one node's client of a shared LocalBroker that a test can
// take down (publishes fail and nothing is heard, but subscriptions are
// kept, as an adapter resubscribes after an outage) or kill (its
// subscriptions go too, as when its process dies and the broker sees the
// connection close).
type faulty struct {
	b    *laf.LocalBroker
	down atomic.Bool

	// While hung, publishes are held, answer outcome unknown at their
	// deadline, and go out when it resumes, as a stopped broker process
	// does with what it was sent; and nothing is heard.
	hmu     sync.Mutex
	hung    bool
	pending [][2]string

	mu      sync.Mutex
	cancels []context.CancelFunc
}

func (f *faulty) track(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	f.cancels = append(f.cancels, cancel)
	f.mu.Unlock()
	return ctx
}

func (f *faulty) kill() {
	f.down.Store(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cancel := range f.cancels {
		cancel()
	}
}

func (f *faulty) PublishTo(ctx context.Context, channel string, msg []byte) (int, error) {
	if f.down.Load() {
		return 0, errDown
	}
	f.hmu.Lock()
	if f.hung {
		f.pending = append(f.pending, [2]string{channel, string(msg)})
		f.hmu.Unlock()
		<-ctx.Done()
		return 0, fmt.Errorf("%w: %w", laf.ErrOutcomeUnknown, ctx.Err())
	}
	f.hmu.Unlock()
	return f.b.PublishTo(ctx, channel, msg)
}

func (f *faulty) hang() {
	f.hmu.Lock()
	defer f.hmu.Unlock()
	f.hung = true
}

// resume ends the hang of every f at once, then sends what they held.
func resume(fs ...*faulty) {
	var held [][][2]string
	for _, f := range fs {
		f.hmu.Lock()
		held = append(held, f.pending)
		f.hung, f.pending = false, nil
		f.hmu.Unlock()
	}
	for i, f := range fs {
		for _, m := range held[i] {
			f.b.PublishTo(context.Background(), m[0], []byte(m[1]))
		}
	}
}

func (f *faulty) hear(fn func([]byte)) func([]byte) {
	return func(msg []byte) {
		f.hmu.Lock()
		hung := f.hung
		f.hmu.Unlock()
		if !f.down.Load() && !hung {
			fn(msg)
		}
	}
}

func (f *faulty) Open(ctx context.Context, fn func([]byte)) (laf.Channels, error) {
	chans, err := f.b.Open(f.track(ctx), f.hear(fn))
	if err != nil {
		return nil, err
	}
	return &faultyChannels{f: f, Channels: chans}, nil
}

type faultyChannels struct {
	f *faulty
	laf.Channels
}

func (c *faultyChannels) Subscribe(ctx context.Context, channel string) error {
	if c.f.down.Load() {
		return errDown
	}
	return c.Channels.Subscribe(ctx, channel)
}

func TestLocalBroker(t *testing.T) {
	shared := laf.NewLocalBroker()
	laftest.TestBroker(t, func(testing.TB) (laf.Broker, func()) {
		f := &faulty{b: shared}
		return f, f.kill
	})
}

func TestLocalBrokerOutage(t *testing.T) {
	shared := laf.NewLocalBroker()
	a, b := &faulty{b: shared}, &faulty{b: shared}
	laftest.TestBrokerOutage(t, a, b, func() {
		a.down.Store(true)
		b.down.Store(true)
	}, func() {
		a.down.Store(false)
		b.down.Store(false)
	})
}

// TestSocketIDNamesItsNode checks that with a broker a socket's id starts
// with its node's id, and that an id naming no node is refused at once.
func TestSocketIDNamesItsNode(t *testing.T) {
	shared := laf.NewLocalBroker()
	greet := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID())
		}
		return nil
	}
	a := laftest.NewServer(t, greet, laf.WithBroker(shared))
	b := laftest.NewServer(t, greet, laf.WithBroker(shared))
	ida, idb := a.Dial(t).ReadText(), b.Dial(t).ReadText()
	nodeA, _, ok := cutDot(ida)
	require.True(t, ok, "id %q names no node", ida)
	nodeB, _, _ := cutDot(idb) // b answers for its own node at once
	assert.NotEqual(t, nodeA, nodeB)
	assert.GreaterOrEqual(t, len(ida), len(nodeA)+1+22, "128 random bits after the node")

	for _, id := range []string{"no-dot", "nonode.xyz", nodeB + ".gone"} {
		assert.ErrorIs(t, b.Endpoint.SendSocket(context.Background(), id, laf.Text("x")), laf.ErrNotFound, id)
	}
	// Without a broker ids are as before: no node.
	solo := laftest.NewServer(t, greet)
	_, _, ok = cutDot(solo.Dial(t).ReadText())
	assert.False(t, ok)
}

func cutDot(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// TestBroadcastSaysWhatWasDelivered checks that a Broadcast the broker
// refuses says how many local sockets got it, so a caller need not retry
// them.
func TestBroadcastSaysWhatWasDelivered(t *testing.T) {
	f := &faulty{b: laf.NewLocalBroker()}
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil }, laf.WithBroker(f))
	c1, c2 := srv.Dial(t), srv.Dial(t)
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == 2 }, laftest.DefaultTimeout, time.Millisecond)
	f.down.Store(true)
	err := srv.Endpoint.Broadcast(context.Background(), laf.Text("hi"))
	var be *laf.BrokerError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 2, be.Local)
	assert.ErrorIs(t, err, errDown)
	c1.ExpectText("hi")
	c2.ExpectText("hi")
	assert.Equal(t, uint64(1), srv.Endpoint.Stats().PublishErrors)
	assert.Equal(t, "down", srv.Endpoint.Stats().Broker)
	assert.ErrorIs(t, srv.Endpoint.Ready(), laf.ErrNotReady)
}

// TestReady checks Ready and the broker's state in Stats through an
// outage.
func TestReady(t *testing.T) {
	solo := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil })
	require.NoError(t, solo.Endpoint.Ready())
	assert.Equal(t, "", solo.Endpoint.Stats().Broker)
	assert.Equal(t, 0, solo.Endpoint.Stats().Nodes)

	shared := laf.NewLocalBroker()
	f := &faulty{b: shared}
	hb := 50 * time.Millisecond
	a := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil }, laf.WithBroker(f), laf.WithHeartbeat(hb))
	laftest.NewServer(t, func(*laf.FunctionContext) error { return nil }, laf.WithBroker(shared), laf.WithHeartbeat(hb))
	require.Eventually(t, func() bool { return a.Endpoint.Ready() == nil && a.Endpoint.Stats().Nodes == 2 },
		laftest.DefaultTimeout, time.Millisecond)
	assert.Equal(t, "up", a.Endpoint.Stats().Broker)
	f.down.Store(true)
	require.Eventually(t, func() bool { return errors.Is(a.Endpoint.Ready(), laf.ErrNotReady) }, laftest.DefaultTimeout, time.Millisecond)
	assert.ErrorIs(t, a.Endpoint.Ready(), errDown)
	assert.Equal(t, "down", a.Endpoint.Stats().Broker)
	// Ten heartbeats cut off: the other node is kept all the same.
	time.Sleep(10 * hb)
	assert.Equal(t, 2, a.Endpoint.Stats().Nodes)
	f.down.Store(false)
	require.Eventually(t, func() bool { return a.Endpoint.Ready() == nil }, laftest.DefaultTimeout, time.Millisecond)
	assert.Equal(t, 2, a.Endpoint.Presence().Nodes())
}
