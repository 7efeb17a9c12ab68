package laf_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventOrderPerSocket(t *testing.T) {
	var running atomic.Int32
	var overlapped atomic.Bool
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if running.Add(1) > 1 {
			overlapped.Store(true)
		}
		defer running.Add(-1)
		if ctx.Method == laf.MethodMessage {
			time.Sleep(time.Millisecond) // widen any window for overlap
			return ctx.Socket.Send("ack " + ctx.Params.Data.String())
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)

	conn := rec.Expect(t, laf.MethodConnection)
	const n = 50
	for i := range n {
		c.Send(fmt.Sprint(i))
	}
	for i := range n {
		c.ExpectText(fmt.Sprint("ack ", i))
	}
	c.Close(4000, "bye")

	for i := range n {
		ev := rec.Expect(t, laf.MethodMessage)
		assert.Equal(t, conn.SocketID, ev.SocketID)
		assert.Equal(t, fmt.Sprint(i), ev.Params.Data.String())
		assert.False(t, ev.Params.IsBinary)
	}
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 4000, ev.Params.Code)
	assert.Equal(t, "bye", ev.Params.Reason)
	assert.Equal(t, laf.CausePeer, ev.Params.Cause)
	assert.False(t, overlapped.Load(), "handler ran concurrently with itself")
	assert.Zero(t, rec.Pending(), "events after close")
}

func TestSocketsRunInParallel(t *testing.T) {
	// Two sockets' handlers must be able to wait for each other.
	var arrived sync.WaitGroup
	arrived.Add(2)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			arrived.Done()
			arrived.Wait()
			return ctx.Socket.Send("both here")
		}
		return nil
	})
	a, b := srv.Dial(t), srv.Dial(t)
	a.Send("x")
	b.Send("y")
	a.ExpectText("both here")
	b.ExpectText("both here")
}

func TestCloseEventOnTCPDrop(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)
	rec.Expect(t, laf.MethodConnection)
	c.WS.CloseNow() // no close frame

	ev := rec.Expect(t, laf.MethodError)
	assert.Error(t, ev.Params.Err)
	ev = rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 1006, ev.Params.Code)
	assert.Equal(t, laf.CauseAbnormal, ev.Params.Cause)
	assert.Equal(t, 0, srv.Endpoint.Len())
}

func TestCloseFromServerAndSendsAfterClose(t *testing.T) {
	type closeSeen struct {
		ev         laftest.Event
		registered bool
		sendErr    error
		ctxDone    bool
	}
	seen := make(chan closeSeen, 1)
	var ep *laf.Endpoint
	ep = laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodClose {
			_, registered := ep.Socket(ctx.Socket.ID())
			seen <- closeSeen{
				ev:         laftest.Event{Method: ctx.Method, Params: ctx.Params},
				registered: registered,
				// Laf's demo sends from its close handler: harmless here.
				sendErr: ctx.Socket.Send("too late"),
				ctxDone: ctx.Socket.Context().Err() != nil,
			}
		}
		return nil
	})
	srv := laftest.Serve(t, ep)
	c := srv.Dial(t)
	s := onlySocket(t, ep)

	require.NoError(t, s.Send("before close"))
	require.NoError(t, s.Close(4001, "kicked"))
	assert.ErrorIs(t, s.Send("after close"), laf.ErrClosed)
	assert.ErrorIs(t, s.Close(4002, "again"), laf.ErrClosed)

	c.ExpectText("before close")
	assert.Equal(t, "kicked", c.ExpectClose(4001))

	got := <-seen
	assert.Equal(t, 4001, got.ev.Params.Code)
	assert.Equal(t, "kicked", got.ev.Params.Reason)
	assert.Equal(t, laf.CauseServer, got.ev.Params.Cause)
	assert.False(t, got.registered, "socket still in registry during close event")
	assert.ErrorIs(t, got.sendErr, laf.ErrClosed)
	assert.True(t, got.ctxDone, "socket context not done by close event")
	assert.ErrorIs(t, s.SendBinary([]byte{1}), laf.ErrClosed)
	assert.ErrorIs(t, s.SendJSON(1), laf.ErrClosed)
}

func TestCloseRejectsUnsendableCodes(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil })
	srv.Dial(t)
	s := onlySocket(t, srv.Endpoint)
	for _, code := range []int{0, 999, 1005, 1006, 1015, 2000, 5000} {
		assert.Error(t, s.Close(code, ""), "code %d", code)
	}
	assert.Error(t, s.Close(4000, strings.Repeat("x", 124)))
	assert.NoError(t, s.Send("still open"))
}

func TestReadLimit(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithReadLimit(16))
	c := srv.Dial(t)
	rec.Expect(t, laf.MethodConnection)
	c.Send(strings.Repeat("a", 16)) // at the limit: fine
	assert.Equal(t, 16, len(rec.Expect(t, laf.MethodMessage).Params.Data))
	c.Send(strings.Repeat("a", 17))
	reason := c.ExpectClose(websocket.StatusMessageTooBig)

	ev := rec.Expect(t, laf.MethodError)
	assert.ErrorIs(t, ev.Params.Err, laf.ErrMessageTooBig)
	ev = rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 1009, ev.Params.Code)
	assert.Equal(t, reason, ev.Params.Reason, "the close event reports the reason the peer got")
	assert.Equal(t, laf.CauseReadLimit, ev.Params.Cause)
}

func TestDefaultReadLimit(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)
	c.SendBinary(make([]byte, laf.DefaultReadLimit))
	c.SendBinary(make([]byte, 10*laf.DefaultReadLimit)) // far over
	c.ExpectClose(websocket.StatusMessageTooBig)
	rec.Expect(t, laf.MethodConnection)
	assert.True(t, rec.Expect(t, laf.MethodMessage).Params.IsBinary)
	rec.Expect(t, laf.MethodError)
	rec.Expect(t, laf.MethodClose)
}

func TestInvalidUTF8(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)
	c.SendBinary([]byte{0xff, 0xfe}) // fine as binary
	require.NoError(t, c.WS.Write(context.Background(), websocket.MessageText, []byte{'o', 'k', 0xff}))
	c.ExpectClose(websocket.StatusInvalidFramePayloadData)

	rec.Expect(t, laf.MethodConnection)
	assert.Equal(t, []byte{0xff, 0xfe}, []byte(rec.Expect(t, laf.MethodMessage).Params.Data))
	assert.ErrorIs(t, rec.Expect(t, laf.MethodError).Params.Err, laf.ErrInvalidUTF8)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 1007, ev.Params.Code)
	assert.Equal(t, laf.CauseProtocol, ev.Params.Cause)
}

func TestPeerCloseReasonNotUTF8Gets1007(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	conn, br := rawUpgrade(t, srv.URL)
	rec.Expect(t, laf.MethodConnection)

	// A masked close frame: code 1000, reason 0xff 0xfe. The mask is
	// zero, so the payload goes as it is.
	_, err := conn.Write([]byte{0x88, 0x80 | 4, 0, 0, 0, 0, 0x03, 0xe8, 0xff, 0xfe})
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(laftest.DefaultTimeout))
	rest, _ := io.ReadAll(br) // until the server drops the connection
	want := append([]byte{0x88, 2 + byte(len("invalid UTF-8")), 0x03, 0xef}, "invalid UTF-8"...)
	assert.Equal(t, want, rest, "want close 1007 and nothing else")

	assert.ErrorIs(t, rec.Expect(t, laf.MethodError).Params.Err, laf.ErrInvalidUTF8)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 1007, ev.Params.Code)
	assert.Equal(t, laf.CauseProtocol, ev.Params.Cause)
}

func TestProtocolError(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	conn, br := rawUpgrade(t, srv.URL)
	rec.Expect(t, laf.MethodConnection)

	// A masked text frame with the reserved RSV2 bit set.
	_, err := conn.Write([]byte{0x80 | 0x20 | 0x1, 0x80, 1, 2, 3, 4})
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(laftest.DefaultTimeout))
	head := make([]byte, 4)
	_, err = io.ReadFull(br, head)
	require.NoError(t, err)
	assert.Equal(t, byte(0x88), head[0], "want a close frame")
	assert.Equal(t, 1002, int(head[2])<<8|int(head[3]))

	assert.ErrorIs(t, rec.Expect(t, laf.MethodError).Params.Err, laf.ErrProtocol)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 1002, ev.Params.Code)
	assert.Equal(t, laf.CauseProtocol, ev.Params.Cause)
}

func TestHandlerErrorClosesWith1011(t *testing.T) {
	var logs syncBuffer
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return errors.New("boom")
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func, laf.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c := srv.Dial(t)
	c.Send("first")
	c.Send("second") // must not be delivered
	c.ExpectClose(websocket.StatusInternalError)

	rec.Expect(t, laf.MethodConnection)
	rec.Expect(t, laf.MethodMessage)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 1011, ev.Params.Code)
	assert.Equal(t, laf.CauseHandlerError, ev.Params.Cause)
	assert.Contains(t, logs.String(), "boom")
	assert.Equal(t, uint64(1), srv.Endpoint.Stats().HandlerErrors)
}

func TestHandlerCloseError(t *testing.T) {
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			ctx.Socket.Send("sent before the close")
			return fmt.Errorf("check token: %w", &laf.CloseError{Code: 4401, Reason: "unauthorized"})
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)
	c.Send("token?")
	c.ExpectText("sent before the close")
	assert.Equal(t, "unauthorized", c.ExpectClose(4401))
	rec.Expect(t, laf.MethodConnection)
	rec.Expect(t, laf.MethodMessage)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 4401, ev.Params.Code)
	assert.Equal(t, "unauthorized", ev.Params.Reason)
}

func TestPanicIsRecoveredAndOthersCarryOn(t *testing.T) {
	var logs syncBuffer
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			if ctx.Params.Data.String() == "panic" {
				panic("handler bug")
			}
			return ctx.Socket.Send("echo " + ctx.Params.Data.String())
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func, laf.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	good, bad := srv.Dial(t), srv.Dial(t)
	bad.Send("panic")
	bad.ExpectClose(websocket.StatusInternalError)
	good.Send("still here")
	good.ExpectText("echo still here")
	assert.Contains(t, logs.String(), "handler bug")
	assert.Contains(t, logs.String(), "handler_test.go", "stack not logged")
	assert.Equal(t, uint64(1), srv.Endpoint.Stats().Panics)
	// A panic in the close event is recovered too.
	srv2 := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodClose {
			panic("in close")
		}
		return nil
	})
	srv2.Dial(t).Close(1000, "")
	assert.Eventually(t, func() bool { return srv2.Endpoint.Stats().Panics == 1 }, laftest.DefaultTimeout, time.Millisecond)
}

func TestConnectionErrorClosesBeforeAnyMessage(t *testing.T) {
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection && ctx.Request.URL.Query().Get("token") != "secret" {
			return &laf.CloseError{Code: 4401, Reason: "unauthorized"}
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func)
	c := srv.Dial(t)
	c.Send("sneaky") // may arrive before the close is decided: never delivered
	c.ExpectClose(4401)
	rec.Expect(t, laf.MethodConnection)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, 4401, ev.Params.Code)
	assert.Zero(t, rec.Pending())
}

func TestIDsAndPushFromAnotherHandler(t *testing.T) {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID())
		}
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("/ws", ep)
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := ep.SendSocket(r.Context(), r.URL.Query().Get("id"), laf.Text(string(body))); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
		}
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()

	const n = 20
	clients := make([]*websocket.Conn, n)
	ids := make(map[string]int)
	for i := range clients {
		ws, _, err := websocket.Dial(context.Background(), "ws"+hs.URL[4:]+"/ws", nil)
		require.NoError(t, err)
		defer ws.CloseNow()
		clients[i] = ws
		_, id, err := ws.Read(context.Background())
		require.NoError(t, err)
		raw, err := base64.RawURLEncoding.DecodeString(string(id))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(raw)*8, 128)
		ids[string(id)] = i
		s, ok := ep.Socket(string(id))
		require.True(t, ok)
		assert.Equal(t, string(id), s.ID())
	}
	assert.Len(t, ids, n, "ids not unique")
	assert.Equal(t, n, ep.Len())

	for id, i := range ids {
		resp, err := http.Post(hs.URL+"/push?id="+id, "text/plain", strings.NewReader(fmt.Sprint("for ", i)))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, msg, err := clients[i].Read(context.Background())
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint("for ", i), string(msg))
	}
	resp, err := http.Post(hs.URL+"/push?id=nobody", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestConcurrentSendsArriveWholeAndInOrder(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithSendQueue(1000, 4<<20)) // room for everything: this is not the slow-consumer test
	c := srv.Dial(t)
	s := onlySocket(t, srv.Endpoint)
	const senders, each = 8, 100
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				// Big enough to take several writes on the wire.
				msg := fmt.Sprintf("%d:%d:%s", g, i, strings.Repeat("x", 2000))
				if g%2 == 0 {
					assert.NoError(t, s.Send(msg))
				} else {
					assert.NoError(t, s.SendBinary([]byte(msg)))
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		_, data := c.Read()
		var g, i int
		var rest string
		_, err := fmt.Sscanf(string(data), "%d:%d:%s", &g, &i, &rest)
		require.NoError(t, err)
		require.Equal(t, next[g], i, "sender %d out of order", g)
		require.Equal(t, strings.Repeat("x", 2000), rest)
		next[g]++
	}
	wg.Wait()
}

func TestSendJSONAndData(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method != laf.MethodMessage {
			return nil
		}
		var in struct{ N int }
		if err := ctx.Params.Data.JSON(&in); err != nil {
			return err
		}
		return ctx.Socket.SendJSON(map[string]int{"double": in.N * 2})
	})
	c := srv.Dial(t)
	c.SendJSON(map[string]int{"N": 21})
	var out map[string]int
	c.ReadJSON(&out)
	assert.Equal(t, 42, out["double"])
	assert.Error(t, onlySocket(t, srv.Endpoint).SendJSON(make(chan int)))
}

func TestCrossOriginRefusedByDefault(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil })
	_, resp, err := srv.TryDial(&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, uint64(1), srv.Endpoint.Stats().Refused)

	allowed := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil },
		laf.WithOriginPatterns("*.example"))
	c, _, err := allowed.TryDial(&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://good.example"}}})
	require.NoError(t, err)
	c.WS.CloseNow()
	_, resp, err = allowed.TryDial(&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://good.other"}}})
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestAuthHook(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithAuth(func(r *http.Request) (string, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer alice":
			return "alice", nil
		case "Bearer banned":
			return "", &laf.HTTPError{Status: http.StatusForbidden, Message: "banned"}
		default:
			return "", errors.New("no token")
		}
	}))
	_, resp, err := srv.TryDial(nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	_, resp, err = srv.TryDial(&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer banned"}}})
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Zero(t, rec.Pending(), "refused upgrades must not reach the handler")

	srv.DialOptions(t, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer alice"}}})
	id := rec.Expect(t, laf.MethodConnection).SocketID
	s, ok := srv.Endpoint.Socket(id)
	require.True(t, ok)
	assert.Equal(t, "alice", s.Identity())
}

func TestSubprotocols(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send("proto=" + ctx.Socket.Subprotocol())
		}
		return nil
	}, laf.WithSubprotocols("chat.v2", "chat.v1"))
	c := srv.DialOptions(t, &websocket.DialOptions{Subprotocols: []string{"chat.v1"}})
	c.ExpectText("proto=chat.v1")
	assert.Equal(t, "chat.v1", c.WS.Subprotocol())
}

func TestNonWebSocketRequestGets4xx(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil })
	client := &http.Client{Timeout: laftest.DefaultTimeout}
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.GreaterOrEqual(t, resp.StatusCode, 400)
	assert.Less(t, resp.StatusCode, 500)
}

func TestRequestOnEveryEvent(t *testing.T) {
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if ctx.Request == nil || ctx.Request.URL.Query().Get("room") != "lobby" || ctx.Shared == nil {
			return errors.New("missing request or shared")
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func)
	c, _, err := websocket.Dial(context.Background(), srv.WSURL+"?room=lobby", nil)
	require.NoError(t, err)
	c.Write(context.Background(), websocket.MessageText, []byte("hi"))
	c.Close(1000, "")
	rec.Expect(t, laf.MethodConnection)
	rec.Expect(t, laf.MethodMessage)
	assert.Equal(t, 1000, rec.Expect(t, laf.MethodClose).Params.Code)
	assert.Zero(t, srv.Endpoint.Stats().HandlerErrors)
}

// onlySocket waits for the endpoint's one socket and returns it.
func onlySocket(t *testing.T, ep *laf.Endpoint) *laf.Socket {
	t.Helper()
	var found *laf.Socket
	require.Eventually(t, func() bool {
		n := 0
		ep.Range(func(s *laf.Socket) bool { found = s; n++; return true })
		return n == 1
	}, laftest.DefaultTimeout, time.Millisecond)
	return found
}

// rawUpgrade does a WebSocket handshake by hand, for sending bad frames.
func rawUpgrade(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, br, _ := rawUpgradeWith(t, url, "")
	return conn, br
}

// rawUpgradeWith upgrades a raw TCP connection, with extra header lines
// ("Name: value\r\n"), and returns the response's headers too.
func rawUpgradeWith(t *testing.T, url, extra string) (net.Conn, *bufio.Reader, http.Header) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", extra)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return conn, br, resp.Header
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNilFuncPanics(t *testing.T) {
	assert.Panics(t, func() { laf.Handler(nil) })
}

func TestZeroOptionsMeanDefaults(t *testing.T) {
	// A zero pong timeout would otherwise close every socket at its first
	// ping, and a zero queue budget refuse every send.
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.Send(strings.Repeat("z", 100))
		}
		return nil
	}, laf.WithPing(5*time.Millisecond, 0), laf.WithSendQueue(0, 0), laf.WithReadLimit(0), laf.WithHeartbeat(0))
	c, pings := dialCountingPings(t, srv)
	c.Send(strings.Repeat("a", 1000))
	c.ExpectText(strings.Repeat("z", 100))
	expectPings(t, c, pings, 3)
}

func TestFragmentedMessageArrivesWhole(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithReadLimit(8))
	c := srv.Dial(t)
	w, err := c.WS.Writer(context.Background(), websocket.MessageText)
	require.NoError(t, err)
	for _, part := range []string{"frag", "ment"} { // a frame per Write
		_, err = w.Write([]byte(part))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	rec.Expect(t, laf.MethodConnection)
	assert.Equal(t, "fragment", rec.Expect(t, laf.MethodMessage).Params.Data.String())

	// Over the limit only across frames: still refused.
	w, err = c.WS.Writer(context.Background(), websocket.MessageText)
	require.NoError(t, err)
	for _, part := range []string{"12345", "6789"} {
		w.Write([]byte(part))
	}
	w.Close()
	c.ExpectClose(websocket.StatusMessageTooBig)
}
