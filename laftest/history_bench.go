package laftest

import (
	"context"
	"fmt"
	"testing"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
)

// BrokerCounters are a broker server's cumulative counts, as its own
// statistics give them: Commands it ran or messages it took in (Redis:
// total_commands_processed; NATS: in_msgs), and bytes in and out over
// every connection.
type BrokerCounters struct {
	Commands, BytesIn, BytesOut uint64
}

// BenchmarkHistory measures what history costs through a broker: Publish
// from one node to a room whose member is on another, with the room's
// history in the broker ("history"; newBroker's brokers must be
// laf.HistoryBrokers) and with positions and history kept by the
// publishing node, the broker only carrying the message ("local"); and
// one read of the broker's history that recovers 10 of 100 kept messages
// ("Recover10"). counters, if not nil, gives the broker server's counts:
// each benchmark then reports them per operation. Adapters call it from
// their own benchmarks.
func BenchmarkHistory(b *testing.B, newBroker BrokerFactory, counters func() BrokerCounters) {
	report := func(b *testing.B, before BrokerCounters) {
		if counters == nil {
			return
		}
		after := counters()
		n := float64(b.N)
		b.ReportMetric(float64(after.Commands-before.Commands)/n, "broker-cmds/op")
		b.ReportMetric(float64(after.BytesIn-before.BytesIn)/n, "broker-B-in/op")
		b.ReportMetric(float64(after.BytesOut-before.BytesOut)/n, "broker-B-out/op")
	}
	msg := laf.Text(fmt.Sprintf("%064d", 0)) // 64 bytes
	publish := func(b *testing.B, hide bool) {
		wrap := func(br laf.Broker) laf.Broker {
			if hide {
				return pubsubOnly{br}
			}
			return br
		}
		room := uniqueRoom("bench")
		fn := func(ctx *laf.FunctionContext) error {
			if ctx.Method == laf.MethodConnection {
				ctx.Socket.Join(room)
				return ctx.Socket.Send("joined")
			}
			return nil
		}
		ba, _ := newBroker(b)
		bb, _ := newBroker(b)
		opts := func(br laf.Broker) []laf.Option {
			return []laf.Option{laf.WithBroker(wrap(br)), laf.WithHeartbeat(BrokerHeartbeat), laf.WithHistory(100, HistoryLimits.TTL)}
		}
		from := NewServer(b, fn, opts(ba)...)
		to := NewServer(b, fn, opts(bb)...)
		conn := to.Dial(b)
		conn.ExpectText("joined")
		// The member's node holds the room's channel once presence names
		// the member.
		waitFor(b, "the member seen from the publishing node", func() bool { return len(from.Endpoint.Presence().RoomMembers(room)) == 1 })
		if _, err := from.Endpoint.Publish(context.Background(), room, laf.Text("ready")); err != nil {
			b.Fatal(err)
		}
		conn.ReadPublished()
		go func() {
			for {
				if _, _, err := conn.WS.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		var before BrokerCounters
		if counters != nil {
			before = counters()
		}
		b.ResetTimer()
		for range b.N {
			if _, err := from.Endpoint.Publish(context.Background(), room, msg); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		report(b, before)
		conn.WS.Close(websocket.StatusNormalClosure, "")
	}
	b.Run("Publish/history", func(b *testing.B) { publish(b, false) })
	b.Run("Publish/local", func(b *testing.B) { publish(b, true) })
	b.Run("Recover10", func(b *testing.B) {
		br, _ := newBroker(b)
		hb, ok := br.(laf.HistoryBroker)
		if !ok {
			b.Fatalf("laftest: %T is not a laf.HistoryBroker", br)
		}
		room := uniqueRoom("recover")
		limits := laf.HistoryLimits{Size: 100, TTL: HistoryLimits.TTL}
		var pos []laf.Position
		for range 100 {
			p, err := hb.Append(context.Background(), roomChannel(room), []byte(fmt.Sprintf("%064d", 0)), limits)
			if err != nil {
				b.Fatal(err)
			}
			pos = append(pos, p)
		}
		since := pos[89]
		var before BrokerCounters
		if counters != nil {
			before = counters()
		}
		b.ResetTimer()
		for range b.N {
			_, missed, err := hb.History(context.Background(), roomChannel(room), since, limits)
			if err != nil || len(missed) != 10 {
				b.Fatalf("History: %d messages, %v", len(missed), err)
			}
		}
		b.StopTimer()
		report(b, before)
	})
}

// pubsubOnly hides a broker's history: laf then keeps positions and
// history on each node.
type pubsubOnly struct{ laf.Broker }
