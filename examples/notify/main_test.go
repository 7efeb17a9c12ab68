package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lafgo/laf"
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

// greeted reads c's greeting, which comes once its socket is registered,
// and the notice that it joined its user's room, with nothing to recover.
func greeted(t *testing.T, c *laftest.Conn, user string) *laftest.Conn {
	var hello map[string]string
	c.ReadJSON(&hello)
	require.Equal(t, map[string]string{"type": "connected", "user": user}, hello)
	n := laftest.ReadJSONAs[notice](c)
	require.Equal(t, "recovered", n.Laf)
	require.Equal(t, "user:"+user, n.Room)
	require.False(t, n.Recovered)
	c.ReadJSON(&hello)
	require.Equal(t, map[string]string{"type": "snapshot", "user": user}, hello, "the snapshot, as nothing was recovered")
	return c
}

// notice is laf's word on a room the socket resumed.
type notice struct {
	Laf, Room, Pos string
	Recovered      bool
}

// expectNotification reads a notification published to c's user.
func expectNotification(t *testing.T, c *laftest.Conn, want string) laftest.Published {
	p := c.ReadPublished()
	require.JSONEq(t, want, string(p.Data))
	return p
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
	p1 := expectNotification(t, tab1, `{"title":"hello"}`)
	p2 := expectNotification(t, tab2, `{"title":"hello"}`)
	assert.Equal(t, "user:alice", p1.Room)
	assert.Equal(t, p1.Pos, p2.Pos)
	join(bob, "news") // bob got nothing before his own answer
}

// A notification for a user with no tab open is kept: accepted, though
// only a tab reconnecting from an earlier position gets it.
func TestNotifyOfflineUserIsAccepted(t *testing.T) {
	_, srv := start(t)
	status, _ := post(t, srv, "/notify?user=bob", `{"title":"hello"}`)
	assert.Equal(t, http.StatusAccepted, status)
	bob := connect(t, srv, "bob") // a first visit: nothing to recover
	bob.ExpectNoMessage(50 * time.Millisecond)
}

// A tab that the server drops in the middle of a burst (as a deploy
// would, with 1012) and that redials from the last notification it got,
// as laf's browser client does, gets every notification exactly once,
// in order.
func TestTabRedialedMidBurstGetsEveryNotificationOnce(t *testing.T) {
	a, srv := start(t)
	tab := connect(t, srv, "alice")
	const n = 60
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for i := range n {
			status, body := post(t, srv, "/notify?user=alice", fmt.Sprintf(`{"n":%d}`, i))
			if !assert.Equal(t, http.StatusAccepted, status, body) {
				return
			}
		}
	}()
	got := make([]int, 0, n)
	var last string
	read := func(p laftest.Published) {
		var v struct{ N int }
		require.NoError(t, json.Unmarshal(p.Data, &v))
		require.Equal(t, len(got), v.N, "notifications in order, none missed, none twice")
		got = append(got, v.N)
		last = p.Pos
	}
	for len(got) < n/3 {
		read(tab.ReadPublished())
	}
	a.ep.Range(func(s *laf.Socket) bool {
		s.Close(1012, "service restart")
		return true
	})
	tab.ExpectClose(1012) // what came after the last one read is dropped with it

	since, _ := json.Marshal(map[string]string{"user:alice": last})
	again := srv.DialPath(t, "/ws?user=alice&"+laf.SinceParam+"="+url.QueryEscape(string(since)), nil)
	var hello map[string]string
	again.ReadJSON(&hello)
	require.Equal(t, "connected", hello["type"])
	told := false
	for len(got) < n || !told {
		_, data := again.Read()
		var nt notice
		if json.Unmarshal(data, &nt) == nil && nt.Laf == "recovered" {
			require.False(t, told)
			require.True(t, nt.Recovered, "recovered from %s", last)
			told = true
			continue
		}
		var p laftest.Published
		require.NoError(t, json.Unmarshal(data, &p))
		read(p)
	}
	<-posted
	again.ExpectNoMessage(50 * time.Millisecond)
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
