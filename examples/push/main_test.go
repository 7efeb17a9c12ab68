package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// post posts body to url and returns the status and the response body.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// welcome reads c's welcome and returns its socket id.
func welcome(t *testing.T, c *laftest.Conn) string {
	var w struct{ Type, ID string }
	c.ReadJSON(&w)
	require.Equal(t, "welcome", w.Type)
	return w.ID
}

func TestPushByID(t *testing.T) {
	a, handler := newApp()
	srv := laftest.ServeHandler(t, handler, a.ep)

	alice, bob := srv.DialPath(t, "/__websocket__", nil), srv.DialPath(t, "/__websocket__", nil)
	aliceID := welcome(t, alice)
	welcome(t, bob)

	status, _ := post(t, srv.URL+"/push?id="+aliceID, "only for alice")
	assert.Equal(t, http.StatusOK, status)
	alice.ExpectText("only for alice")

	bob.Send("ping") // bob's next message is his ack, not alice's push
	var ack struct {
		Type string
		Data string
	}
	bob.ReadJSON(&ack)
	assert.Equal(t, "ack", ack.Type)
	assert.Equal(t, "ping", ack.Data)

	alice.Close(4000, "done")
	require.Eventually(t, func() bool { return len(a.log.get(aliceID)) == 2 }, laftest.DefaultTimeout, 5e6)
	evs := a.log.get(aliceID)
	assert.Equal(t, event{Method: laf.MethodClose, Code: 4000, Reason: "done", Cause: "peer"}, evs[1])

	resp, err := http.Get(srv.URL + "/events?id=" + aliceID)
	require.NoError(t, err)
	var got []event
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	resp.Body.Close()
	assert.Equal(t, evs, got)
	visitors, _ := a.ep.Shared().Get("visitors")
	assert.Equal(t, 2, visitors)
}

func TestPushRefusals(t *testing.T) {
	a, handler := newApp()
	srv := laftest.ServeHandler(t, handler, a.ep)
	alice := srv.DialPath(t, "/__websocket__", nil)
	id := welcome(t, alice)

	status, body := post(t, srv.URL+"/push?id="+id, "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "empty body: nothing to push\n", body)

	status, body = post(t, srv.URL+"/push?id="+id, "\xff")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "the body must be UTF-8 text\n", body)

	status, body = post(t, srv.URL+"/push?id=unknown", "x")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "no socket with that id\n", body)

	status, body = post(t, srv.URL+"/push", "x")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "no socket with that id\n", body)

	// None of it reached alice: her next message is the ack of her own.
	alice.Send("ping")
	var ack struct{ Type, Data string }
	alice.ReadJSON(&ack)
	assert.Equal(t, "ping", ack.Data)
}

func TestServeShutsDownWhenTheContextEnds(t *testing.T) {
	a, handler := newApp()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, handler, a.ep) }()

	ws, _, err := websocket.Dial(context.Background(), "ws://"+ln.Addr().String()+"/__websocket__", nil)
	require.NoError(t, err)
	c := laftest.Wrap(t, ws)
	welcome(t, c)
	cancel()
	c.ExpectClose(websocket.StatusGoingAway)
	require.NoError(t, <-served)
	assert.Equal(t, uint64(1), a.ep.Stats().Closes[laf.CauseShutdown])
}
