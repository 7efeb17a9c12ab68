//go:build linux

package laf_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/internal/rawws"
	"github.com/lafgo/laf/laftest"
)

// An idle socket parks: it holds no goroutine until its peer sends (see
// parkAfter in events.go, a quarter of a second).

// waitParked waits until ep has live sockets, all of them parked.
func waitParked(t *testing.T, ep *laf.Endpoint) {
	t.Helper()
	require.Eventually(t, func() bool { return ep.Len() > 0 && ep.ParkedSockets() == ep.Len() }, 10*time.Second, 20*time.Millisecond,
		"sockets still have their goroutines")
}

func echo(ctx *laf.FunctionContext) error {
	if ctx.Method == laf.MethodMessage {
		return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
	}
	return nil
}

func TestIdleSocketsParkAndResume(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "deflate"}[compress], func(t *testing.T) {
			var opts []laf.Option
			dial := &websocket.DialOptions{}
			if compress {
				opts = append(opts, laf.WithCompression(0))
				dial.CompressionMode = websocket.CompressionNoContextTakeover
			}
			srv := laftest.NewServer(t, echo, opts...)
			big := strings.Repeat("compressible ", 200)
			conns := make([]*laftest.Conn, 8)
			for i := range conns {
				conns[i] = srv.DialOptions(t, dial)
				conns[i].Send("first")
				conns[i].ExpectText("first")
			}
			for round := range 3 {
				waitParked(t, srv.Endpoint)
				assert.Equal(t, len(conns), srv.Endpoint.Len(), "round %d", round)
				for i, c := range conns {
					c.SendBinary([]byte{byte(round), byte(i)})
					c.ExpectBinary([]byte{byte(round), byte(i)})
					c.Send(big) // compressed by the client when it negotiated deflate
					c.ExpectText(big)
				}
			}
		})
	}
}

// A parked socket's pongs wake it, and it parks again between pings.
func TestParkedSocketAnswersPings(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithPing(400*time.Millisecond, 2*time.Second))
	var pings atomic.Int32
	c := srv.DialOptions(t, &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		pings.Add(1)
		return true
	}})
	rec.Expect(t, laf.MethodConnection)
	ctx := c.WS.CloseRead(context.Background()) // reads, and so answers pings
	for want := int32(1); want <= 4; want++ {
		require.Eventually(t, func() bool { return pings.Load() >= want }, 10*time.Second, 10*time.Millisecond)
		waitParked(t, srv.Endpoint)
	}
	assert.NoError(t, ctx.Err(), "the connection closed")
	assert.Equal(t, 1, srv.Endpoint.Len())
	assert.Equal(t, 0, rec.Pending(), "no event but the connection's")
}

// A parked socket closed by the server goes through the close handshake,
// and its close event fires.
func TestParkedSocketClosesGracefully(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)
	id := rec.Expect(t, laf.MethodConnection).SocketID
	waitParked(t, srv.Endpoint)
	s, ok := srv.Endpoint.Socket(id)
	require.True(t, ok)
	require.NoError(t, s.Close(4000, "bye"))
	assert.Equal(t, "bye", c.ExpectClose(4000))
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 4000, ev.Params.Code)
	assert.Equal(t, laf.CauseServer, ev.Params.Cause)
}

// A parked socket whose peer drops the connection gets its close event.
func TestParkedSocketPeerDrops(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)
	rec.Expect(t, laf.MethodConnection)
	waitParked(t, srv.Endpoint)
	c.WS.CloseNow()
	rec.Expect(t, laf.MethodError) // the drop
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 1006, ev.Params.Code)
	assert.Equal(t, laf.CauseAbnormal, ev.Params.Cause)
	assert.Equal(t, 0, srv.Endpoint.Len())
}

// A parked socket closed by the server, whose peer never answers the
// close frame, is dropped at the close timeout, with no goroutine left
// waiting.
func TestParkedSocketCloseTimesOut(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithCloseTimeout(300*time.Millisecond))
	srv.Dial(t) // never reads: never answers the close frame
	id := rec.Expect(t, laf.MethodConnection).SocketID
	waitParked(t, srv.Endpoint)
	s, ok := srv.Endpoint.Socket(id)
	require.True(t, ok)
	start := time.Now()
	require.NoError(t, s.Close(1000, ""))
	ev := rec.Expect(t, laf.MethodClose)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	assert.Equal(t, 1000, ev.Params.Code)
	assert.Equal(t, laf.CauseServer, ev.Params.Cause)
	assert.Equal(t, 0, srv.Endpoint.Len())
	// The last parked socket left without an epoll event: the poller's
	// goroutine ends all the same.
	require.Eventually(t, func() bool { return !srv.Endpoint.PollerRunning() }, 10*time.Second, 10*time.Millisecond)
}

func TestShutdownClosesParkedSockets(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	conns := make([]*laftest.Conn, 5)
	for i := range conns {
		conns[i] = srv.Dial(t)
		rec.Expect(t, laf.MethodConnection)
	}
	waitParked(t, srv.Endpoint)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Endpoint.Shutdown(ctx)
	}()
	for _, c := range conns {
		c.ExpectClose(websocket.StatusGoingAway)
	}
	require.NoError(t, <-done)
	for range conns {
		assert.Equal(t, laf.CauseShutdown, rec.Expect(t, laf.MethodClose).Params.Cause)
	}
}

// A socket whose peer pauses inside a frame (its header, or its payload,
// or between the fragments of a message) past the park deadline does not
// park there: the message arrives whole.
func TestPauseInsideAFrameDoesNotPark(t *testing.T) {
	srv := laftest.NewServer(t, echo)
	payload := []byte(strings.Repeat("laf", 100)) // a 16-bit length: a 4-byte header
	for _, at := range []int{1, 2, 3, 6, 8, 100} {
		rc, err := rawws.Dial(context.Background(), srv.WSURL)
		require.NoError(t, err)
		waitParked(t, srv.Endpoint)
		require.NoError(t, rc.WriteFramePaused(at, 600*time.Millisecond, true, 0, rawws.OpText, payload))
		require.NoError(t, rc.WriteFrame(false, 0, rawws.OpText, []byte("frag")))
		time.Sleep(600 * time.Millisecond)
		// A ping between the fragments is no message boundary either.
		require.NoError(t, rc.WriteFrame(true, 0, rawws.OpPing, []byte("p")))
		time.Sleep(600 * time.Millisecond)
		require.NoError(t, rc.WriteFrame(true, 0, rawws.OpContinuation, []byte("ment")))
		require.NoError(t, rc.WriteClose(1000, ""))
		stream, err := rc.ReadAll(10 * time.Second)
		require.NoError(t, err)
		rc.Close()
		frames, err := rawws.Parse(stream)
		require.NoError(t, err, "split at %d", at)
		require.NoError(t, rawws.CheckClosed(frames))
		require.Len(t, frames, 4, "split at %d", at)
		assert.Equal(t, payload, frames[0].Payload, "split at %d", at)
		assert.Equal(t, rawws.OpPong, frames[1].Opcode, "split at %d", at)
		assert.Equal(t, "fragment", string(frames[2].Payload), "split at %d", at)
		code, _, err := frames[3].CloseStatus()
		require.NoError(t, err)
		assert.Equal(t, 1000, code, "split at %d", at)
	}
}
