package laf_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cuttable wraps a client of a LocalBroker so a test can cut it off.
type cuttable struct {
	b   *laf.LocalBroker
	cut atomic.Bool
}

func (c *cuttable) Publish(ctx context.Context, msg []byte) error {
	if c.cut.Load() {
		return errors.New("cut off")
	}
	return c.b.Publish(ctx, msg)
}

func (c *cuttable) Subscribe(ctx context.Context, fn func([]byte)) error {
	return c.b.Subscribe(ctx, func(msg []byte) {
		if !c.cut.Load() {
			fn(msg)
		}
	})
}

func TestLocalBroker(t *testing.T) {
	shared := laf.NewLocalBroker()
	laftest.TestBroker(t, func(testing.TB) (laf.Broker, func()) {
		c := &cuttable{b: shared}
		return c, func() { c.cut.Store(true) }
	})
}

func TestResyncAfterBrokerComesBack(t *testing.T) {
	shared := laf.NewLocalBroker()
	ca, cb := &cuttable{b: shared}, &cuttable{b: shared}
	echo := func(*laf.FunctionContext) error { return nil }
	// A heartbeat of an hour: only the resync can repair presence here.
	a := laftest.NewServer(t, echo, laf.WithBroker(ca), laf.WithHeartbeat(time.Hour))
	b := laftest.NewServer(t, echo, laf.WithBroker(cb), laf.WithHeartbeat(time.Hour))
	a1 := a.Dial(t)
	b.Dial(t)
	require.Eventually(t, func() bool { return b.Endpoint.Presence().Count() == 2 }, laftest.DefaultTimeout, time.Millisecond)
	var a1ID string
	a.Endpoint.Range(func(s *laf.Socket) bool { a1ID = s.ID(); return false })

	cb.cut.Store(true)
	assert.Error(t, b.Endpoint.Broadcast(context.Background(), laf.Text("lost")))
	assert.Equal(t, uint64(1), b.Endpoint.Stats().PublishErrors)
	a1.Close(1000, "")
	require.Eventually(t, func() bool { return a.Endpoint.Len() == 0 }, laftest.DefaultTimeout, time.Millisecond)
	assert.True(t, b.Endpoint.Presence().Online(a1ID), "b was cut off, so it cannot know yet")

	cb.cut.Store(false)
	require.NoError(t, b.Endpoint.Broadcast(context.Background(), laf.Text("back")))
	require.Eventually(t, func() bool { return !b.Endpoint.Presence().Online(a1ID) }, laftest.DefaultTimeout, time.Millisecond,
		"presence not resynced after the broker came back")
	assert.Equal(t, 1, b.Endpoint.Presence().Count())
}
