package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dial(t *testing.T, srv *laftest.Server, room, name string) *laftest.Conn {
	t.Helper()
	return srv.DialPath(t, "/__websocket__?room="+room+"&name="+name, nil)
}

// next returns c's next message.
func next(c *laftest.Conn) chatMsg {
	var m chatMsg
	c.ReadJSON(&m)
	return m
}

// upTo returns the messages c gets before want.
func upTo(c *laftest.Conn, want chatMsg) []chatMsg {
	var got []chatMsg
	for m := next(c); !assert.ObjectsAreEqual(want, m); m = next(c) {
		got = append(got, m)
	}
	return got
}

func joined(name, room string) chatMsg { return chatMsg{Type: "join", From: name, Room: room} }
func left(name, room string) chatMsg   { return chatMsg{Type: "leave", From: name, Room: room} }
func said(name, room, text string) chatMsg {
	return chatMsg{Type: "text", From: name, Room: room, Text: text}
}

func TestChatRooms(t *testing.T) {
	ep, handler := newChat(chat)
	srv := laftest.ServeHandler(t, handler, ep)

	alice := dial(t, srv, "r1", "alice")
	assert.Equal(t, joined("alice", "r1"), next(alice))
	bob := dial(t, srv, "r1", "bob")
	assert.Equal(t, joined("bob", "r1"), next(bob))
	assert.Equal(t, joined("bob", "r1"), next(alice))
	carol := dial(t, srv, "r2", "carol")
	assert.Equal(t, joined("carol", "r2"), next(carol))

	bob.Send("hello")
	assert.Equal(t, said("bob", "r1", "hello"), next(alice))
	assert.Equal(t, said("bob", "r1", "hello"), next(bob))

	alice.Send(`{"emoji":"wave"}`)
	m := next(bob)
	assert.Equal(t, "json", m.Type)
	assert.JSONEq(t, `{"emoji":"wave"}`, string(m.Data))

	// carol, in r2, saw none of it: her next message is her own.
	carol.Send("anyone?")
	assert.Equal(t, said("carol", "r2", "anyone?"), next(carol))
	assert.Equal(t, 1, ep.RoomLen("r2"))

	// Refused without a name.
	_, resp, err := srv.TryDialPath("/__websocket__", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Shutdown closes everyone with 1001, once the clients answer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ep.Shutdown(ctx) }()
	for _, c := range []*laftest.Conn{alice, bob, carol} {
		c.ExpectClose(websocket.StatusGoingAway)
	}
	require.NoError(t, <-done)
	assert.Equal(t, 0, ep.Len())
}

// A "/join" moves a socket from one room to another: the old room hears
// that it left, once, and when it closes only the room it was in then
// hears that it left.
func TestJoinThenCloseTellsTheRoomsTheSocketWasIn(t *testing.T) {
	closed := make(chan string, 3)
	ep, handler := newChat(func(ctx *laf.FunctionContext) error {
		err := chat(ctx)
		if ctx.Method == laf.MethodClose {
			closed <- ctx.Socket.Identity()
		}
		return err
	})
	srv := laftest.ServeHandler(t, handler, ep)

	alice := dial(t, srv, "lobby", "alice")
	assert.Equal(t, joined("alice", "lobby"), next(alice))
	bob := dial(t, srv, "lobby", "bob")
	assert.Equal(t, joined("bob", "lobby"), next(bob))
	assert.Equal(t, joined("bob", "lobby"), next(alice))
	carol := dial(t, srv, "dev", "carol")
	assert.Equal(t, joined("carol", "dev"), next(carol))

	bob.Send("/join dev")
	assert.Equal(t, left("bob", "lobby"), next(alice))
	assert.Equal(t, joined("bob", "dev"), next(bob))
	assert.Equal(t, joined("bob", "dev"), next(carol))

	bob.Close(websocket.StatusNormalClosure, "")
	select {
	case name := <-closed:
		require.Equal(t, "bob", name)
	case <-time.After(laftest.DefaultTimeout):
		t.Fatal("bob's close event did not return")
	}
	// Whatever bob's close event sent is queued ahead of each one's own
	// next message.
	alice.Send("still here")
	assert.Empty(t, upTo(alice, said("alice", "lobby", "still here")), "alice heard about bob after his /join")
	carol.Send("still here")
	assert.Equal(t, []chatMsg{left("bob", "dev")}, upTo(carol, said("carol", "dev", "still here")))
}

func TestJoinAloneAndJoinTheSameRoom(t *testing.T) {
	ep, handler := newChat(chat)
	srv := laftest.ServeHandler(t, handler, ep)

	alice := dial(t, srv, "lobby", "alice")
	assert.Equal(t, joined("alice", "lobby"), next(alice))
	alice.Send("/join lobby") // already there: nothing happens
	// Leaving a room nobody is left in is not an error.
	alice.Send("/join dev")
	assert.Equal(t, joined("alice", "dev"), next(alice))
	alice.Send("hi")
	assert.Equal(t, said("alice", "dev", "hi"), next(alice))
	assert.Equal(t, uint64(0), ep.Stats().HandlerErrors)
}

func TestServeShutsDownWhenTheContextEnds(t *testing.T) {
	ep, handler := newChat(chat)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, handler, ep) }()

	ws, _, err := websocket.Dial(context.Background(), "ws://"+ln.Addr().String()+"/__websocket__?room=lobby&name=alice", nil)
	require.NoError(t, err)
	alice := laftest.Wrap(t, ws)
	assert.Equal(t, joined("alice", "lobby"), next(alice))
	cancel()
	alice.ExpectClose(websocket.StatusGoingAway)
	require.NoError(t, <-served)
	assert.Equal(t, uint64(1), ep.Stats().Closes[laf.CauseShutdown])
}
