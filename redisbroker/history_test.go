package redisbroker_test

import (
	"context"
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/redisbroker"
)

// TestHistory runs the history conformance cases on a real Redis; losing
// the history is FLUSHALL.
func TestHistory(t *testing.T) {
	srv := startRedis(t)
	admin := newClient(t, srv)
	laftest.TestHistoryBroker(t, factory(srv), func() {
		if err := admin.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHistorySharded(t *testing.T) {
	srv := startRedis(t)
	admin := newClient(t, srv)
	laftest.TestHistoryBroker(t, factory(srv, redisbroker.WithSharded(), redisbroker.WithChannel("laf-sharded")), func() {
		if err := admin.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	})
}
