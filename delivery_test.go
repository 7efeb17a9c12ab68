package laf_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestBroadcastTo1000SocketsInOrder(t *testing.T) {
	const sockets, messages = 1000, 20
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil })
	clients := make([]*laftest.Conn, sockets)
	for i := range clients {
		clients[i] = srv.Dial(t)
	}
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == sockets }, laftest.DefaultTimeout, time.Millisecond)

	errs := make(chan error, sockets)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for want := range messages {
				_, data, err := c.WS.Read(ctx)
				if err == nil && string(data) != strconv.Itoa(want) {
					err = fmt.Errorf("got %q, want %d", data, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range messages {
		require.NoError(t, srv.Endpoint.Broadcast(context.Background(), laf.Text(strconv.Itoa(i))))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := srv.Endpoint.Stats()
	assert.Equal(t, uint64(sockets*messages), st.MessagesOut)
	assert.Zero(t, st.Dropped+st.SlowClosed)
}

func TestBroadcastJSONAndBinary(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil })
	a, b := srv.Dial(t), srv.Dial(t)
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == 2 }, laftest.DefaultTimeout, time.Millisecond)
	m, err := laf.JSON(map[string]string{"hello": "all"})
	require.NoError(t, err)
	require.NoError(t, srv.Endpoint.Broadcast(context.Background(), m))
	payload := []byte{0, 1, 2}
	bin := laf.Binary(payload)
	payload[0] = 9 // Binary copied it
	require.NoError(t, srv.Endpoint.Broadcast(context.Background(), bin))
	for _, c := range []*laftest.Conn{a, b} {
		c.ExpectText(`{"hello":"all"}`)
		c.ExpectBinary([]byte{0, 1, 2})
	}
}

func TestRoomsJoinLeaveAndAutoLeave(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			cmd, room, _ := strings.Cut(ctx.Params.Data.String(), " ")
			switch cmd {
			case "join":
				ctx.Socket.Join(room)
			case "leave":
				ctx.Socket.Leave(room)
			}
			return ctx.Socket.Send("ok " + strings.Join(sorted(ctx.Socket.Rooms()), ","))
		}
		return nil
	})
	ep := srv.Endpoint
	a, b, c := srv.Dial(t), srv.Dial(t), srv.Dial(t)
	a.Send("join red")
	a.ExpectText("ok red")
	a.Send("join blue")
	a.ExpectText("ok blue,red")
	b.Send("join red")
	b.ExpectText("ok red")
	b.Send("join red") // twice is once
	b.ExpectText("ok red")
	assert.Equal(t, 2, ep.RoomLen("red"))
	assert.Equal(t, 1, ep.RoomLen("blue"))

	require.NoError(t, ep.SendRoom(context.Background(), "red", laf.Text("to red")))
	assert.ErrorIs(t, ep.SendRoom(context.Background(), "nobody", laf.Text("to no one")), laf.ErrNotFound)
	a.ExpectText("to red")
	b.ExpectText("to red")

	b.Send("leave red")
	b.ExpectText("ok ")
	require.NoError(t, ep.SendRoom(context.Background(), "red", laf.Text("red again")))
	a.ExpectText("red again")
	// b and c got nothing from the room: their next message is their own.
	for _, cl := range []*laftest.Conn{b, c} {
		cl.Send("x")
		cl.ExpectText("ok ")
	}

	a.Close(1000, "")
	require.Eventually(t, func() bool { return ep.RoomLen("red") == 0 && ep.RoomLen("blue") == 0 },
		laftest.DefaultTimeout, time.Millisecond, "closed socket still in its rooms")
}

func TestSendIdentityReachesEveryTab(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithAuth(func(r *http.Request) (string, error) { return r.URL.Query().Get("user"), nil }))
	dial := func(user string) *laftest.Conn {
		ws, _, err := websocket.Dial(context.Background(), srv.WSURL+"?user="+user, nil)
		require.NoError(t, err)
		t.Cleanup(func() { ws.CloseNow() })
		return (&laftest.Conn{WS: ws, Timeout: laftest.DefaultTimeout}).Bind(t)
	}
	tab1, tab2, other := dial("alice"), dial("alice"), dial("bob")
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == 3 }, laftest.DefaultTimeout, time.Millisecond)
	require.NoError(t, srv.Endpoint.SendIdentity(context.Background(), "alice", laf.Text("for alice")))
	require.NoError(t, srv.Endpoint.SendIdentity(context.Background(), "bob", laf.Text("for bob")))
	tab1.ExpectText("for alice")
	tab2.ExpectText("for alice")
	other.ExpectText("for bob")
}

// A Func's sends are written when its event returns, or sooner if it
// runs long: an event that waits on its peer must not hold its own sends.
func TestSendsOfALongEventGoOutWhileItRuns(t *testing.T) {
	release := make(chan struct{})
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		switch ctx.Method {
		case laf.MethodConnection:
			ctx.Socket.Send("one")
			ctx.Socket.Send("two")
			<-release
			ctx.Socket.Send("three")
		case laf.MethodMessage:
			ctx.Socket.Send("got " + ctx.Params.Data.String())
			<-release
		}
		return nil
	})
	c := srv.Dial(t)
	c.ExpectText("one")
	c.ExpectText("two")
	var s *laf.Socket
	srv.Endpoint.Range(func(sock *laf.Socket) bool { s = sock; return false })
	require.NotNil(t, s)
	require.NoError(t, srv.Endpoint.SendSocket(context.Background(), s.ID(), laf.Text("pushed")))
	c.ExpectText("pushed")
	close(release)
	c.ExpectText("three")
	c.Send("hi")
	c.ExpectText("got hi")
}

// With WithLentData, laf reuses a message's memory only once what its
// event sent has been written: echoes of Data stay intact while broadcasts
// keep the socket's writer busy, so that some echoes wait behind them.
func TestLentDataEchoesIntactWhileTheWriterIsBusy(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	}, laf.WithLentData(), laf.WithSendQueue(100000, 1<<30))
	c := srv.Dial(t)
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == 1 }, laftest.DefaultTimeout, time.Millisecond)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		noise := laf.Text("B" + strings.Repeat("-", 4000))
		for {
			select {
			case <-stop:
				return
			default:
			}
			srv.Endpoint.Broadcast(context.Background(), noise)
			time.Sleep(20 * time.Microsecond)
		}
	})
	defer func() { close(stop); wg.Wait() }()

	// Sizes from 1 byte to about 20 KiB, each with its own bytes, sent
	// without waiting for the echoes, so that the socket reads on while
	// earlier echoes still wait to be written.
	const n = 300
	msg := func(i int) string {
		b := make([]byte, 1+(i*67)%20000)
		for j := range b {
			b[j] = byte('a' + (i+j)%26)
		}
		return string(b)
	}
	wg.Go(func() {
		for i := range n {
			if c.WS.Write(context.Background(), websocket.MessageText, []byte(msg(i))) != nil {
				return
			}
		}
	})
	for i := 0; i < n; {
		_, got := c.Read()
		if len(got) > 0 && got[0] == 'B' {
			continue // a broadcast
		}
		require.Equal(t, msg(i), string(got), "echo %d", i)
		i++
	}
}

// slowSetup starts a server and n reading clients plus one that never
// reads, and returns the never-reading socket.
func slowSetup(t *testing.T, n int, rec *laftest.Recorder, opts ...laf.Option) (*laftest.Server, []*laftest.Conn, *laf.Socket) {
	t.Helper()
	srv := laftest.NewServer(t, rec.Func, opts...)
	slow := srv.Dial(t)
	slowID := rec.Expect(t, laf.MethodConnection).SocketID
	_ = slow // never reads
	fast := make([]*laftest.Conn, n)
	for i := range fast {
		fast[i] = srv.Dial(t)
		rec.Expect(t, laf.MethodConnection)
	}
	s, ok := srv.Endpoint.Socket(slowID)
	require.True(t, ok)
	return srv, fast, s
}

func TestSlowConsumerIsClosedAndOthersKeepReceiving(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv, fast, slow := slowSetup(t, 3, rec, laf.WithSendQueue(16, 256<<10))
	payload := strings.Repeat("x", 32<<10)
	// Pace the broadcasts on the readers, so only the one that never reads
	// falls behind. Its kernel buffers fill, then its queue, then it is
	// closed; the bound on i only stops a broken library from looping.
	for i := 0; slow.Context().Err() == nil && i < 10_000; i++ {
		require.NoError(t, srv.Endpoint.Broadcast(context.Background(), laf.Text(strconv.Itoa(i)+":"+payload)))
		for _, c := range fast {
			got := c.ReadText()
			require.Equal(t, strconv.Itoa(i)+":"+payload, got)
		}
	}
	require.Error(t, slow.Context().Err(), "never-reading socket was not closed")
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, slow.ID(), ev.SocketID)
	assert.Equal(t, 1008, ev.Params.Code)
	assert.Equal(t, laf.CauseSlowConsumer, ev.Params.Cause)
	assert.ErrorIs(t, slow.Send("more"), laf.ErrClosed)
	assert.Equal(t, uint64(1), srv.Endpoint.Stats().SlowClosed)

	// The others are unaffected.
	require.NoError(t, srv.Endpoint.Broadcast(context.Background(), laf.Text("after")))
	for _, c := range fast {
		c.ExpectText("after")
	}
	assert.Equal(t, 3, srv.Endpoint.Len())
}

// fillUntilRefused sends big numbered messages to s until the queue
// refuses one, and returns how many were sent in all.
func fillUntil(t *testing.T, s *laf.Socket, stop func(i int, err error) bool) int {
	t.Helper()
	payload := strings.Repeat("y", 64<<10)
	for i := range 100_000 {
		err := s.Send(strconv.Itoa(i) + ":" + payload)
		if stop(i, err) {
			return i + 1
		}
	}
	t.Fatal("queue never filled")
	return 0
}

func seq(t *testing.T, msg string) int {
	t.Helper()
	n, _, ok := strings.Cut(msg, ":")
	require.True(t, ok, "unexpected message %.20q", msg)
	i, err := strconv.Atoi(n)
	require.NoError(t, err)
	return i
}

func TestDropNewest(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithSendQueue(4, 1<<20), laf.WithSlowPolicy(laf.DropNewest))
	c := srv.Dial(t)
	s := onlySocket(t, srv.Endpoint)
	refused := -1
	sent := fillUntil(t, s, func(i int, err error) bool {
		if err != nil {
			require.ErrorIs(t, err, laf.ErrQueueFull)
			refused = i
			return true
		}
		return false
	})
	assert.Equal(t, uint64(1), srv.Endpoint.Stats().Dropped)
	require.NoError(t, s.Context().Err(), "DropNewest must keep the socket open")

	// Everything before the refused message arrives, in order.
	for want := range sent - 1 {
		assert.Equal(t, want, seq(t, c.ReadText()))
	}
	require.NoError(t, s.Send("after"))
	c.ExpectText("after")
	assert.Equal(t, sent-1, refused)
}

func TestDropOldest(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithSendQueue(4, 1<<20), laf.WithSlowPolicy(laf.DropOldest))
	c := srv.Dial(t)
	s := onlySocket(t, srv.Endpoint)
	// Send until some were dropped, then a few more.
	extra := 0
	sent := fillUntil(t, s, func(i int, err error) bool {
		require.NoError(t, err, "DropOldest accepts every new message")
		if srv.Endpoint.Stats().Dropped > 0 {
			extra++
		}
		return extra > 10
	})
	require.NoError(t, s.Context().Err(), "DropOldest must keep the socket open")
	dropped := int(srv.Endpoint.Stats().Dropped)

	// What arrives is in order, ends with the newest, and has a gap where
	// the oldest queued were dropped.
	last, got := -1, 0
	for last != sent-1 {
		i := seq(t, c.ReadText())
		require.Greater(t, i, last)
		last = i
		got++
	}
	assert.Equal(t, sent, got+dropped, "every message either arrived or was counted as dropped")
	assert.Positive(t, dropped)
}

func TestPingTimeoutClosesUnresponsivePeer(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithPing(20*time.Millisecond, 50*time.Millisecond))
	srv.Dial(t) // never reads, so never answers pings
	rec.Expect(t, laf.MethodConnection)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, laf.CausePingTimeout, ev.Params.Cause)
	assert.Equal(t, 1006, ev.Params.Code)
}

// A reply is written before the socket reads on, so a peer that sends and
// never reads is held back by TCP, not queued for; the ping, which cannot
// get through either, then drops it.
func TestPeerThatSendsButNeverReadsIsDropped(t *testing.T) {
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func, laf.WithPing(50*time.Millisecond, 200*time.Millisecond))
	conn, _ := rawUpgrade(t, srv.URL)
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	rec.Expect(t, laf.MethodConnection)
	// Masked binary frames of 16 KiB with a zero mask key, sent until the
	// server stops reading them or drops the connection.
	frame := append([]byte{0x82, 0x80 | 126, 0x40, 0x00, 0, 0, 0, 0}, make([]byte, 16<<10)...)
	go func() {
		for {
			if _, err := conn.Write(frame); err != nil {
				return
			}
		}
	}()
	for {
		ev := rec.Next(t)
		if ev.Method == laf.MethodMessage {
			continue
		}
		if ev.Method == laf.MethodError {
			ev = rec.Expect(t, laf.MethodClose)
		}
		require.Equal(t, laf.MethodClose, ev.Method)
		assert.Equal(t, 1006, ev.Params.Code)
		assert.Contains(t, []laf.CloseCause{laf.CausePingTimeout, laf.CauseAbnormal}, ev.Params.Cause)
		break
	}
	assert.Zero(t, srv.Endpoint.Len())
}

func TestPingKeepsAnsweringPeerOpen(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithPing(10*time.Millisecond, 5*time.Second))
	c, pings := dialCountingPings(t, srv)
	expectPings(t, c, pings, 5)
	assert.Equal(t, 1, srv.Endpoint.Len())
}

// dialCountingPings dials srv with a client that counts the pings it gets.
func dialCountingPings(t *testing.T, srv *laftest.Server) (*laftest.Conn, <-chan struct{}) {
	t.Helper()
	pings := make(chan struct{}, 100)
	ws, _, err := websocket.Dial(context.Background(), srv.WSURL, &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { ws.CloseNow() })
	return (&laftest.Conn{WS: ws, Timeout: laftest.DefaultTimeout}).Bind(t), pings
}

// expectPings reads from c from now on, which answers pings, and waits
// for n of them while the connection stays open.
func expectPings(t *testing.T, c *laftest.Conn, pings <-chan struct{}, n int) {
	t.Helper()
	readCtx := c.WS.CloseRead(context.Background()) // any message or close ends it
	for range n {
		select {
		case <-pings:
		case <-readCtx.Done():
			t.Fatal("connection closed while answering pings")
		case <-time.After(laftest.DefaultTimeout):
			t.Fatal("no ping")
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	var mu sync.Mutex
	var lastMsg, closedAt time.Time
	closed := make(chan laf.Params, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		mu.Lock()
		defer mu.Unlock()
		switch ctx.Method {
		case laf.MethodMessage:
			lastMsg = time.Now()
			return ctx.Socket.Send("echo")
		case laf.MethodClose:
			closedAt = time.Now()
			closed <- ctx.Params
		}
		return nil
	}, laf.WithIdleTimeout(idle))
	c := srv.Dial(t)
	for range 5 {
		c.Send("keep me")
		c.ExpectText("echo")
		time.Sleep(idle / 4)
	}
	assert.Equal(t, "idle", c.ExpectClose(websocket.StatusNormalClosure))
	p := <-closed
	assert.Equal(t, laf.CauseIdle, p.Cause)
	assert.Equal(t, 1000, p.Code)
	mu.Lock()
	defer mu.Unlock()
	assert.GreaterOrEqual(t, closedAt.Sub(lastMsg), idle, "closed before the idle timeout had passed")
}

func TestMaxLifetime(t *testing.T) {
	const life = 150 * time.Millisecond
	var openedAt time.Time
	closed := make(chan time.Time, 1)
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		switch ctx.Method {
		case laf.MethodConnection:
			openedAt = time.Now()
		case laf.MethodClose:
			closed <- time.Now()
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func, laf.WithMaxLifetime(life))
	// The lifetime counts from the upgrade, which is before the connection
	// event, so the clock starts before the dial.
	dialed := time.Now()
	c := srv.Dial(t)
	assert.Equal(t, "lifetime", c.ExpectClose(websocket.StatusGoingAway))
	rec.Expect(t, laf.MethodConnection)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, laf.CauseLifetime, ev.Params.Cause)
	closedAt := <-closed
	// Each socket's lifetime is drawn between 0.9×life and life.
	assert.GreaterOrEqual(t, closedAt.Sub(dialed), life-life/10)
	assert.True(t, closedAt.After(openedAt))
}

func TestShutdownClosesEverySocketOnce(t *testing.T) {
	const n = 100
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	clients := make([]*laftest.Conn, n)
	for i := range clients {
		clients[i] = srv.Dial(t)
		rec.Expect(t, laf.MethodConnection)
	}
	codes := make(chan websocket.StatusCode, n)
	for _, c := range clients {
		go func() {
			_, _, err := c.WS.Read(context.Background())
			codes <- websocket.CloseStatus(err)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, srv.Endpoint.Shutdown(ctx))

	for range n {
		assert.Equal(t, websocket.StatusGoingAway, <-codes)
	}
	seen := map[string]bool{}
	for range n {
		ev := rec.Expect(t, laf.MethodClose)
		assert.False(t, seen[ev.SocketID], "two close events for one socket")
		seen[ev.SocketID] = true
		assert.Equal(t, laf.CauseShutdown, ev.Params.Cause)
		assert.Equal(t, 1001, ev.Params.Code)
	}
	assert.Zero(t, rec.Pending())
	assert.Equal(t, 0, srv.Endpoint.Len())

	_, resp, err := srv.TryDial(nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.ErrorIs(t, srv.Endpoint.Broadcast(context.Background(), laf.Text("x")), nil)
}

func TestShutdownDeadlineClosesTheRestHard(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	srv.Dial(t) // never reads, so never answers the close
	rec.Expect(t, laf.MethodConnection)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Endpoint.Shutdown(ctx), context.DeadlineExceeded)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, laf.CauseShutdown, ev.Params.Cause)
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == 0 }, laftest.DefaultTimeout, time.Millisecond)
}

func TestNoGoroutineLeftBehind(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	func() {
		srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
			if ctx.Method == laf.MethodMessage {
				ctx.Socket.Join("room")
				return ctx.Socket.Send("echo")
			}
			return nil
		}, laf.WithPing(5*time.Millisecond, time.Second), laf.WithIdleTimeout(time.Hour), laf.WithMaxLifetime(time.Hour))
		var conns []*laftest.Conn
		for range 20 {
			c := srv.Dial(t)
			c.Send("hi")
			c.ExpectText("echo")
			conns = append(conns, c)
		}
		srv.Endpoint.Broadcast(context.Background(), laf.Text("bye"))
		for i, c := range conns {
			c.ExpectText("bye")
			if i%2 == 0 {
				c.Close(1000, "")
			} else {
				c.WS.CloseNow()
			}
		}
		require.Eventually(t, func() bool { return srv.Endpoint.Len() == 0 }, laftest.DefaultTimeout, time.Millisecond)
		srv.Close()
	}()
}

func TestStatsCount(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.Send(strings.ToUpper(ctx.Params.Data.String()))
		}
		return nil
	})
	c := srv.Dial(t)
	c.Send("abc")
	c.ExpectText("ABC")
	c.Send("de")
	c.ExpectText("DE")
	st := srv.Endpoint.Stats()
	assert.Equal(t, int64(1), st.Live)
	assert.Equal(t, uint64(1), st.Accepted)
	assert.Equal(t, uint64(2), st.MessagesIn)
	assert.Equal(t, uint64(5), st.BytesIn)
	// A message is counted once its write has returned, which may be just
	// after the peer has read it.
	require.Eventually(t, func() bool {
		st := srv.Endpoint.Stats()
		return st.MessagesOut == 2 && st.BytesOut == 5
	}, laftest.DefaultTimeout, time.Millisecond, "out: %+v", srv.Endpoint.Stats())

	c.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool { return srv.Endpoint.Stats().Live == 0 }, laftest.DefaultTimeout, time.Millisecond)
	// Live drops just before the close is counted.
	require.Eventually(t, func() bool { return srv.Endpoint.Stats().Closes[laf.CausePeer] == 1 }, laftest.DefaultTimeout, time.Millisecond)
	st = srv.Endpoint.Stats()
	assert.Zero(t, st.Closes[laf.CauseIdle])
	b, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"closes":{"peer":1,"abnormal":0,"server":0,`)
	var back laf.Stats
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, st, back, "a Stats served as JSON reads back")
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}
