package laf_test

import (
	"context"
	"io"
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
