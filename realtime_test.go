package laf_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client that stops sending is closed by the read idle timeout however
// much the server sends it; one that keeps sending is not, and the plain
// idle timeout counts the server's sends.
func TestReadIdleTimeoutIgnoresServerSends(t *testing.T) {
	const idle = 300 * time.Millisecond
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithReadIdleTimeout(idle), laf.WithIdleTimeout(idle))
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a 30 Hz stream to every socket
		for {
			select {
			case <-stop:
				return
			case <-time.After(33 * time.Millisecond):
				srv.Endpoint.Broadcast(context.Background(), laf.Text("tick"))
			}
		}
	}()

	quiet := srv.Dial(t)
	rec.Expect(t, laf.MethodConnection)
	talker := srv.Dial(t)
	talkerID := rec.Expect(t, laf.MethodConnection).SocketID
	talking := make(chan struct{})
	go func() {
		defer close(talking)
		for range 2 * int(idle/(50*time.Millisecond)) {
			if talker.WS.Write(context.Background(), websocket.MessageText, []byte("here")) != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go func() { // the talker reads its ticks
		for {
			if _, _, err := talker.WS.Read(context.Background()); err != nil {
				return
			}
		}
	}()

	assert.Equal(t, "idle", quiet.ExpectClose(websocket.StatusNormalClosure))
	var ev laftest.Event
	for {
		ev = rec.Next(t)
		if ev.Method == laf.MethodClose {
			break
		}
		assert.Equal(t, talkerID, ev.SocketID, "only the talker sends messages")
	}
	assert.NotEqual(t, talkerID, ev.SocketID, "the talker closed first")
	assert.Equal(t, laf.CauseIdle, ev.Params.Cause)
	<-talking
	_, ok := srv.Endpoint.Socket(talkerID)
	assert.True(t, ok, "a client that keeps sending stays open")
}

// A graceful close of a peer that never answers ends after the close
// timeout, not after coder/websocket's 5 s.
func TestCloseTimeoutBoundsAGracefulClose(t *testing.T) {
	const timeout = 300 * time.Millisecond
	closed := make(chan laf.Params, 1)
	ids := make(chan *laf.Socket, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		switch ctx.Method {
		case laf.MethodConnection:
			ids <- ctx.Socket
		case laf.MethodClose:
			closed <- ctx.Params
		}
		return nil
	}, laf.WithCloseTimeout(timeout))
	rawUpgrade(t, srv.URL) // and never reads or answers
	s := <-ids

	start := time.Now()
	require.NoError(t, s.Close(4000, "bye"))
	p := <-closed
	took := time.Since(start)
	assert.Equal(t, 4000, p.Code)
	assert.Equal(t, laf.CauseServer, p.Cause)
	assert.GreaterOrEqual(t, took, timeout)
	assert.Less(t, took, laf.DefaultCloseTimeout, "the close timeout, not coder/websocket's wait, ended it")
}

// Buffered and Dropped show a socket falling behind.
func TestBufferedAndDropped(t *testing.T) {
	sockets := make(chan *laf.Socket, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			sockets <- ctx.Socket
		}
		return nil
	}, laf.WithSendQueue(4, 1<<20), laf.WithSlowPolicy(laf.DropNewest))
	rawUpgrade(t, srv.URL) // and never reads or answers
	s := <-sockets
	assert.Zero(t, s.Buffered())
	assert.Zero(t, s.Dropped())

	// A peer that does not read fills the kernel's buffers, then the
	// queue, whose overflow the policy drops. (A fast sender can fill the
	// queue, and see a drop, before the kernel's buffers are full.)
	payload := laf.Binary(make([]byte, 64<<10))
	for i := 0; s.Dropped() == 0 || s.Buffered() == 0; i++ {
		require.Less(t, i, 100_000, "the peer's buffers never filled")
		if err := s.SendMessage(payload); err != nil {
			require.ErrorIs(t, err, laf.ErrQueueFull)
		}
	}
	// The queue holds at most 4, and the batch being written was a queue.
	assert.LessOrEqual(t, s.Buffered(), 8*(64<<10), "at most the queue and the batch being written")
	assert.Equal(t, srv.Endpoint.Stats().Dropped, s.Dropped())
}

// RangeRoom walks a snapshot of a room, so fn may change the room.
func TestRangeRoom(t *testing.T) {
	joined := make(chan struct{}, 3)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			ctx.Socket.Join("board")
			joined <- struct{}{}
		}
		return nil
	})
	for range 3 {
		srv.Dial(t)
		<-joined
	}
	seen := 0
	srv.Endpoint.RangeRoom("board", func(s *laf.Socket) bool {
		seen++
		s.Leave("board")
		return true
	})
	assert.Equal(t, 3, seen)
	assert.Zero(t, srv.Endpoint.RoomLen("board"))
	srv.Endpoint.RangeRoom("board", func(*laf.Socket) bool { t.Error("the room is empty"); return true })
}

// The room hook hears each room's first member and last, in order, and
// may send to the room and change rooms itself.
func TestRoomHook(t *testing.T) {
	var mu sync.Mutex
	var log []string
	var ep *laf.Endpoint
	hook := func(room string, occupied bool) {
		mu.Lock()
		log = append(log, fmt.Sprintf("%s %v", room, occupied))
		mu.Unlock()
		if occupied && room == "board" {
			ep.SendRoom(context.Background(), room, laf.Text("first in board"))
		}
	}
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			cmd, room, _ := strings.Cut(ctx.Params.Data.String(), " ")
			if cmd == "join" {
				ctx.Socket.Join(room)
			} else {
				ctx.Socket.Leave(room)
			}
			return ctx.Socket.Send("ok")
		}
		return nil
	}, laf.WithRoomHook(hook))
	ep = srv.Endpoint

	a, b := srv.Dial(t), srv.Dial(t)
	a.Send("join board")
	a.ExpectText("first in board")
	a.ExpectText("ok")
	b.Send("join board")
	b.ExpectText("ok")
	a.Send("leave board")
	a.ExpectText("ok")
	b.Send("join side")
	b.ExpectText("ok")
	b.Close(websocket.StatusNormalClosure, "") // empties board and side
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(log) == 4 },
		laftest.DefaultTimeout, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"board true", "side true"}, log[:2])
	assert.ElementsMatch(t, []string{"board false", "side false"}, log[2:], "a close empties its rooms in any order")
}

// A socket that does not read, under a stream of Latest frames with
// plain messages among them, gets every plain message and, once it reads,
// the newest frame: its queue never holds more than one frame.
func TestLatestKeepsOnlyTheNewestFrame(t *testing.T) {
	const frameSize, frames, plainEvery = 128 << 10, 150, 10
	sockets := make(chan *laf.Socket, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			ctx.Socket.Join("board")
			sockets <- ctx.Socket
		}
		return nil
	})
	c := srv.Dial(t) // and does not read until the stream is over
	s := <-sockets
	ctx := context.Background()
	maxBuffered := 0
	for i := range frames {
		frame := make([]byte, frameSize)
		frame[0], frame[1] = byte(i>>8), byte(i)
		require.NoError(t, srv.Endpoint.SendRoom(ctx, "board", laf.Latest("cursors", laf.Owned(frame, true /* binary */))))
		if i%plainEvery == 0 {
			require.NoError(t, s.Send(fmt.Sprintf("plain %d", i)))
		}
		maxBuffered = max(maxBuffered, s.Buffered())
	}
	require.NoError(t, s.Send("end"))
	st := srv.Endpoint.Stats()
	assert.Positive(t, st.Replaced, "the peer fell behind, and frames were replaced")
	assert.Zero(t, st.SlowClosed)
	// The queue holds one frame; the batch being written holds one more.
	assert.LessOrEqual(t, maxBuffered, 2*frameSize+4096)

	lastFrame, plains, received := -1, 0, 0
	for {
		binary, data := c.Read()
		if !binary {
			if string(data) == "end" {
				break
			}
			assert.Equal(t, fmt.Sprintf("plain %d", plains*plainEvery), string(data), "every plain message, in order")
			plains++
			continue
		}
		seq := int(data[0])<<8 | int(data[1])
		assert.Greater(t, seq, lastFrame, "frames only move forward")
		lastFrame = seq
		received++
	}
	assert.Equal(t, frames/plainEvery, plains)
	assert.Equal(t, frames-1, lastFrame, "the newest frame arrives")
	assert.Equal(t, uint64(frames), uint64(received)+srv.Endpoint.Stats().Replaced,
		"every frame was written or replaced by a newer one")
}

// Latest works across nodes: frames sent to a room on one node replace
// each other in the queue of a slow socket on another.
func TestLatestAcrossNodes(t *testing.T) {
	const frameSize, frames = 128 << 10, 150
	b := laf.NewLocalBroker()
	joined := make(chan struct{}, 1)
	join := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			ctx.Socket.Join("board")
			joined <- struct{}{}
		}
		return nil
	}
	one := laftest.NewServer(t, join, laf.WithBroker(b), laf.WithHeartbeat(50*time.Millisecond))
	two := laftest.NewServer(t, join, laf.WithBroker(b), laf.WithHeartbeat(50*time.Millisecond))
	c := two.Dial(t) // and does not read until the stream is over
	<-joined
	ctx := context.Background()
	require.Eventually(t, func() bool {
		return one.Endpoint.SendRoom(ctx, "board", laf.Text("hello")) == nil
	}, laftest.DefaultTimeout, 10*time.Millisecond, "node one learns of the room on node two")
	c.ExpectText("hello")
	for i := range frames {
		frame := make([]byte, frameSize)
		frame[0], frame[1] = byte(i>>8), byte(i)
		require.NoError(t, one.Endpoint.SendRoom(ctx, "board", laf.Latest("cursors", laf.Owned(frame, true /* binary */))))
	}
	require.NoError(t, one.Endpoint.SendRoom(ctx, "board", laf.Text("end")))

	lastFrame, received := -1, 0
	for {
		binary, data := c.Read()
		if !binary {
			if string(data) == "end" {
				break
			}
			continue // a late "hello"
		}
		seq := int(data[0])<<8 | int(data[1])
		assert.Greater(t, seq, lastFrame, "frames only move forward")
		lastFrame, received = seq, received+1
	}
	assert.Equal(t, frames-1, lastFrame, "the newest frame arrives")
	replaced := two.Endpoint.Stats().Replaced
	assert.Positive(t, replaced, "frames were replaced on the receiving node")
	assert.Equal(t, uint64(frames), uint64(received)+replaced)
	assert.Zero(t, two.Endpoint.Stats().SlowClosed)
}
