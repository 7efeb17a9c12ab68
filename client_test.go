package laf_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
)

func TestClientScriptIsServed(t *testing.T) {
	srv := httptest.NewServer(laf.ClientScript())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/laf.js")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, string(body), "export class LafSocket")
	assert.Contains(t, string(body), "'"+laf.SinceParam+"'")
}

func TestSinceParsesTheClientsPositions(t *testing.T) {
	r := httptest.NewRequest("GET", "/ws?"+laf.SinceParam+"="+url.QueryEscape(`{"a b":"E1:3","c":"E2:10"}`), nil)
	got, err := laf.Since(r)
	require.NoError(t, err)
	assert.Equal(t, map[string]laf.Position{"a b": {Epoch: "E1", Offset: 3}, "c": {Epoch: "E2", Offset: 10}}, got)

	none, err := laf.Since(httptest.NewRequest("GET", "/ws", nil))
	require.NoError(t, err)
	assert.Empty(t, none)
	for _, bad := range []string{`[1]`, `{"a":"E:0"}`, `{"a":5}`, `nope`} {
		_, err := laf.Since(httptest.NewRequest("GET", "/ws?"+laf.SinceParam+"="+url.QueryEscape(bad), nil))
		assert.Error(t, err, bad)
	}
}

// Resume joins from the client's position and tells the client, after
// the recovered messages, whether it recovered and where the room is.
func TestResumeTellsTheClient(t *testing.T) {
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			_, err := ctx.Socket.Resume(ctx, "feed")
			return err
		}
		return nil
	}, laf.WithHistory(100, 0))
	type notice struct {
		Laf, Room, Pos string
		Recovered      bool
	}
	c := srv.Dial(t)
	n := laftest.ReadJSONAs[notice](c)
	assert.Equal(t, notice{Laf: "recovered", Room: "feed"}, n, "nothing published yet")

	ctx := context.Background()
	var last laf.Position
	for _, s := range []string{"one", "two", "three"} {
		p, err := srv.Endpoint.Publish(ctx, "feed", laf.Text(s))
		require.NoError(t, err)
		if s == "one" {
			last = p
		}
	}
	since, _ := json.Marshal(map[string]string{"feed": last.String()})
	again := srv.DialPath(t, "?"+laf.SinceParam+"="+url.QueryEscape(string(since)), nil)
	for _, want := range []string{"two", "three"} {
		var got string
		require.NoError(t, json.Unmarshal(again.ReadPublished().Data, &got))
		assert.Equal(t, want, got)
	}
	n = laftest.ReadJSONAs[notice](again)
	assert.True(t, n.Recovered)
	assert.True(t, strings.HasSuffix(n.Pos, ":3"), n.Pos)

	// A position from another epoch: not recovered, and where to go on from.
	since, _ = json.Marshal(map[string]string{"feed": "gone:7"})
	lost := srv.DialPath(t, "?"+laf.SinceParam+"="+url.QueryEscape(string(since)), nil)
	n = laftest.ReadJSONAs[notice](lost)
	assert.False(t, n.Recovered)
	assert.Equal(t, laf.Position{Epoch: last.Epoch, Offset: 3}.String(), n.Pos)
}
