package laf_test

// This file compiles the Go snippets of README.md. Each ```go block of
// README.md is copied here verbatim, between a "// ```go" and a "// ```"
// comment line, in the README's order, and TestREADMESnippetsCompile
// fails unless the copies and the README's blocks are the same: a
// snippet edited in one place must be edited in the other. The code
// around the copies declares what the snippets leave out.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README: the opening function, which later snippets use.

// ```go
func ws(ctx *laf.FunctionContext) error {
	switch ctx.Method {
	case laf.MethodConnection:
		return ctx.Socket.Send("hi connection succeed")
	case laf.MethodMessage:
		return ctx.Socket.Send("I have received your message")
	}
	return nil
}

// ```

// README, Rooms, identities and broadcast.

func readmeRooms(ctx *laf.FunctionContext) error {
	event := map[string]string{"type": "news"}
	// ```go
	ep := ctx.Endpoint
	ctx.Socket.Join("room:42")                       // leave with Leave; closing leaves all rooms
	ep.SendRoom(ctx, "room:42", laf.Text("hello"))   // everyone in the room
	ep.SendIdentity(ctx, "user:7", laf.Text("ping")) // every tab of the user WithAuth identified
	msg, _ := laf.JSON(event)                        // encoded once...
	ep.Broadcast(ctx, msg)                           // ...and shared by every socket
	// ```
	return nil
}

func readmeOwnedEcho(ctx *laf.FunctionContext) error {
	// ```go
	ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary)) // the Func owns Data
	// ```
	return nil
}

// README, Real-time state.

// boardTickers records what the room hook asked for.
type boardTickers struct {
	mu  sync.Mutex
	log []string
}

func (b *boardTickers) start(board string) { b.note("start " + board) }
func (b *boardTickers) stop(board string)  { b.note("stop " + board) }
func (b *boardTickers) note(s string) {
	b.mu.Lock()
	b.log = append(b.log, s)
	b.mu.Unlock()
}

func encodeCursors(ep *laf.Endpoint, board string) []byte {
	var frame []byte
	ep.RangeRoom(board, func(s *laf.Socket) bool {
		if pos, ok := s.Get("pos"); ok {
			frame = append(frame, pos.([]byte)...)
		}
		return true
	})
	return frame
}

func readmeRealtime(ctx context.Context, fn laf.Func, boards *boardTickers) (*laf.Endpoint, func(string)) {
	// ```go
	ep := laf.Handler(fn,
		laf.WithRoomHook(func(board string, occupied bool) { // first socket in, last out
			if occupied {
				boards.start(board) // a 30 Hz ticker that calls tick
			} else {
				boards.stop(board)
			}
		}),
		laf.WithReadIdleTimeout(10*time.Second), // close clients that stop sending
	)
	tick := func(board string) {
		frame := encodeCursors(ep, board) // a new slice every time, from ep.RangeRoom and Socket.Get
		ep.SendRoom(ctx, board, laf.Latest("cursors", laf.Owned(frame, true /* binary */)))
	}
	// ```
	return ep, tick
}

// README, Messages that survive reconnects.

// snapshot is the application's state for a user.
func snapshot(user string) map[string]any { return map[string]any{"user": user} }

var _ = readmeHistory

func readmeHistory(ctx *laf.FunctionContext, fn laf.Func, since laf.Position) error {
	// ```go
	ep := laf.Handler(fn, laf.WithHistory(100, 2*time.Minute)) // keep each room's last 100 messages, 2 minutes each

	pos, err := ep.Publish(ctx, "user:alice", laf.Text("you have mail")) // pos is "EPOCH:OFFSET"
	if err != nil {
		return err
	}

	// In the Func's connection event: join from where the client left off.
	recovered, err := ctx.Socket.JoinSince(ctx, "user:alice", since) // since: the last position the client got
	if err == nil && !recovered {
		err = ctx.Socket.SendJSON(snapshot("alice")) // what was missed is gone, or this is a first visit
	}
	// ```
	_ = pos
	return err
}

// README, Contexts.

// ```go
type userKey struct{}

// authenticate runs in front of the Endpoint: mux.Handle("/ws", authenticate(ep)).
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := userFromSession(r) // your session or token check
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

func feed(ctx *laf.FunctionContext) error {
	user, _ := ctx.Value(userKey{}).(string) // on every event
	switch ctx.Method {
	case laf.MethodConnection:
		go tick(ctx.Socket.Context(), ctx.Socket) // stops once the socket closes
	case laf.MethodMessage:
		ctx.Socket.Set("topic", ctx.Params.Data.String()) // this socket's own state
		return ctx.Socket.Send(user + " follows " + ctx.Params.Data.String())
	}
	return nil
}

func tick(ctx context.Context, s *laf.Socket) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if topic, ok := s.Get("topic"); ok {
				s.SendJSON(map[string]any{"topic": topic, "at": time.Now()})
			}
		}
	}
}

// ```

// userFromSession stands for the app's session check: here the session
// cookie is the user's name.
func userFromSession(r *http.Request) (string, bool) {
	c, err := r.Cookie("session")
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// README, Shutdown: compiled, never run.

// ```go
func main() {
	ep := laf.Handler(ws)
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", ep)
	srv := &http.Server{
		Addr:              "localhost:8080",
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	stop() // a second signal kills at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	epDone := make(chan error, 1)
	srv.RegisterOnShutdown(func() { epDone <- ep.Shutdown(shutdownCtx) })
	// srv.Shutdown stops listening, starts ep.Shutdown and waits for the
	// HTTP requests under way; <-epDone waits for every close event.
	err := srv.Shutdown(shutdownCtx)
	if err = errors.Join(err, <-epDone); err != nil {
		log.Print(err) // the 10 s ran out: what was still open was dropped
	}
}

// ```

var _ = main

// README, Shutdown, draining for a deploy: compiled, never run.

func readmeDrain(ep *laf.Endpoint, srv *http.Server) error {
	// ```go
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// 503 to new upgrades, Ready fails, 1012 to each socket over 10 s.
	err := ep.Drain(shutdownCtx, 10*time.Second)
	err = errors.Join(err, srv.Shutdown(shutdownCtx))
	// ```
	return err
}

var _ = readmeDrain

// README, Testing a handler: these run as tests of this package.

// ```go
func TestWS(t *testing.T) {
	srv := laftest.NewServer(t, ws)
	c := srv.Dial(t)
	c.ExpectText("hi connection succeed")
	c.Send("hi")
	c.ExpectText("I have received your message")
	c.Close(websocket.StatusNormalClosure, "")
}

// ```

// ```go
func TestWSOnAMux(t *testing.T) {
	rec := laftest.NewRecorder(nil)
	ep := laf.Handler(rec.Wrap(ws)) // records each event, then calls ws
	mux := http.NewServeMux()
	mux.Handle("/ws", ep)
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, ep.Len())
	})
	srv := laftest.ServeHandler(t, mux, ep)

	c := srv.DialPath(t, "/ws", nil)
	c.ExpectText("hi connection succeed")
	c.Send("hi")
	c.ExpectText("I have received your message")
	rec.Expect(t, laf.MethodConnection)
	assert.Equal(t, "hi", rec.Expect(t, laf.MethodMessage).Params.Data.String())

	resp, err := http.Get(srv.URL + "/live") // the plain handlers are at srv.URL
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "1", string(body))
}

// ```

// README, Scaling out.

func readmeScalingOut(fn laf.Func, b laf.Broker) *laf.Endpoint {
	// ```go
	ep := laf.Handler(fn, laf.WithBroker(b)) // b := redisbroker.New(rdb), or natsbroker.New(nc)
	// ```
	return ep
}

// The snippets that can run do what the README says.

func TestREADMESnippetRooms(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return readmeRooms(ctx)
		}
		return readmeOwnedEcho(ctx)
	})
	c := srv.Dial(t)
	c.ExpectText("hello")
	c.ExpectText(`{"type":"news"}`)
	c.Send("echo")
	c.ExpectText("echo")
}

func TestREADMESnippetContexts(t *testing.T) {
	ep := laf.Handler(feed)
	mux := http.NewServeMux()
	mux.Handle("/ws", authenticate(ep))
	srv := laftest.ServeHandler(t, mux, ep)

	_, resp, err := srv.TryDialPath("/ws", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	c := srv.DialPath(t, "/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {"session=alice"}}})
	c.Send("news")
	c.ExpectText("alice follows news")
	var ticked struct{ Topic string }
	c.ReadJSON(&ticked)
	assert.Equal(t, "news", ticked.Topic)
}

func TestREADMESnippetRealtime(t *testing.T) {
	boards := new(boardTickers)
	ep, tick := readmeRealtime(context.Background(), func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			ctx.Socket.Set("pos", []byte{1, 2})
			ctx.Socket.Join("demo")
		}
		return nil
	}, boards)
	srv := laftest.Serve(t, ep)
	c := srv.Dial(t)
	require.Eventually(t, func() bool { return ep.RoomLen("demo") == 1 }, laftest.DefaultTimeout, time.Millisecond)
	tick("demo")
	c.ExpectBinary([]byte{1, 2})
	c.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool {
		boards.mu.Lock()
		defer boards.mu.Unlock()
		return len(boards.log) == 2
	}, laftest.DefaultTimeout, time.Millisecond)
	assert.Equal(t, []string{"start demo", "stop demo"}, boards.log)
}

func TestREADMESnippetScalingOut(t *testing.T) {
	srv := laftest.Serve(t, readmeScalingOut(ws, laf.NewLocalBroker()))
	srv.Dial(t).ExpectText("hi connection succeed")
}
