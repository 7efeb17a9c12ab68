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

// A parked socket's pongs are counted by the poller: the socket stays
// parked through its pings, and none of them wakes it.
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
	waitParked(t, srv.Endpoint)
	woken, _ := srv.Endpoint.PollerWakeups()
	for want := int32(1); want <= 4; want++ {
		require.Eventually(t, func() bool { return pings.Load() >= want }, 10*time.Second, 10*time.Millisecond)
	}
	// The fourth ping went only once the third's pong was counted: at
	// least three pongs were served where the socket was parked.
	require.Eventually(t, func() bool { _, served := srv.Endpoint.PollerWakeups(); return served >= 3 }, 10*time.Second, 5*time.Millisecond)
	now, _ := srv.Endpoint.PollerWakeups()
	assert.Equal(t, woken, now, "a pong woke the socket")
	assert.Equal(t, 1, srv.Endpoint.ParkedSockets())
	assert.NoError(t, ctx.Err(), "the connection closed")
	assert.Equal(t, 1, srv.Endpoint.Len())
	assert.Equal(t, 0, rec.Pending(), "no event but the connection's")
}

// The poller answers a parked socket's pings, and absorbs unasked pongs,
// without waking it; anything else, even one byte of a frame, wakes it.
func TestParkedSocketServesControlFrames(t *testing.T) {
	rec := laftest.NewRecorder(echo)
	srv := laftest.NewServer(t, rec.Func, laf.WithPing(0, 0))
	rc, err := rawws.Dial(context.Background(), srv.WSURL)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	rec.Expect(t, laf.MethodConnection)
	waitParked(t, srv.Endpoint)
	woken, _ := srv.Endpoint.PollerWakeups()

	// Two pings and a pong in one write, then a ping on its own.
	var b []byte
	b = append(b, rawws.EncodeFrame(true, 0, rawws.OpPing, []byte("one"))...)
	b = append(b, rawws.EncodeFrame(true, 0, rawws.OpPong, []byte("unasked"))...)
	b = append(b, rawws.EncodeFrame(true, 0, rawws.OpPing, []byte("two"))...)
	require.NoError(t, rc.WriteRaw(b))
	require.NoError(t, rc.WriteFrame(true, 0, rawws.OpPing, make([]byte, 125)))
	for _, want := range [][]byte{[]byte("one"), []byte("two"), make([]byte, 125)} {
		f, _, err := rc.ReadFrame(5*time.Second, 0)
		require.NoError(t, err)
		assert.Equal(t, rawws.OpPong, f.Opcode)
		assert.Equal(t, want, f.Payload)
	}
	// Were the socket woken, the count would have grown before the pongs
	// were written; it is parked again just after they are.
	now, _ := srv.Endpoint.PollerWakeups()
	assert.Equal(t, woken, now, "a control frame woke the socket")
	require.Eventually(t, func() bool { _, served := srv.Endpoint.PollerWakeups(); return served > 0 }, 10*time.Second, 5*time.Millisecond)
	waitParked(t, srv.Endpoint)

	// A ping cut short is left for the socket's goroutine, which reads its
	// rest and answers it; then a message after it.
	ping := rawws.EncodeFrame(true, 0, rawws.OpPing, []byte("cut"))
	require.NoError(t, rc.WriteRaw(ping[:3]))
	require.Eventually(t, func() bool { n, _ := srv.Endpoint.PollerWakeups(); return n > woken }, 10*time.Second, 5*time.Millisecond,
		"a partial frame did not wake the socket")
	require.NoError(t, rc.WriteRaw(ping[3:]))
	f, _, err := rc.ReadFrame(5*time.Second, 0)
	require.NoError(t, err)
	assert.Equal(t, rawws.OpPong, f.Opcode)
	assert.Equal(t, "cut", string(f.Payload))
	require.NoError(t, rc.WriteText("data"))
	f, _, err = rc.ReadFrame(5*time.Second, 0)
	require.NoError(t, err)
	assert.Equal(t, rawws.OpText, f.Opcode)
	assert.Equal(t, "data", string(f.Payload))
	assert.Equal(t, "data", string(rec.Expect(t, laf.MethodMessage).Params.Data))
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

// Sockets connected together are not pinged together: each one's first
// ping comes at a random point in the second half of its first interval.
func TestFirstPingsAreSpread(t *testing.T) {
	const interval = time.Second
	srv := laftest.NewServer(t, echo, laf.WithPing(interval, 10*time.Second))
	const n = 16
	first := make(chan time.Duration, n)
	for range n {
		rc, err := rawws.Dial(context.Background(), srv.WSURL)
		require.NoError(t, err)
		t.Cleanup(func() { rc.Close() })
		dialed := time.Now()
		go func() {
			f, _, err := rc.ReadFrame(30*time.Second, 0)
			if err != nil || f.Opcode != rawws.OpPing {
				first <- -1
				return
			}
			first <- time.Since(dialed)
		}()
	}
	var lo, hi time.Duration
	for i := range n {
		d := <-first
		require.Positive(t, d, "no ping")
		// The ping was due at interval/2 at the earliest; the dial ended
		// after the server's clock started.
		assert.GreaterOrEqual(t, d, interval/2-50*time.Millisecond)
		if i == 0 || d < lo {
			lo = d
		}
		hi = max(hi, d)
	}
	// 16 points drawn from half a second all fall within a tenth of a
	// second with a chance of about 1 in 10^9.
	assert.Greater(t, hi-lo, interval/10, "the first pings came together")
}

// A bad control frame that reaches a parked socket wakes it, and the
// socket fails the connection as its goroutine would have: 1002.
func TestParkedSocketBadControlFrames(t *testing.T) {
	unmasked := []byte{0x89, 0x01, 'p'}
	for name, frame := range map[string][]byte{
		"unmasked ping":   unmasked,
		"long ping":       rawws.EncodeFrame(true, 0, rawws.OpPing, make([]byte, 126)),
		"fragmented ping": rawws.EncodeFrame(false, 0, rawws.OpPing, []byte("p")),
		"pong with RSV1":  rawws.EncodeFrame(true, 4, rawws.OpPong, nil),
		"reserved opcode": rawws.EncodeFrame(true, 0, 0xB, nil),
	} {
		t.Run(name, func(t *testing.T) {
			srv := laftest.NewServer(t, echo)
			rc, err := rawws.Dial(context.Background(), srv.WSURL)
			require.NoError(t, err)
			t.Cleanup(func() { rc.Close() })
			waitParked(t, srv.Endpoint)
			// A good pong first, served where the socket is parked.
			require.NoError(t, rc.WriteRaw(append(rawws.EncodeFrame(true, 0, rawws.OpPong, nil), frame...)))
			f, _, err := rc.ReadFrame(10*time.Second, 0)
			require.NoError(t, err)
			require.Equal(t, rawws.OpClose, f.Opcode)
			code, _, err := f.CloseStatus()
			require.NoError(t, err)
			assert.Equal(t, 1002, code)
		})
	}
}

// Pings written without waiting arm the write deadline as every write
// does: long after the first deadline would have passed, a parked socket
// is still pinged, answers the peer's pings, and stays open.
func TestParkedSocketPingsOutliveWriteDeadline(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	srv := laftest.NewServer(t, echo, laf.WithWriteTimeout(writeTimeout), laf.WithPing(600*time.Millisecond, 5*time.Second))
	var pings atomic.Int32
	c := srv.DialOptions(t, &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		pings.Add(1)
		return true
	}})
	ctx := c.WS.CloseRead(context.Background())
	waitParked(t, srv.Endpoint)
	start := pings.Load()
	// Eighteen write timeouts' worth of pings, whose pongs the poller
	// served.
	require.Eventually(t, func() bool { return pings.Load() >= start+6 }, 30*time.Second, 10*time.Millisecond)
	_, served := srv.Endpoint.PollerWakeups()
	assert.Positive(t, served)
	rc, err := rawws.Dial(context.Background(), srv.WSURL)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	time.Sleep(10 * writeTimeout) // the peer's ping comes long after the upgrade's write
	require.NoError(t, rc.WriteFrame(true, 0, rawws.OpPing, []byte("late")))
	for {
		f, _, err := rc.ReadFrame(10*time.Second, 0)
		require.NoError(t, err)
		if f.Opcode == rawws.OpPong {
			assert.Equal(t, "late", string(f.Payload))
			break
		}
		require.Equal(t, rawws.OpPing, f.Opcode) // the keepalive's
	}
	assert.NoError(t, ctx.Err(), "the connection closed")
	assert.Zero(t, srv.Endpoint.Stats().Closes[laf.CausePingTimeout])
}
