package natsbroker_test

import (
	"context"
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/natsbroker"
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
	laftest.TestHistoryBroker(t, factory(srv), func() {
		s, err := js.Stream(context.Background(), "LAF_HISTORY_"+b.Subject())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
