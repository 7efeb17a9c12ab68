package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf/bench/internal/servers"
	"github.com/lafgo/laf/bench/internal/wire"
)

// smallRcvBuf dials with a 4 KiB receive buffer, set before connecting,
// so that a client that does not read is blocked after a few frames.
func smallRcvBuf() *websocket.DialOptions {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}

func readFrame(t *testing.T, c *websocket.Conn) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, p, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kind, seq, _, err := wire.Parse(p)
	if typ != websocket.MessageBinary || err != nil || kind != wire.Latest || len(p) != servers.LatestSize {
		t.Fatalf("got %v %d B (%v), want a %d B frame", typ, len(p), err, servers.LatestSize)
	}
	return seq
}

// TestLatest checks that every latest-state server streams frames to its
// room, and conflates them for a socket that does not read: its queue
// holds at most the frame being written and the newest, and once it reads
// again it gets to the newest frame.
func TestLatest(t *testing.T) {
	for _, l := range servers.Libs {
		if l.NewLatest == nil {
			continue
		}
		t.Run(l.Name, func(t *testing.T) {
			lt := l.NewLatest()
			srv := httptest.NewUnstartedServer(lt)
			srv.Listener = servers.NotSentLowat(srv.Listener, servers.LatestLowat)
			srv.Start()
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			fast, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer fast.CloseNow()
			stuck, _, err := websocket.Dial(ctx, url+"?slow=1", smallRcvBuf())
			if err != nil {
				t.Fatal(err)
			}
			defer stuck.CloseNow()

			prev := readFrame(t, fast)
			for range 3 {
				seq := readFrame(t, fast)
				if seq <= prev {
					t.Fatalf("frame %d after %d", seq, prev)
				}
				prev = seq
			}

			// Keep the fast socket reading while the stuck one fills up and
			// its frames start replacing each other.
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if _, _, err := fast.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			var st servers.LatestStats
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				st = lt.Stats()
				if st.Sockets == 2 && len(st.Slow) == 1 && len(st.Fast) == 1 && st.Replaced >= servers.LatestHz {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stats %+v: want 2 sockets, one slow, and frames replaced", st)
				}
			}
			if q := st.Slow[0]; q > 2*servers.LatestSize || q <= 0 {
				t.Fatalf("the stuck socket's queue holds %d B, want 1 to 2 frames (%d B each)", q, servers.LatestSize)
			}
			if st.Closed != 0 {
				t.Fatalf("%d sockets closed", st.Closed)
			}

			// It reads again, and soon gets a frame sent after it did.
			sent := lt.Stats().Frames
			for n := 0; ; n++ {
				if readFrame(t, stuck) > sent {
					break
				}
				if n > 100 {
					t.Fatalf("read %d old frames: a backlog", n)
				}
			}
			fast.CloseNow()
			<-done
		})
	}
}
