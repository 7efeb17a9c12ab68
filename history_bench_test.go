package laf_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
)

// BenchmarkRoomSend sends a 64-byte text message to a room of 100
// sockets, each drained by a client, with SendRoom and with Publish (with
// and without history), and reports deliveries per second and the
// allocations per send: go test -run '^$' -bench RoomSend -benchmem .
func BenchmarkRoomSend(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []laf.Option
		send func(ep *laf.Endpoint, m laf.Message) error
	}{
		{"SendRoom", nil, func(ep *laf.Endpoint, m laf.Message) error { return ep.SendRoom(context.Background(), "r", m) }},
		{"Publish", nil, func(ep *laf.Endpoint, m laf.Message) error {
			_, err := ep.Publish(context.Background(), "r", m)
			return err
		}},
		{"PublishWithHistory", []laf.Option{laf.WithHistory(1000, time.Minute)}, func(ep *laf.Endpoint, m laf.Message) error {
			_, err := ep.Publish(context.Background(), "r", m)
			return err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opts := append([]laf.Option{laf.WithSendQueue(1<<16, 256<<20)}, tc.opts...)
			srv := laftest.NewServer(b, func(ctx *laf.FunctionContext) error {
				if ctx.Method == laf.MethodConnection {
					ctx.Socket.Join("r")
					return ctx.Socket.Send("in")
				}
				return nil
			}, opts...)
			const sockets = 100
			var wg sync.WaitGroup
			for range sockets {
				c := srv.Dial(b)
				c.ExpectText("in")
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range b.N {
						if _, _, err := c.WS.Read(context.Background()); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			m := laf.Text("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := tc.send(srv.Endpoint, m); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*sockets)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkCatchUp reconnects 1,000 sockets at once, each 100 published
// messages behind, and reports the time until every one has caught up:
// go test -run '^$' -bench CatchUp -benchtime 3x .
func BenchmarkCatchUp(b *testing.B) {
	const sockets, behind = 1000, 100
	srv := laftest.NewServer(b, joiner, laf.WithHistory(1000, time.Minute))
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		since, err := srv.Endpoint.Publish(ctx, "r", laf.Text("before"))
		if err != nil {
			b.Fatal(err)
		}
		for range behind {
			if _, err := srv.Endpoint.Publish(ctx, "r", laf.Text("missed")); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		conns := make(chan *websocket.Conn, sockets)
		for range sockets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws, _, err := websocket.Dial(ctx, srv.WSURL+"?room=r&since="+since.String(), nil)
				if err != nil {
					b.Error(err)
					return
				}
				conns <- ws
				for range behind + 1 { // the missed messages, and "recovered=true"
					if _, _, err := ws.Read(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(time.Since(start).Seconds()*1000, "ms/catch-up")
		b.StopTimer()
		close(conns)
		for ws := range conns {
			ws.CloseNow()
		}
		b.StartTimer()
	}
}

// BenchmarkHistoryMemory publishes 100 messages of 64 bytes to each of
// 1,000 rooms with history, and one message to each of 10,000 rooms, and
// reports the heap they hold, per kept message and per room with one
// message (the messages' envelopes included):
// go test -run '^$' -bench HistoryMemory -benchtime 1x .
func BenchmarkHistoryMemory(b *testing.B) {
	const rooms, size = 1000, 100
	for range b.N {
		ep := laf.Handler(func(*laf.FunctionContext) error { return nil }, laf.WithHistory(size, time.Hour))
		ctx := context.Background()
		m := laf.Text("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for r := range rooms {
			room := fmt.Sprint("room-", r)
			for range size {
				if _, err := ep.Publish(ctx, room, m); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(held/(rooms*size), "B/kept-message")
		runtime.KeepAlive(ep)

		// Rooms with one message each: what a room costs.
		ep = laf.Handler(func(*laf.FunctionContext) error { return nil }, laf.WithHistory(size, time.Hour))
		runtime.GC()
		runtime.ReadMemStats(&before)
		for r := range 10 * rooms {
			if _, err := ep.Publish(ctx, fmt.Sprint("room-", r), m); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(10*rooms), "B/room-with-one-message")
		runtime.KeepAlive(ep)
	}
}
