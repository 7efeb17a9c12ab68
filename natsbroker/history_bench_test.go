package natsbroker_test

import (
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/natsbroker"
)

// BenchmarkHistory: Publish with the room's history in JetStream against
// positions kept by each node, and a read that recovers 10 messages, with
// the server's own counts per operation.
//
//	go test -run - -bench BenchmarkHistory ./natsbroker
func BenchmarkHistory(b *testing.B) {
	srv := startNATS(b)
	laftest.BenchmarkHistory(b, factory(srv, natsbroker.WithHistoryLimits(100, laftest.HistoryLimits.TTL)), func() laftest.BrokerCounters {
		v, err := srv.server().Varz(nil)
		if err != nil {
			b.Fatal(err)
		}
		return laftest.BrokerCounters{Commands: uint64(v.InMsgs), BytesIn: uint64(v.InBytes), BytesOut: uint64(v.OutBytes)}
	})
}
