package laf_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type claimsKey struct{}

// An event's context is live in every event, the close event included,
// carries the values a middleware put on the upgrade request, and is the
// context that sends and other calls take.
func TestEventContextIsLiveAndCarriesRequestValues(t *testing.T) {
	type seen struct {
		method      string
		err         error
		req         *http.Request
		claims      any
		endpoint    *laf.Endpoint
		sendRoomErr error
	}
	events := make(chan seen, 10)
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		// The context itself is what the send takes: this compiles and
		// runs inside a Func.
		var c context.Context = ctx
		if ctx.Method == laf.MethodConnection {
			ctx.Socket.Join("lobby")
		}
		s := seen{method: ctx.Method, err: c.Err(), req: ctx.Request,
			claims: c.Value(claimsKey{}), endpoint: ctx.Endpoint}
		if ctx.Method == laf.MethodMessage {
			s.sendRoomErr = ctx.Endpoint.SendRoom(ctx, "lobby", laf.Text("to the lobby"))
		}
		select {
		case <-c.Done():
			s.err = errors.New("done during the event")
		default:
		}
		events <- s
		return nil
	})
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, "alice")))
		})
	}
	hs := httptest.NewServer(auth(ep))
	defer hs.Close()
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	c := (&laftest.Conn{WS: ws, Timeout: laftest.DefaultTimeout}).Bind(t)
	c.Send("hi")
	c.ExpectText("to the lobby")
	c.Close(websocket.StatusNormalClosure, "")

	for _, method := range []string{laf.MethodConnection, laf.MethodMessage, laf.MethodClose} {
		s := <-events
		assert.Equal(t, method, s.method)
		assert.NoError(t, s.err, method)
		assert.Equal(t, "alice", s.claims, method)
		assert.Same(t, ep, s.endpoint, method)
		// net/http cancels the upgrade request's own context once the
		// upgrade has returned, as documented: do not use it.
		require.Eventually(t, func() bool { return s.req.Context().Err() != nil },
			laftest.DefaultTimeout, time.Millisecond, method)
	}
}

// A context derived from an event's is cancelled with it, and is not
// cancelled by the socket's close.
func TestContextDerivedFromAnEventOutlivesTheSocket(t *testing.T) {
	derived := make(chan context.Context, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			d, cancel := context.WithCancel(ctx)
			t.Cleanup(cancel)
			derived <- d
		}
		return nil
	})
	c := srv.Dial(t)
	d := <-derived
	c.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == 0 }, laftest.DefaultTimeout, time.Millisecond)
	assert.NoError(t, d.Err())
}

// When Shutdown's context ends with an event still running, that event's
// context is done, so slow work gives up.
func TestEventContextDoneWhenShutdownGivesUp(t *testing.T) {
	running := make(chan struct{})
	gaveUp := make(chan error, 1)
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			close(running)
			select {
			case <-ctx.Done():
				gaveUp <- ctx.Err()
			case <-time.After(laftest.DefaultTimeout):
				gaveUp <- nil
			}
		}
		return nil
	})
	hs := httptest.NewServer(ep)
	defer hs.Close()
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	require.NoError(t, ws.Write(context.Background(), websocket.MessageText, []byte("work")))
	<-running

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, ep.Shutdown(ctx), context.DeadlineExceeded)
	assert.ErrorIs(t, <-gaveUp, context.Canceled)
}

// Per-socket values set in the connection event are there in every later
// event, the close event included, and from other goroutines.
func TestSocketValues(t *testing.T) {
	rooms := make(chan any, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		s := ctx.Socket
		switch ctx.Method {
		case laf.MethodConnection:
			s.Set("room", "lobby")
			s.Set("temp", 1)
			go s.Set("other", "from a goroutine")
		case laf.MethodMessage:
			s.Delete("temp")
			_, hasTemp := s.Get("temp")
			room, _ := s.Get("room")
			return s.SendJSON(map[string]any{"room": room, "temp": hasTemp})
		case laf.MethodClose:
			room, _ := s.Get("room")
			rooms <- room
		}
		return nil
	})
	c := srv.Dial(t)
	c.Send("?")
	c.ExpectText(`{"room":"lobby","temp":false}`)
	c.Close(websocket.StatusNormalClosure, "")
	assert.Equal(t, "lobby", <-rooms)
}

// In the close event, Rooms returns the rooms the socket was in when it
// closed, and sends to those rooms no longer reach it.
func TestRoomsDuringTheCloseEvent(t *testing.T) {
	type closing struct {
		rooms   []string
		sendErr error
	}
	closed := make(chan closing, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		s := ctx.Socket
		switch ctx.Method {
		case laf.MethodMessage:
			s.Join(ctx.Params.Data.String())
			return s.Send("joined")
		case laf.MethodClose:
			s.Join("after close") // joins nothing
			closed <- closing{sorted(s.Rooms()), ctx.Endpoint.SendRoom(ctx, "dev", laf.Text("x"))}
		}
		return nil
	})
	c := srv.Dial(t)
	c.Send("lobby")
	c.ExpectText("joined")
	c.Send("dev")
	c.ExpectText("joined")
	c.Close(websocket.StatusNormalClosure, "")
	got := <-closed
	assert.Equal(t, []string{"dev", "lobby"}, got.rooms)
	assert.ErrorIs(t, got.sendErr, laf.ErrNotFound, "the closing socket is no longer in dev")
}

// SendRoom and SendIdentity say when nobody is there, on one node and
// across a cluster as far as presence knows.
func TestSendToNobodyIsNotFound(t *testing.T) {
	b := laf.NewLocalBroker()
	opts := []laf.Option{
		laf.WithBroker(b),
		laf.WithHeartbeat(50 * time.Millisecond),
		laf.WithAuth(func(r *http.Request) (string, error) { return r.URL.Query().Get("user"), nil }),
	}
	join := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			ctx.Socket.Join("room")
		}
		return nil
	}
	one := laftest.NewServer(t, join, opts...)
	two := laftest.NewServer(t, join, opts...)
	ctx := context.Background()

	assert.ErrorIs(t, one.Endpoint.SendRoom(ctx, "room", laf.Text("x")), laf.ErrNotFound)
	assert.ErrorIs(t, one.Endpoint.SendIdentity(ctx, "bob", laf.Text("x")), laf.ErrNotFound)

	ws, _, err := websocket.Dial(ctx, two.WSURL+"?user=bob", nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	bob := (&laftest.Conn{WS: ws, Timeout: laftest.DefaultTimeout}).Bind(t)
	require.Eventually(t, func() bool { return one.Endpoint.Presence().IdentitySockets("bob") == 1 },
		laftest.DefaultTimeout, time.Millisecond)
	require.Eventually(t, func() bool { return len(one.Endpoint.Presence().RoomMembers("room")) == 1 },
		laftest.DefaultTimeout, time.Millisecond)

	require.NoError(t, one.Endpoint.SendRoom(ctx, "room", laf.Text("to the room")))
	bob.ExpectText("to the room")
	require.NoError(t, one.Endpoint.SendIdentity(ctx, "bob", laf.Text("to bob")))
	bob.ExpectText("to bob")
	assert.ErrorIs(t, one.Endpoint.SendRoom(ctx, "elsewhere", laf.Text("x")), laf.ErrNotFound)
}
