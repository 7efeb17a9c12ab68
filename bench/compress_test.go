package bench

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lafgo/laf/bench/internal/load"
	"github.com/lafgo/laf/bench/internal/servers"
	"github.com/lafgo/laf/bench/internal/wire"
)

// TestCompressed checks that every compressing server negotiates
// permessage-deflate with the load client, echoes a chat payload and
// broadcasts one, both shrunk on the wire; and that laf compresses a
// broadcast once.
func TestCompressed(t *testing.T) {
	for _, l := range servers.Libs {
		if l.NewCompressed == nil {
			continue
		}
		t.Run(l.Name, func(t *testing.T) {
			s := l.NewCompressed()
			srv := newLoopbackServer(t, s)
			tg, err := load.NewTarget([]string{strings.TrimPrefix(srv.URL, "http://")})
			if err != nil {
				t.Fatal(err)
			}
			conns, err := tg.DialManyCompressed(3)
			if err != nil {
				t.Fatal(err)
			}
			defer load.CloseAll(conns)
			for _, c := range conns {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
			}

			c := conns[0]
			const size = 16384
			msg := wire.NewChat(wire.Echo, size, 7, 42)
			in0, out0 := load.WireBytes(conns)
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				t.Fatal(err)
			}
			typ, got, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ != websocket.TextMessage || !bytes.Equal(got, msg) {
				t.Fatalf("echo: got %v %d B", typ, len(got))
			}
			in1, out1 := load.WireBytes(conns)
			t.Logf("echo of %d B: %d B read, %d B written on the wire", size, in1-in0, out1-out0)
			if in, out := in1-in0, out1-out0; in == 0 || in > size/3 || out == 0 || out > size/3 {
				t.Fatalf("echo of %d B: %d B read, %d B written on the wire", size, in, out)
			}

			for deadline := time.Now().Add(5 * time.Second); s.Conns() != len(conns); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("Conns() = %d, want %d", s.Conns(), len(conns))
				}
			}
			var z0 uint64
			if cs, ok := s.(servers.Compressor); ok {
				z0 = cs.Compressed()
			}
			p := wire.NewChat(wire.Broadcast, 2048, 9, time.Now().UnixNano())
			s.Broadcast(p)
			for i, c := range conns {
				typ, got, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if typ != websocket.TextMessage || !bytes.Equal(got, p) {
					t.Fatalf("socket %d got %v %d B", i, typ, len(got))
				}
			}
			in2, _ := load.WireBytes(conns)
			if per := (in2 - in1) / uint64(len(conns)); per == 0 || per > 2048/2 {
				t.Fatalf("broadcast of 2048 B: %d B read per socket", per)
			}
			if cs, ok := s.(servers.Compressor); ok {
				if n := cs.Compressed() - z0; n != 1 {
					t.Fatalf("a broadcast to %d sockets compressed %d times, want once", len(conns), n)
				}
			}
		})
	}
}

// TestUncompressed checks that the servers without -compress do not
// negotiate permessage-deflate, so the load client refuses them.
func TestUncompressed(t *testing.T) {
	l, err := servers.Find("laf")
	if err != nil {
		t.Fatal(err)
	}
	srv := newLoopbackServer(t, l.New())
	tg, err := load.NewTarget([]string{strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := tg.DialCompressed(ctx, 0); err == nil {
		c.Close()
		t.Fatal("dialled a server without compression")
	}
}

func newLoopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h) // on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}
