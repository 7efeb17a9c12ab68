package bench

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf/bench/internal/servers"
	"github.com/lafgo/laf/bench/internal/wire"
)

// TestContenders checks that every contender behaves the same: text and
// binary messages come back with their type, and a broadcast reaches
// every socket as one text message.
func TestContenders(t *testing.T) {
	for _, l := range servers.Libs {
		t.Run(l.Name, func(t *testing.T) {
			s := l.New()
			srv := httptest.NewServer(s)
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			var conns []*websocket.Conn
			for range 3 {
				c := dial(t, url)
				defer c.CloseNow()
				conns = append(conns, c)
			}
			c := conns[0]
			for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
				for _, size := range []int{64, 16384} {
					msg := wire.New(wire.Echo, size, 7, 42)
					if err := c.Write(ctx, typ, msg); err != nil {
						t.Fatal(err)
					}
					gt, got, err := c.Read(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if gt != typ || !bytes.Equal(got, msg) {
						t.Fatalf("echo of %v %d B: got %v %d B", typ, size, gt, len(got))
					}
				}
			}

			for deadline := time.Now().Add(5 * time.Second); s.Conns() != len(conns); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("Conns() = %d, want %d", s.Conns(), len(conns))
				}
			}
			p := wire.New(wire.Broadcast, 1024, 9, time.Now().UnixNano())
			s.Broadcast(p)
			for i, c := range conns {
				typ, got, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				kind, seq, _, err := wire.Parse(got)
				if typ != websocket.MessageText || err != nil || kind != wire.Broadcast || seq != 9 || len(got) != 1024 {
					t.Fatalf("socket %d got %v %d B (%v)", i, typ, len(got), err)
				}
			}
		})
	}
}
