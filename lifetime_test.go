package laf_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
)

// TestMaxLifetimeSpreadsCloses opens sockets together under one
// WithMaxLifetime and checks that they do not all close together: each
// one's lifetime is drawn between 0.9×d and d, so their ages at close
// spread over about a tenth of d, where without the jitter they would
// differ by the scheduling noise alone.
func TestMaxLifetimeSpreadsCloses(t *testing.T) {
	const n, life = 20, 2 * time.Second
	var mu sync.Mutex
	opened := map[string]time.Time{}
	ages := make(chan time.Duration, n)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		mu.Lock()
		defer mu.Unlock()
		switch ctx.Method {
		case laf.MethodConnection:
			opened[ctx.Socket.ID()] = time.Now()
		case laf.MethodClose:
			ages <- time.Since(opened[ctx.Socket.ID()])
		}
		return nil
	}, laf.WithMaxLifetime(life))
	clients := make([]*laftest.Conn, n)
	for i := range clients {
		clients[i] = srv.Dial(t)
	}
	// Every client reads at once, so that each answers its close frame
	// when it comes and its close event is not held back by another's.
	reasons := make(chan string, n)
	for _, c := range clients {
		go func() {
			_, _, err := c.WS.Read(context.Background())
			var ce websocket.CloseError
			errors.As(err, &ce)
			reasons <- fmt.Sprint(ce.Code, " ", ce.Reason)
		}()
	}
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for range n {
		assert.Equal(t, "StatusGoingAway lifetime", <-reasons)
		age := <-ages
		lo, hi = min(lo, age), max(hi, age)
	}
	// 20 draws over 0.2 s all fall within 60 ms of each other with a
	// probability of about 20×0.3^19, 2e-9.
	assert.GreaterOrEqual(t, hi-lo, 60*time.Millisecond, "ages at close from %v to %v", lo, hi)
}
