package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dialChat(t *testing.T, hs *httptest.Server, query string) *laftest.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http")+"/__websocket__?"+query, nil)
	require.NoError(t, err)
	t.Cleanup(func() { ws.CloseNow() })
	return (&laftest.Conn{WS: ws, Timeout: laftest.DefaultTimeout}).Bind(t)
}

func TestChatRooms(t *testing.T) {
	ep, handler := newChat()
	hs := httptest.NewServer(handler)
	defer hs.Close()
	defer ep.Shutdown(context.Background())

	var m chatMsg
	alice := dialChat(t, hs, "room=r1&name=alice")
	alice.ReadJSON(&m)
	assert.Equal(t, chatMsg{Type: "join", From: "alice", Room: "r1"}, m)
	bob := dialChat(t, hs, "room=r1&name=bob")
	bob.ReadJSON(&m)
	alice.ReadJSON(&m)
	assert.Equal(t, "bob", m.From)
	carol := dialChat(t, hs, "room=r2&name=carol")
	carol.ReadJSON(&m)

	bob.Send("hello")
	alice.ReadJSON(&m)
	assert.Equal(t, chatMsg{Type: "text", From: "bob", Room: "r1", Text: "hello"}, m)
	bob.ReadJSON(&m)
	assert.Equal(t, "hello", m.Text)

	alice.Send(`{"emoji":"wave"}`)
	bob.ReadJSON(&m)
	assert.Equal(t, "json", m.Type)
	assert.JSONEq(t, `{"emoji":"wave"}`, string(m.Data))

	// carol, in r2, saw none of it: her next message is her own.
	carol.Send("anyone?")
	carol.ReadJSON(&m)
	assert.Equal(t, "anyone?", m.Text)
	assert.Equal(t, 1, ep.RoomLen("r2"))

	// Refused without a name.
	_, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http")+"/__websocket__", nil)
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
