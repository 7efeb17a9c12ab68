package redisbroker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/lafgo/laf/laftest"
)

// BenchmarkHistory: Publish with the room's history in Redis Streams
// against positions kept by each node, and a read that recovers 10
// messages, with Redis's own counts per operation.
//
//	go test -run - -bench BenchmarkHistory ./redisbroker
func BenchmarkHistory(b *testing.B) {
	srv := startRedis(b)
	admin := newClient(b, srv)
	laftest.BenchmarkHistory(b, factory(srv), func() laftest.BrokerCounters {
		info, err := admin.Info(context.Background(), "stats").Result()
		if err != nil {
			b.Fatal(err)
		}
		field := func(name string) uint64 {
			for _, line := range strings.Split(info, "\r\n") {
				if v, ok := strings.CutPrefix(line, name+":"); ok {
					n, _ := strconv.ParseUint(v, 10, 64)
					return n
				}
			}
			return 0
		}
		return laftest.BrokerCounters{
			Commands: field("total_commands_processed"),
			BytesIn:  field("total_net_input_bytes"),
			BytesOut: field("total_net_output_bytes"),
		}
	})
}
