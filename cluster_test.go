package laf_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
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
