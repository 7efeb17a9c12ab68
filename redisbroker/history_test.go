package redisbroker_test

import (
	"context"
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/redisbroker"
	"github.com/redis/go-redis/v9"
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

// TestHistoryRestart kills Redis (which keeps nothing on disk here) under
// two nodes and starts it again: Publish fails meanwhile, and afterwards
// the history begins a new epoch, which a reconnecting client is told.
func TestHistoryRestart(t *testing.T) {
	srv := startRedis(t)
	clients := []redis.UniversalClient{newClient(t, srv), newClient(t, srv)}
	laftest.TestHistoryOutage(t, redisbroker.New(clients[0]), redisbroker.New(clients[1]), func() {
		srv.kill()
		for _, c := range clients {
			eventually(t, "client sees Redis down", func() bool {
				return c.Ping(context.Background()).Err() != nil
			})
		}
	}, srv.start)
}
