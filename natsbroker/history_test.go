package natsbroker_test

import (
	"context"
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/natsbroker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestHistory runs the history conformance cases on JetStream (the
// embedded server, with JetStream enabled); losing the history is
// purging the stream.
func TestHistory(t *testing.T) {
	srv := startNATS(t)
	js, err := jetstream.New(connect(t, srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	b := natsbroker.New(connect(t, srv.URL()))
	// The stream keeps what WithHistory asks of laf.
	limits := natsbroker.WithHistoryLimits(laftest.HistoryLimits.Size, laftest.HistoryLimits.TTL)
	laftest.TestHistoryBroker(t, factory(srv, limits), func() {
		s, err := js.Stream(context.Background(), "LAF_HISTORY_"+b.Subject())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHistoryRestart shuts NATS down under two nodes and starts it again
// on the same store: Publish fails meanwhile, and afterwards the history
// is still there.
func TestHistoryRestart(t *testing.T) {
	srv := startNATS(t)
	conns := []*nats.Conn{connect(t, srv.URL()), connect(t, srv.URL())}
	limits := natsbroker.WithHistoryLimits(laftest.HistoryLimits.Size, laftest.HistoryLimits.TTL)
	laftest.TestHistoryOutage(t, natsbroker.New(conns[0], limits), natsbroker.New(conns[1], limits), func() {
		srv.stop()
		for _, nc := range conns {
			eventually(t, "client sees NATS down", func() bool { return !nc.IsConnected() })
		}
	}, srv.start)
}
