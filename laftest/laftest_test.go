package laftest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
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

// app is what users build: an Endpoint of their own at /ws, among plain
// HTTP handlers on one mux. Its constructor takes a middleware for its
// Func, which is where a test puts Recorder.Wrap.
type app struct {
	mux *http.ServeMux
	ep  *laf.Endpoint
}

func newApp(wrap func(laf.Func) laf.Func) *app {
	a := &app{mux: http.NewServeMux()}
	fn := laf.Func(a.ws)
	if wrap != nil {
		fn = wrap(fn)
	}
	a.ep = laf.Handler(fn, laf.WithAuth(func(r *http.Request) (string, error) {
		user := r.URL.Query().Get("user")
		if user == "" || r.Header.Get("X-Token") != "secret-"+user {
			return "", &laf.HTTPError{Status: http.StatusUnauthorized}
		}
		return user, nil
	}))
	a.mux.Handle("/ws", a.ep)
	a.mux.HandleFunc("/live", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, a.ep.Len())
	})
	return a
}

// ws greets each socket with its identity, answers "close" by closing
// with 4001 "bye", and any other message m with "re: m".
func (a *app) ws(ctx *laf.FunctionContext) error {
	switch ctx.Method {
	case laf.MethodConnection:
		return ctx.Socket.Send("hello " + ctx.Socket.Identity())
	case laf.MethodMessage:
		if ctx.Params.Data.String() == "close" {
			return &laf.CloseError{Code: 4001, Reason: "bye"}
		}
		return ctx.Socket.Send("re: " + ctx.Params.Data.String())
	}
	return nil
}

func token(user string) *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"X-Token": {"secret-" + user}}}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestServeHandlerMux(t *testing.T) {
	a := newApp(nil)
	srv := laftest.ServeHandler(t, a.mux, a.ep)
	assert.Same(t, a.ep, srv.Endpoint)
	assert.Equal(t, "ws"+strings.TrimPrefix(srv.URL, "http"), srv.WSURL)
	assert.Equal(t, "0", get(t, srv.URL+"/live"))

	alice := srv.DialPath(t, "/ws?user=alice", token("alice"))
	alice.ExpectText("hello alice")
	alice.Send("hi")
	alice.ExpectText("re: hi")
	assert.Equal(t, "1", get(t, srv.URL+"/live"))

	// Refusals, with their status: no token, and a path the mux lacks.
	_, resp, err := srv.TryDialPath("/ws?user=bob", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	_, resp, err = srv.TryDialPath("/nowhere", token("bob"))
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Once WSURL is the endpoint's, Dial and a bare query reach it too.
	srv.WSURL += "/ws"
	bob := srv.DialPath(t, "?user=bob", token("bob"))
	bob.ExpectText("hello bob")
	_, resp, err = srv.TryDial(nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	srv.WSURL += "?user=carol"
	srv.DialOptions(t, token("carol")).ExpectText("hello carol")
}

func TestServeHandlerDialFailure(t *testing.T) {
	a := newApp(nil)
	srv := laftest.ServeHandler(t, a.mux, a.ep)
	msg := fails(func(tb testing.TB) { srv.DialPath(tb, "/ws?user=dave", nil) })
	assert.Contains(t, msg, "/ws?user=dave: HTTP 401")
	msg = fails(func(tb testing.TB) { srv.Dial(tb) }) // "/" is not the endpoint
	assert.Contains(t, msg, "HTTP 404")
	msg = fails(func(tb testing.TB) { srv.DialPath(tb, "%zz", nil) })
	assert.Contains(t, msg, "laftest: dial \"%zz\"")
}

func TestServeHandlerWithoutEndpoint(t *testing.T) {
	// A plain coder/websocket handler that drops the connection without
	// a close frame: WaitClose reports -1.
	srv := laftest.ServeHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Write(r.Context(), websocket.MessageText, []byte("about to drop"))
		c.CloseNow()
	}), nil)
	assert.Nil(t, srv.Endpoint)
	c := srv.DialPath(t, "/anywhere?x=1", nil)
	code, reason := c.WaitClose()
	assert.Equal(t, websocket.StatusCode(-1), code)
	assert.Empty(t, reason)
}

func TestNewServerConn(t *testing.T) {
	rec := laftest.NewRecorder(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	})
	srv := laftest.NewServer(t, rec.Func)
	assert.Equal(t, "ws"+strings.TrimPrefix(srv.URL, "http"), srv.WSURL)
	c := srv.Dial(t)
	connected := rec.Expect(t, laf.MethodConnection)
	assert.NotEmpty(t, connected.SocketID)

	c.Send("text")
	c.ExpectText("text")
	c.SendBinary([]byte{0, 1, 2})
	c.ExpectBinary([]byte{0, 1, 2})
	c.SendJSON(map[string]int{"n": 7})
	var v struct{ N int }
	c.ReadJSON(&v)
	assert.Equal(t, 7, v.N)
	c.Send("again")
	assert.Equal(t, "again", c.ReadText())
	c.SendBinary([]byte("raw"))
	binary, data := c.Read()
	assert.True(t, binary)
	assert.Equal(t, "raw", string(data))

	for _, want := range []string{"text", "\x00\x01\x02", `{"n":7}`, "again", "raw"} {
		ev := rec.Expect(t, laf.MethodMessage)
		assert.Equal(t, connected.SocketID, ev.SocketID)
		assert.Equal(t, want, ev.Params.Data.String())
	}
	assert.Zero(t, rec.Pending())
	c.Close(websocket.StatusNormalClosure, "done")
	ev := rec.Next(t)
	assert.Equal(t, laf.MethodClose, ev.Method)
	assert.Equal(t, 1000, ev.Params.Code)
	assert.Equal(t, "done", ev.Params.Reason)
	assert.Equal(t, laf.CausePeer, ev.Params.Cause)
}

func TestServe(t *testing.T) {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Request.URL.RawQuery)
		}
		return nil
	})
	srv := laftest.Serve(t, ep)
	assert.Same(t, ep, srv.Endpoint)
	srv.DialPath(t, "?room=lobby", nil).ExpectText("room=lobby")
	srv.DialPath(t, "/deeper/path?a=b", nil).ExpectText("a=b") // the endpoint serves every path
	srv.Dial(t).ExpectText("")
	assert.Panics(t, srv.Start, "a started server does not start again")
}

// tickerFunc sends "tick N" on connection for N from 0 to 99, and then
// every 2 ms from its own goroutine; it answers "bin" with a binary
// message and any other message m with "re: m".
func tickerFunc(ctx *laf.FunctionContext) error {
	switch ctx.Method {
	case laf.MethodConnection:
		s := ctx.Socket
		for i := range 100 {
			if err := s.Send("tick " + strconv.Itoa(i)); err != nil {
				return err
			}
		}
		go func() {
			tk := time.NewTicker(2 * time.Millisecond)
			defer tk.Stop()
			for i := 100; ; i++ {
				select {
				case <-s.Context().Done():
					return
				case <-tk.C:
					if s.Send("tick "+strconv.Itoa(i)) != nil {
						return
					}
				}
			}
		}()
	case laf.MethodMessage:
		if ctx.Params.Data.String() == "bin" {
			return ctx.Socket.SendBinary([]byte{1, 2, 3})
		}
		return ctx.Socket.Send("re: " + ctx.Params.Data.String())
	}
	return nil
}

func TestReadUntilSkipsTicker(t *testing.T) {
	srv := laftest.NewServer(t, tickerFunc)
	c := srv.Dial(t)

	// The 100 ticks queued on connection come before the reply, so
	// ReadTextUntil skips at least those, and sees every tick in order.
	next, skipped := 0, 0
	c.Send("ping")
	got := c.ReadTextUntil(func(text string) bool {
		if n, ok := strings.CutPrefix(text, "tick "); ok {
			require.Equal(t, strconv.Itoa(next), n, "ticks in order, none lost")
			next++
			skipped++
			return false
		}
		return true
	})
	assert.Equal(t, "re: ping", got)
	assert.GreaterOrEqual(t, skipped, 100)

	c.Send("bin")
	binary, data := c.ReadUntil(func(binary bool, data []byte) bool { return binary })
	assert.True(t, binary)
	assert.Equal(t, []byte{1, 2, 3}, data)

	for i := range 20 {
		c.Send("n" + strconv.Itoa(i))
		c.ExpectTextEventually("re: n" + strconv.Itoa(i))
	}
}

func TestReadUntilFailures(t *testing.T) {
	srv := laftest.NewServer(t, tickerFunc)

	c := srv.Dial(t)
	c.Timeout = 300 * time.Millisecond
	msg := fails(func(tb testing.TB) {
		c.Bind(tb).ReadUntil(func(bool, []byte) bool { return false })
	})
	assert.Contains(t, msg, "laftest: no message matched within 300ms")

	a := newApp(nil)
	app := laftest.ServeHandler(t, a.mux, a.ep)
	c = app.DialPath(t, "/ws?user=eve", token("eve"))
	c.Send("close")
	msg = fails(func(tb testing.TB) {
		c.Bind(tb).ExpectTextEventually("never")
	})
	assert.Contains(t, msg, "laftest: read: ")
	assert.Contains(t, msg, "skipped 1, the last (binary false) \"hello eve\"")
}

// smallBuffers gives every connection it accepts small socket buffers, so
// that a peer that stops reading fills them, and the endpoint's queue,
// after a few kilobytes.
type smallBuffers struct {
	net.Listener
	accepted atomic.Int32
}

func (l *smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4 << 10)
		tc.SetReadBuffer(4 << 10)
	}
	l.accepted.Add(1)
	return c, nil
}

// smallReadBuffer is an HTTP client whose connections have a small
// receive buffer.
func smallReadBuffer() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4 << 10)
			}
			return c, err
		},
	}}
}

func TestNewUnstartedServerListener(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	ep := laf.Handler(rec.Func, laf.WithSendQueue(16, 16<<10))
	srv := laftest.NewUnstartedServer(t, ep, ep)
	assert.Empty(t, srv.WSURL, "not started")
	ln := &smallBuffers{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	require.True(t, strings.HasPrefix(srv.WSURL, "ws://"), srv.WSURL)

	c := srv.DialOptions(t, &websocket.DialOptions{HTTPClient: smallReadBuffer()})
	id := rec.Expect(t, laf.MethodConnection).SocketID
	assert.EqualValues(t, 1, ln.accepted.Load())

	// The client never reads. Push 1 KiB at a time, each once the last
	// is written, until one is not written within half a second (the
	// buffers are full, or the machine is slow), and then as fast as
	// possible until the queue (16 KiB) is over budget. With the small
	// buffers that takes some 50 KiB; with the defaults, loopback takes
	// megabytes. The bound is far above the one and far below the other.
	payload := make([]byte, 1<<10)
	const most = 1024
	pushed, pacing := 0, true
	for {
		err := ep.SendSocket(context.Background(), id, laf.Owned(payload, true))
		if err != nil {
			require.ErrorIs(t, err, laf.ErrQueueFull)
			break
		}
		pushed++
		require.Less(t, pushed, most, "a client that never reads took %d KiB", pushed)
		if pacing {
			pacing = written(ep, pushed, 500*time.Millisecond)
		}
	}
	t.Logf("over budget after %d KiB, %d KiB of it written", pushed+1, ep.Stats().MessagesOut)
	ev := rec.Expect(t, laf.MethodClose)
	assert.Equal(t, laf.CauseSlowConsumer, ev.Params.Cause)
	assert.Equal(t, 1008, ev.Params.Code)
	assert.EqualValues(t, 1, ep.Stats().SlowClosed)
	// The connection is gone, but WaitClose would first read what the
	// buffers hold, slowly through a window this small.
	c.WS.CloseNow()
}

// written waits up to d for ep to have written n messages, and reports
// whether it has.
func written(ep *laf.Endpoint, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for ep.Stats().MessagesOut < uint64(n) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func TestStartTLS(t *testing.T) {
	a := newApp(nil)
	srv := laftest.NewUnstartedServer(t, a.mux, a.ep)
	srv.StartTLS()
	require.True(t, strings.HasPrefix(srv.WSURL, "wss://"), srv.WSURL)
	c := srv.DialPath(t, "/ws?user=alice", token("alice"))
	c.ExpectText("hello alice")
	c2, _, err := srv.TryDialPath("/ws?user=bob", token("bob"))
	require.NoError(t, err)
	defer c2.Close(websocket.StatusNormalClosure, "")
	c2.Bind(t).ExpectText("hello bob")
}

func TestWrap(t *testing.T) {
	srv := laftest.NewServer(t, tickerFunc)
	// A connection dialed some other way.
	ws, _, err := websocket.Dial(context.Background(), srv.WSURL+"?raw=1", &websocket.DialOptions{
		Subprotocols: []string{"ignored"},
	})
	require.NoError(t, err)
	c := laftest.Wrap(t, ws)
	assert.Same(t, ws, c.WS)
	assert.Equal(t, laftest.DefaultTimeout, c.Timeout)
	c.Send("x")
	c.ExpectTextEventually("re: x")

	// Wrap's cleanup closes the connection; a zero Timeout is
	// DefaultTimeout.
	ws2, _, err := websocket.Dial(context.Background(), srv.WSURL, nil)
	require.NoError(t, err)
	fails(func(tb testing.TB) { laftest.Wrap(tb, ws2) })
	require.Error(t, ws2.Ping(context.Background()), "closed by the cleanup")
	ws3, _, err := websocket.Dial(context.Background(), srv.WSURL, nil)
	require.NoError(t, err)
	defer ws3.CloseNow()
	(&laftest.Conn{WS: ws3}).Bind(t).ExpectText("tick 0")

	assert.Contains(t, fails(func(tb testing.TB) { laftest.Wrap(tb, nil) }), "laftest: Wrap of a nil *websocket.Conn")
}

func TestRecorderWrap(t *testing.T) {
	rec := laftest.NewRecorder(func(*laf.FunctionContext) error {
		panic("Wrap must call its own Func, not NewRecorder's")
	})
	a := newApp(rec.Wrap)
	srv := laftest.ServeHandler(t, a.mux, a.ep)
	c := srv.DialPath(t, "/ws?user=alice", token("alice"))
	c.ExpectText("hello alice") // the app's Func still runs
	id := rec.Expect(t, laf.MethodConnection).SocketID
	c.Send("hi")
	c.ExpectText("re: hi")
	ev := rec.Expect(t, laf.MethodMessage)
	assert.Equal(t, id, ev.SocketID)
	assert.Equal(t, "hi", ev.Params.Data.String())
	c.Send("close")
	assert.Equal(t, "bye", c.ExpectClose(4001))
	rec.Expect(t, laf.MethodMessage)
	ev = rec.Expect(t, laf.MethodClose)
	assert.Equal(t, laf.CauseHandlerError, ev.Params.Cause)
	assert.Equal(t, 4001, ev.Params.Code)

	// With a nil Func, Wrap only records.
	only := laftest.NewRecorder(nil)
	srv = laftest.NewServer(t, only.Wrap(nil))
	srv.Dial(t).Close(websocket.StatusNormalClosure, "")
	only.Expect(t, laf.MethodConnection)
	only.Expect(t, laf.MethodClose)
}

// The endpoint lends Data and reuses its memory; the Recorder keeps
// copies.
func TestRecorderCopiesLentData(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithLentData())
	c := srv.Dial(t)
	rec.Expect(t, laf.MethodConnection)
	for i := range 50 {
		c.Send(strings.Repeat(strconv.Itoa(i%10), 100))
	}
	c.Close(websocket.StatusNormalClosure, "")
	for i := range 50 {
		assert.Equal(t, strings.Repeat(strconv.Itoa(i%10), 100), rec.Expect(t, laf.MethodMessage).Params.Data.String())
	}
	rec.Expect(t, laf.MethodClose)
}

func TestRecorderFailures(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func)
	srv.Dial(t)
	msg := fails(func(tb testing.TB) { rec.Expect(tb, laf.MethodClose) })
	assert.Contains(t, msg, "laftest: got event WebSocket:connection")
	assert.Contains(t, msg, "want WebSocket:close")
}

func TestTryDialRefused(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithAuth(func(r *http.Request) (string, error) {
		if r.Header.Get("X-Token") != "ok" {
			return "", &laf.HTTPError{Status: http.StatusForbidden}
		}
		return "u", nil
	}))
	c, resp, err := srv.TryDial(nil)
	require.Error(t, err)
	assert.Nil(t, c)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, fails(func(tb testing.TB) { srv.Dial(tb) }), "HTTP 403")

	c, resp, err = srv.TryDial(&websocket.DialOptions{HTTPHeader: http.Header{"X-Token": {"ok"}}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.PanicsWithValue(t, "laftest: Conn has no testing.TB: call Bind first", func() { c.Send("x") })
	c.Bind(t).Send("x")
	c.Close(websocket.StatusNormalClosure, "")
	rec.Expect(t, laf.MethodConnection)
	rec.Expect(t, laf.MethodMessage)
	assert.Equal(t, 1000, rec.Expect(t, laf.MethodClose).Params.Code)
}

func TestExpectClose(t *testing.T) {
	a := newApp(nil)
	srv := laftest.ServeHandler(t, a.mux, a.ep)
	c := srv.DialPath(t, "/ws?user=alice", token("alice"))
	c.Send("one") // its reply, and the greeting, are discarded
	c.Send("close")
	assert.Equal(t, "bye", c.ExpectClose(4001))

	c = srv.DialPath(t, "/ws?user=alice", token("alice"))
	c.Send("close")
	assert.Contains(t, fails(func(tb testing.TB) { c.Bind(tb).ExpectClose(websocket.StatusNormalClosure) }),
		`laftest: closed with 4001 "bye", want 1000`)
}

func TestWaitClose(t *testing.T) {
	var socket atomic.Pointer[laf.Socket]
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			socket.Store(ctx.Socket)
			return ctx.Socket.Send("hi")
		}
		return nil
	})
	c := srv.Dial(t)
	c.ExpectText("hi")
	require.NoError(t, socket.Load().Close(4002, "server says bye"))
	code, reason := c.WaitClose()
	assert.Equal(t, websocket.StatusCode(4002), code)
	assert.Equal(t, "server says bye", reason)

	c = srv.Dial(t)
	c.Timeout = 200 * time.Millisecond
	assert.Contains(t, fails(func(tb testing.TB) { c.Bind(tb).WaitClose() }), "laftest: no close within 200ms")
}

func TestConnFailures(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		send func(c *laftest.Conn)
		read func(c *laftest.Conn)
		want string
	}{
		{"ExpectText", func(c *laftest.Conn) { c.Send("x") }, func(c *laftest.Conn) { c.ExpectText("y") }, `got text "x", want "y"`},
		{"ReadText", func(c *laftest.Conn) { c.SendBinary([]byte("x")) }, func(c *laftest.Conn) { c.ReadText() }, `got binary message "x", want text`},
		{"ExpectBinary", func(c *laftest.Conn) { c.Send("x") }, func(c *laftest.Conn) { c.ExpectBinary([]byte("x")) }, `got (binary false) "x", want binary "x"`},
		{"ReadJSON", func(c *laftest.Conn) { c.Send("{") }, func(c *laftest.Conn) { var v any; c.ReadJSON(&v) }, "laftest: decode: "},
		{"SendJSON", nil, func(c *laftest.Conn) { c.SendJSON(func() {}) }, "laftest: encode: "},
		{"Read", nil, func(c *laftest.Conn) { c.Timeout = 100 * time.Millisecond; c.Read() }, "laftest: read: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.Dial(t)
			if tc.send != nil {
				tc.send(c)
			}
			assert.Contains(t, fails(func(tb testing.TB) { tc.read(c.Bind(tb)) }), tc.want)
		})
	}
	assert.Contains(t, fails(func(tb testing.TB) { laftest.NewUnstartedServer(tb, nil, nil) }), "laftest: nil http.Handler")
}

// fakeTB is a testing.TB whose Fatalf records its message and ends the
// goroutine, so that a test can check how laftest fails. Methods that
// laftest does not call are left nil and would panic.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	msg      string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// fails runs fn with a fakeTB on a goroutine of its own, then the
// cleanups fn registered, last first, and returns the message fn failed
// with, or "" if it did not fail.
func fails(fn func(tb testing.TB)) string {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f.msg
}
