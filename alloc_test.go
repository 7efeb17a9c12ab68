//go:build !race

// Allocation counts are measured without the race detector, which makes
// sync.Pool drop what it is given at random; .ci/run runs them so.

package laf_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A broadcast's allocations must not grow with the number of sockets:
// the payload is shared, and each socket's queue reuses its array. The
// clients read raw frames into a fixed buffer, so that only the server's
// allocations are counted.
func TestBroadcastAllocationsDoNotGrowWithSockets(t *testing.T) {
	allocs := func(n int) float64 {
		srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil }, laf.WithPing(0, 0))
		got := make(chan struct{}, n)
		for range n {
			_, br := rawUpgrade(t, srv.URL)
			go func() {
				frame := make([]byte, 2+len("hello")) // unmasked, short: 2-byte header
				for {
					if _, err := io.ReadFull(br, frame); err != nil {
						return
					}
					got <- struct{}{}
				}
			}()
		}
		require.Eventually(t, func() bool { return srv.Endpoint.Len() == n }, laftest.DefaultTimeout, time.Millisecond)
		m := laf.Text("hello")
		broadcast := func() {
			require.NoError(t, srv.Endpoint.Broadcast(context.Background(), m))
			for range n {
				<-got
			}
		}
		for range 3 {
			broadcast() // warm up queues and the runtime's goroutine cache
		}
		return testing.AllocsPerRun(20, broadcast)
	}
	small, large := allocs(10), allocs(200)
	perSocket := (large - small) / 190
	assert.Less(t, perSocket, 0.5, "%.1f allocations per broadcast at 10 sockets, %.1f at 200", small, large)
}

// An echo that hands its Data back with laf.Owned allocates only the
// event, with a small payload inside it: one allocation per message,
// where coder/websocket's own Conn.Read makes at least one.
func TestEchoAllocatesOncePerSmallMessage(t *testing.T) {
	assert.LessOrEqual(t, echoAllocs(t), 1.0)
}

// With WithLentData the event and its Data are reused: an echo of Data
// allocates nothing.
func TestLentEchoAllocatesNothing(t *testing.T) {
	assert.Zero(t, echoAllocs(t, laf.WithLentData()))
}

// echoAllocs returns the server's allocations per echo of a 64-byte text
// message, sent back with laf.Owned.
func echoAllocs(t *testing.T, opts ...laf.Option) float64 {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	}, append([]laf.Option{laf.WithPing(0, 0)}, opts...)...)
	conn, br := rawUpgrade(t, srv.URL)
	payload := []byte(strings.Repeat("p", 64))
	// A masked text frame with a zero mask key, so the payload goes as is.
	frame := append([]byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
	reply := make([]byte, 2+len(payload))
	echo := func() {
		_, err := conn.Write(frame)
		require.NoError(t, err)
		_, err = io.ReadFull(br, reply)
		require.NoError(t, err)
	}
	for range 10 {
		echo()
	}
	require.Equal(t, payload, reply[2:])
	return testing.AllocsPerRun(200, echo)
}
