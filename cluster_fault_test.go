package laf_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLocalBrokerHang runs the hung-broker checks on LocalBroker clients
// that hold what they are sent while hung and deliver it on resume.
func TestLocalBrokerHang(t *testing.T) {
	shared := laf.NewLocalBroker()
	a, b := &faulty{b: shared}, &faulty{b: shared}
	laftest.TestBrokerHang(t, a, b, func() { a.hang(); b.hang() }, func() { resume(a, b) })
}

// TestThreeOutcomes checks the answers of sends on a hung broker and the
// readiness through a refusing then a hung broker: the error Ready
// reports is the current fault's, never the one before.
func TestThreeOutcomes(t *testing.T) {
	shared := laf.NewLocalBroker()
	f := &faulty{b: shared}
	const hb, timeout = 200 * time.Millisecond, 100 * time.Millisecond
	greet := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID())
		}
		return nil
	}
	a := laftest.NewServer(t, greet, laf.WithBroker(f), laf.WithHeartbeat(hb), laf.WithBrokerTimeout(timeout))
	b := laftest.NewServer(t, greet, laf.WithBroker(shared), laf.WithHeartbeat(hb))
	a.Dial(t).ReadText()
	remote := b.Dial(t).ReadText()
	ready := func() bool { return a.Endpoint.Ready() == nil && a.Endpoint.Presence().Nodes() == 2 }
	require.Eventually(t, ready, laftest.DefaultTimeout, time.Millisecond)
	require.NoError(t, a.Endpoint.SendSocket(context.Background(), remote, laf.Text("delivered")))

	// Refused: nothing left.
	f.down.Store(true)
	err := a.Endpoint.SendSocket(context.Background(), remote, laf.Text("refused"))
	var be *laf.BrokerError
	require.ErrorAs(t, err, &be)
	assert.NotErrorIs(t, err, laf.ErrOutcomeUnknown)
	require.ErrorIs(t, a.Endpoint.Ready(), errDown)
	f.down.Store(false)
	require.Eventually(t, ready, laftest.DefaultTimeout, time.Millisecond)

	// Hung: the send waits for the broker timeout, then says it may have
	// left; readiness follows within a heartbeat, with the hang's error.
	f.hang()
	start := time.Now()
	err = a.Endpoint.Broadcast(context.Background(), laf.Text("unknown"))
	took := time.Since(start)
	var ue *laf.OutcomeUnknownError
	require.ErrorAs(t, err, &ue)
	assert.ErrorIs(t, err, laf.ErrOutcomeUnknown)
	assert.NotErrorAs(t, err, &be, "an unknown outcome is no BrokerError: a retry is not safe")
	assert.Equal(t, 1, ue.Local)
	assert.GreaterOrEqual(t, took, timeout)
	assert.Less(t, took, timeout+time.Second)
	st := a.Endpoint.Stats()
	assert.Equal(t, uint64(1), st.PublishUnknown)
	assert.Equal(t, uint64(2), st.PublishErrors)
	require.Eventually(t, func() bool { return a.Endpoint.Ready() != nil }, hb+time.Second, time.Millisecond)
	rerr := a.Endpoint.Ready()
	assert.ErrorIs(t, rerr, laf.ErrNotReady)
	assert.NotErrorIs(t, rerr, errDown, "Ready reports the earlier fault: %v", rerr)
	assert.Equal(t, "down", a.Endpoint.Stats().Broker)
	resume(f)
	require.Eventually(t, ready, hb+time.Second, time.Millisecond)
}

// TestDroppedNoSocket checks that a push that reaches its node after the
// socket closed is counted there.
func TestDroppedNoSocket(t *testing.T) {
	shared := laf.NewLocalBroker()
	greet := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID())
		}
		return nil
	}
	a := laftest.NewServer(t, greet, laf.WithBroker(shared), laf.WithHeartbeat(time.Second))
	b := laftest.NewServer(t, greet, laf.WithBroker(shared), laf.WithHeartbeat(time.Second))
	c := b.Dial(t)
	id := c.ReadText()
	require.Eventually(t, func() bool { return a.Endpoint.Presence().Nodes() == 2 }, laftest.DefaultTimeout, time.Millisecond)
	c.Close(1000, "")
	require.Eventually(t, func() bool { return b.Endpoint.Len() == 0 }, laftest.DefaultTimeout, time.Millisecond)
	require.NoError(t, a.Endpoint.SendSocket(context.Background(), id, laf.Text("late")))
	assert.Equal(t, uint64(1), b.Endpoint.Stats().DroppedNoSocket) // LocalBroker delivers synchronously
	assert.Equal(t, uint64(0), a.Endpoint.Stats().DroppedNoSocket)
}

// TestNodeName checks that one name is used in Stats, in the node's logs
// and in the other nodes' logs of it.
func TestNodeName(t *testing.T) {
	shared := laf.NewLocalBroker()
	var buf lockedBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	nop := func(*laf.FunctionContext) error { return nil }
	a := laftest.NewServer(t, nop, laf.WithBroker(shared), laf.WithNodeName("alpha"), laf.WithLogger(logger))
	b := laftest.NewServer(t, nop, laf.WithBroker(shared), laf.WithNodeName("beta"), laf.WithLogger(logger))
	assert.Equal(t, "alpha", a.Endpoint.Stats().Node)
	assert.Equal(t, "beta", b.Endpoint.Stats().Node)
	require.Eventually(t, func() bool {
		logs := buf.String()
		return strings.Contains(logs, `msg="laf: node joined" node=alpha peer=beta`) &&
			strings.Contains(logs, `msg="laf: node joined" node=beta peer=alpha`)
	}, laftest.DefaultTimeout, time.Millisecond, "logs: %s", &buf)
	solo := laftest.NewServer(t, nop)
	assert.Equal(t, "", solo.Endpoint.Stats().Node)
	em := laf.NewEmitter(shared, laf.WithNodeName("cron"))
	defer em.Close()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
