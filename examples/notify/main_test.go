package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func start(t *testing.T) (*app, *laftest.Server) {
	a := newApp()
	return a, laftest.ServeHandler(t, a.mux, a.ep)
}

// connect opens a tab of user.
func connect(t *testing.T, srv *laftest.Server, user string) *laftest.Conn {
	return greeted(t, srv.DialPath(t, "/ws?user="+user, nil), user)
}

// greeted reads c's greeting, which comes once its socket is registered.
func greeted(t *testing.T, c *laftest.Conn, user string) *laftest.Conn {
	var hello map[string]string
	c.ReadJSON(&hello)
	require.Equal(t, map[string]string{"type": "connected", "user": user}, hello)
	return c
}

// post posts body to srv's path and returns the status and response body.
func post(t *testing.T, srv *laftest.Server, path, body string) (int, string) {
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// join makes c join room.
func join(c *laftest.Conn, room string) {
	c.Send("join:" + room)
	c.ExpectText(`{"room":"` + room + `","type":"joined"}`)
}

func TestNotifyEveryTabOfTheUser(t *testing.T) {
	_, srv := start(t)
	tab1, tab2 := connect(t, srv, "alice"), connect(t, srv, "alice")
	bob := connect(t, srv, "bob")

	status, _ := post(t, srv, "/notify?user=alice", `{"title":"hello"}`)
	assert.Equal(t, http.StatusAccepted, status)
	tab1.ExpectText(`{"title":"hello"}`)
	tab2.ExpectText(`{"title":"hello"}`)
	join(bob, "news") // bob got nothing before his own answer
}

func TestNotifyOfflineUserIsNotFound(t *testing.T) {
	_, srv := start(t)
	connect(t, srv, "alice")
	status, body := post(t, srv, "/notify?user=bob", `{"title":"hello"}`)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "nobody to notify: bob has no socket open\n", body)
}

func TestNotifyBadRequests(t *testing.T) {
	_, srv := start(t)
	alice := connect(t, srv, "alice")
	for _, body := range []string{"", "hello", `{"title":`, "\"\xff\""} {
		status, msg := post(t, srv, "/notify?user=alice", body)
		assert.Equal(t, http.StatusBadRequest, status, "%q", body)
		assert.Equal(t, "the body must be JSON\n", msg)
	}
	for _, path := range []string{"/notify", "/notify?user=alice&room=news"} {
		status, msg := post(t, srv, path, "{}")
		assert.Equal(t, http.StatusBadRequest, status, path)
		assert.Equal(t, "notify ?user=NAME or ?room=ROOM\n", msg)
	}
	join(alice, "news") // none of it reached alice
}

func TestJoinARoom(t *testing.T) {
	_, srv := start(t)
	alice, bob := connect(t, srv, "alice"), connect(t, srv, "bob")
	alice.Send("hello")
	alice.ExpectText(`{"error":"send \"join:ROOM\"","type":"error"}`)
	join(alice, "news")

	status, _ := post(t, srv, "/notify?room=news", `[1,2,3]`)
	assert.Equal(t, http.StatusAccepted, status)
	alice.ExpectText(`[1,2,3]`)
	status, body := post(t, srv, "/notify?room=sports", `{}`)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "nobody to notify: sports has no socket open\n", body)
	join(bob, "sports") // bob, in no room, got nothing
}

func TestConnectWithoutUserIsUnauthorized(t *testing.T) {
	_, srv := start(t)
	_, resp, err := srv.TryDialPath("/ws", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestStats(t *testing.T) {
	_, srv := start(t)
	connect(t, srv, "alice")
	connect(t, srv, "bob")
	_, _, err := srv.TryDialPath("/ws", nil)
	require.Error(t, err)

	resp, err := http.Get(srv.URL + "/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var stats struct{ Live, Accepted, Refused int }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&stats))
	assert.Equal(t, struct{ Live, Accepted, Refused int }{2, 2, 1}, stats)
}
