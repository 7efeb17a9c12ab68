package laf_test

import (
	"context"
	"testing"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
)

// faultyHistory is a faulty client of a LocalBroker that keeps history.
type faultyHistory struct{ *faulty }

func (f faultyHistory) Append(ctx context.Context, channel string, msg []byte, limits laf.HistoryLimits) (laf.Position, error) {
	if f.down.Load() {
		return laf.Position{}, errDown
	}
	return f.b.Append(ctx, channel, msg, limits)
}

func (f faultyHistory) History(ctx context.Context, channel string, since laf.Position, limits laf.HistoryLimits) (laf.Position, []laf.HistoryEntry, error) {
	if f.down.Load() {
		return laf.Position{}, nil, errDown
	}
	return f.b.History(ctx, channel, since, limits)
}

// TestLocalBrokerHistory runs the history conformance cases on
// LocalBroker: each node gets its own view of one shared broker, which a
// cut stops dead.
func TestLocalBrokerHistory(t *testing.T) {
	shared := laf.NewLocalBroker()
	laftest.TestHistoryBroker(t, func(testing.TB) (laf.Broker, func()) {
		f := faultyHistory{&faulty{b: shared}}
		return f, f.kill
	}, shared.Flush)
}

func TestLocalBrokerHistoryOutage(t *testing.T) {
	shared := laf.NewLocalBroker()
	a, b := faultyHistory{&faulty{b: shared}}, faultyHistory{&faulty{b: shared}}
	laftest.TestHistoryOutage(t, a, b, func() {
		a.down.Store(true)
		b.down.Store(true)
	}, func() {
		a.down.Store(false)
		b.down.Store(false)
	})
}
