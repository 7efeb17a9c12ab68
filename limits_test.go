package laf_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/internal/rawws"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMaxSocketsRefusesWith503(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil }, laf.WithMaxSockets(2))
	a := srv.Dial(t)
	srv.Dial(t)

	_, resp, err := srv.TryDial(nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	st := srv.Endpoint.Stats()
	assert.EqualValues(t, 1, st.CapRefused)
	assert.EqualValues(t, 1, st.Refused)

	// A socket counts until its close event has returned; then there is
	// room again.
	a.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool {
		c, _, err := srv.TryDial(nil)
		if err != nil {
			return false
		}
		c.WS.CloseNow()
		return true
	}, laftest.DefaultTimeout, 10*time.Millisecond)
}

func TestMaxSocketsPerKeyRefusesWith429(t *testing.T) {
	byUser := func(r *http.Request) string { return r.URL.Query().Get("user") }
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithMaxSocketsPerKey(1, byUser))
	alice := srv.DialPath(t, "?user=alice", nil)
	srv.DialPath(t, "?user=bob", nil) // another key has its own room

	_, resp, err := srv.TryDialPath("?user=alice", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.EqualValues(t, 1, srv.Endpoint.Stats().CapRefused)

	alice.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool {
		c, _, err := srv.TryDialPath("?user=alice", nil)
		if err != nil {
			return false
		}
		c.WS.CloseNow()
		return true
	}, laftest.DefaultTimeout, 10*time.Millisecond)
}

func TestMaxSocketsPerKeyDefaultsToTheClientIP(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithMaxSocketsPerKey(1, nil))
	srv.Dial(t)
	_, resp, err := srv.TryDial(nil) // from 127.0.0.1 too
	require.Error(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "192.0.2.1", laf.RemoteIP(&http.Request{RemoteAddr: "192.0.2.1:1234"}))
	assert.Equal(t, "::1", laf.RemoteIP(&http.Request{RemoteAddr: "[::1]:80"}))
}

// A peer over its rate limit is closed with 1008 and CausePolicy, after
// an error event that says why; the messages within the limit got through.
func TestRateLimitClosesWith1008(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithRateLimit(laf.RateLimit{Messages: 1, MessageBurst: 3}))
	c := srv.Dial(t)
	rec.Expect(t, laf.MethodConnection)
	for range 10 { // far faster than one a second
		if c.WS.Write(context.Background(), websocket.MessageText, []byte("spam")) != nil {
			break
		}
	}
	assert.Equal(t, "rate limit", c.ExpectClose(websocket.StatusPolicyViolation))
	for range 3 {
		rec.Expect(t, laf.MethodMessage)
	}
	assert.ErrorIs(t, rec.Expect(t, laf.MethodError).Params.Err, laf.ErrRateLimited)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, laf.CausePolicy, ev.Params.Cause)
	assert.Equal(t, 1008, ev.Params.Code)
	require.Eventually(t, func() bool { return srv.Endpoint.Stats().Closes[laf.CausePolicy] == 1 },
		laftest.DefaultTimeout, time.Millisecond)
}

// Under DropOverRate the socket stays open, what is over the limit is
// dropped and counted, and each run of drops fires one error event.
func TestRateLimitDropKeepsTheSocket(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithRateLimit(laf.RateLimit{
		Bytes: 1, ByteBurst: 100, Policy: laf.DropOverRate, // 100 bytes, then about none
	}), laf.WithReadLimit(100))
	c := srv.Dial(t)
	rec.Expect(t, laf.MethodConnection)
	big := strings.Repeat("x", 100)
	c.Send(big) // the whole burst
	c.Send(big) // dropped
	c.Send(big) // dropped, same run
	require.Eventually(t, func() bool { return srv.Endpoint.Stats().RateDropped == 2 },
		laftest.DefaultTimeout, time.Millisecond)
	assert.Equal(t, big, rec.Expect(t, laf.MethodMessage).Params.Data.String())
	assert.ErrorIs(t, rec.Expect(t, laf.MethodError).Params.Err, laf.ErrRateLimited)
	assert.Zero(t, rec.Pending(), "one error event for the run of drops, and no close")
	assert.Equal(t, 1, srv.Endpoint.Len())
	require.NoError(t, srv.Endpoint.Broadcast(context.Background(), laf.Text("still open")))
	c.ExpectText("still open")
}

// A frame's header does not get the memory its length claims: the payload
// gets memory as it arrives. A peer that claims 256 MiB and sends a
// kilobyte costs the server about a kilobyte.
func TestClaimedLengthGetsNoMemoryUntilItArrives(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithReadLimit(1<<30))
	rc, err := rawws.Dial(context.Background(), srv.WSURL)
	require.NoError(t, err)
	rec.Expect(t, laf.MethodConnection)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// A binary frame header claiming 256 MiB, then 1 KiB of it.
	frame := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, 256<<20)
	frame = append(frame, 1, 2, 3, 4) // the mask key
	frame = append(frame, make([]byte, 1024)...)
	require.NoError(t, rc.WriteRaw(frame))
	time.Sleep(100 * time.Millisecond) // the server reads what came
	rc.Close()
	rec.Expect(t, laf.MethodError) // the drop
	assert.Equal(t, laf.CauseAbnormal, rec.Expect(t, laf.MethodClose).Params.Cause)
	runtime.ReadMemStats(&after)
	// Allocations meanwhile, test and server alike: far from 256 MiB.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20))
}

// A peer that never reads, with pings off and a slow policy that keeps
// the socket open, cannot hold the writer for ever: the write fails at
// the write timeout, and the socket closes as dropped.
func TestWriteTimeoutFreesTheWriter(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithPing(0, 0), laf.WithSlowPolicy(laf.DropNewest),
		laf.WithWriteTimeout(300*time.Millisecond))
	conn, _ := rawUpgrade(t, srv.URL) // never reads
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	id := rec.Expect(t, laf.MethodConnection).SocketID
	s, ok := srv.Endpoint.Socket(id)
	require.True(t, ok)
	big := laf.Binary(make([]byte, 64<<10))
	// Fill the socket buffers until the queue is full: the writer is then
	// blocked in a write.
	require.Eventually(t, func() bool { return s.SendMessage(big) == laf.ErrQueueFull }, laftest.DefaultTimeout, time.Millisecond)
	rec.Expect(t, laf.MethodError)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, laf.CauseAbnormal, ev.Params.Cause)
	assert.Equal(t, 1006, ev.Params.Code)
}

// An upgrade request over WithMaxRequestBytes gets 431, and no socket;
// one under it is upgraded.
func TestMaxRequestBytesRefusesWith431(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil }, laf.WithMaxRequestBytes(2<<10))
	_, resp, err := srv.TryDial(&websocket.DialOptions{HTTPHeader: http.Header{"X-Big": {strings.Repeat("b", 3<<10)}}})
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	assert.EqualValues(t, 1, srv.Endpoint.Stats().Refused)
	assert.Equal(t, 0, srv.Endpoint.Len())

	c, _, err := srv.TryDial(&websocket.DialOptions{HTTPHeader: http.Header{"X-Small": {strings.Repeat("s", 1<<10)}}})
	require.NoError(t, err)
	c.WS.CloseNow()
}
