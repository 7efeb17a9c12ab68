package bench

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf/bench/internal/servers"
	"github.com/lafgo/laf/bench/internal/wire"
)

// The client is coder/websocket with a context that is never done and a
// reused read buffer: it allocates nothing per message, so allocs/op is
// the server's.

func dial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	c, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	return c
}

func readInto(c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf)+512)...)
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var echoLibs = []struct {
	name string
	new  func() servers.Server
}{
	{"laf", mustLib("laf")},
	{"laf-copy", servers.NewLafCopy},
	{"laf-lent", servers.NewLafLent},
	{"coder-read", mustLib("coder-read")},
	{"coder-reader", mustLib("coder-reader")},
}

func mustLib(name string) func() servers.Server {
	l, err := servers.Find(name)
	if err != nil {
		panic(err)
	}
	return l.New
}

// BenchmarkEcho echoes text messages over one loopback socket, one at a
// time: ns/op is a round trip, allocs/op what the server allocates per
// message.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 1024, 16384} {
		for _, lib := range echoLibs {
			b.Run(fmt.Sprintf("%s/%d", lib.name, size), func(b *testing.B) {
				srv := httptest.NewServer(lib.new())
				defer srv.Close()
				c := dial(b, "ws"+strings.TrimPrefix(srv.URL, "http"))
				defer c.CloseNow()
				ctx := context.Background()
				msg := wire.New(wire.Echo, size, 0, 0)
				buf := make([]byte, size+512)
				roundTrip := func() {
					if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
						b.Fatal(err)
					}
					p, err := readInto(c, buf)
					if err != nil || len(p) != size {
						b.Fatalf("echo: %d bytes, %v", len(p), err)
					}
				}
				for range 100 { // warm the pools and the buffers
					roundTrip()
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					roundTrip()
				}
			})
		}
	}
}

// BenchmarkBroadcast broadcasts a 1 KiB text message to every socket and
// waits until each has read it: allocs/op is per broadcast, over all
// sockets, and should not grow with their number.
func BenchmarkBroadcast(b *testing.B) {
	for _, lib := range []string{"laf", "coder-read"} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", lib, n), func(b *testing.B) {
				benchBroadcast(b, mustLib(lib)(), n)
			})
		}
	}
}

func benchBroadcast(b *testing.B, s servers.Server, n int) {
	srv := httptest.NewServer(s)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	var got atomic.Int64
	var target atomic.Int64
	done := make(chan struct{}, 1)
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = dial(b, url)
	}
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
		wg.Wait()
	}()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				if _, err := readInto(c, buf); err != nil {
					return
				}
				if got.Add(1) == target.Load() {
					done <- struct{}{}
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); s.Conns() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sockets registered", s.Conns(), n)
		}
	}
	payload := wire.New(wire.Broadcast, 1024, 0, 0)
	once := func(i int) {
		target.Store(int64(n) * int64(i+1))
		s.Broadcast(payload)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.Fatalf("broadcast %d: %d of %d deliveries", i, got.Load()-int64(n)*int64(i), n)
		}
	}
	const warm = 20
	for i := range warm {
		once(i)
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		once(warm + i)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
}
