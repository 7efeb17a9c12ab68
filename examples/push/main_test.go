package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPushByID(t *testing.T) {
	a, handler := newApp()
	hs := httptest.NewServer(handler)
	defer hs.Close()
	srv := &laftest.Server{Server: hs, Endpoint: a.ep, WSURL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/__websocket__"}

	alice, bob := srv.Dial(t), srv.Dial(t)
	var welcome struct{ Type, ID string }
	alice.ReadJSON(&welcome)
	require.Equal(t, "welcome", welcome.Type)
	aliceID := welcome.ID
	bob.ReadJSON(&welcome)

	resp, err := http.Post(hs.URL+"/push?id="+aliceID, "text/plain", strings.NewReader("only for alice"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	alice.ExpectText("only for alice")

	bob.Send("ping") // bob's next message is his ack, not alice's push
	var ack struct {
		Type string
		Data string
	}
	bob.ReadJSON(&ack)
	assert.Equal(t, "ack", ack.Type)
	assert.Equal(t, "ping", ack.Data)

	resp, err = http.Post(hs.URL+"/push?id=unknown", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, string(body), "no socket")

	alice.Close(4000, "done")
	require.Eventually(t, func() bool { return len(a.log.get(aliceID)) == 2 }, laftest.DefaultTimeout, 5e6)
	evs := a.log.get(aliceID)
	assert.Equal(t, event{Method: laf.MethodClose, Code: 4000, Reason: "done", Cause: "peer"}, evs[1])

	resp, err = http.Get(hs.URL + "/events?id=" + aliceID)
	require.NoError(t, err)
	var got []event
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	resp.Body.Close()
	assert.Equal(t, evs, got)
	visitors, _ := a.ep.Shared().Get("visitors")
	assert.Equal(t, 2, visitors)
}
