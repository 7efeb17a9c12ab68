package laf_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/require"
)

// laf encodes its data frames itself: every length form (7-bit, 16-bit,
// 64-bit) must reach a standard client intact, alone and in batches that
// go out in one write (small, pooled, and writev over TCP), over TCP and
// over TLS, where there is no writev.
func TestFramesOfEveryLength(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 70000, 200000}
	payload := func(n, seed int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + (i+seed)%26)
		}
		return b
	}
	ep := func() *laf.Endpoint {
		return laf.Handler(func(ctx *laf.FunctionContext) error {
			if ctx.Method != laf.MethodMessage {
				return nil
			}
			if ctx.Params.Data.String() == "one" {
				return ctx.Socket.Send("x") // a batch of one small frame
			}
			// A burst: every size, text then binary, queued in one event,
			// so that they are written as one batch.
			for i, n := range sizes {
				if err := ctx.Socket.SendMessage(laf.Owned(payload(n, i), false)); err != nil {
					return err
				}
				if err := ctx.Socket.SendMessage(laf.Owned(payload(n, i+1), true)); err != nil {
					return err
				}
			}
			return ctx.Socket.Send("end")
		}, laf.WithSendQueue(64, 4<<20))
	}
	check := func(t *testing.T, c *laftest.Conn) {
		for round := range 3 {
			c.Send("one")
			c.ExpectText("x")
			c.Send("burst")
			for i, n := range sizes {
				bin, got := c.Read()
				require.False(t, bin, "round %d size %d", round, n)
				require.True(t, bytes.Equal(payload(n, i), got), "round %d: text of %d bytes, got %d", round, n, len(got))
				c.ExpectBinary(payload(n, i+1))
			}
			c.ExpectText("end")
		}
	}

	t.Run("tcp", func(t *testing.T) {
		check(t, laftest.Serve(t, ep()).Dial(t))
	})
	t.Run("tls", func(t *testing.T) {
		e := ep()
		hs := httptest.NewTLSServer(e)
		t.Cleanup(func() {
			e.Shutdown(context.Background())
			hs.Close()
		})
		ws, _, err := websocket.Dial(context.Background(), "wss"+strings.TrimPrefix(hs.URL, "https"),
			&websocket.DialOptions{HTTPClient: hs.Client()})
		require.NoError(t, err)
		t.Cleanup(func() { ws.CloseNow() })
		ws.SetReadLimit(-1)
		check(t, (&laftest.Conn{WS: ws, Timeout: laftest.DefaultTimeout}).Bind(t))
	})
}

// coder/websocket writes its control frames itself while laf writes data
// frames: a close handshake and pings in the middle of a stream of data
// must still reach the peer as whole frames.
func TestControlFramesAmidData(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithPing(time.Millisecond, laftest.DefaultTimeout),
		laf.WithSlowPolicy(laf.DropNewest)) // the stream outruns the client: drop, do not close
	for round := range 20 {
		c := srv.Dial(t)
		rec.Expect(t, laf.MethodConnection)
		var s *laf.Socket
		srv.Endpoint.Range(func(sock *laf.Socket) bool { s = sock; return false })
		require.NotNil(t, s)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			big := laf.Text(strings.Repeat("d", 3000))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if s.SendMessage(big) == laf.ErrClosed {
					return
				}
			}
		}()
		for range 50 {
			_, data := c.Read()
			require.Len(t, data, 3000, "round %d", round)
		}
		require.NoError(t, c.WS.Close(websocket.StatusNormalClosure, "done"), "round %d", round)
		close(stop)
		<-done
		ev := rec.Expect(t, laf.MethodClose)
		require.Equal(t, 1000, ev.Params.Code, "round %d: %s %v", round, ev.Params.Cause, ev.Params.Err)
		require.Equal(t, laf.CausePeer, ev.Params.Cause, "round %d", round)
	}
}
