package laf_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
)

// joiner joins each socket to the room its query names, from the
// position its "since" parameter gives, and reports whether it recovered
// with a text message "recovered=BOOL".
func joiner(ctx *laf.FunctionContext) error {
	if ctx.Method != laf.MethodConnection {
		return nil
	}
	q := ctx.Request.URL.Query()
	since, err := laf.ParsePosition(q.Get("since"))
	if err != nil {
		return err
	}
	ok, err := ctx.Socket.JoinSince(ctx, q.Get("room"), since)
	if err != nil {
		return err
	}
	return ctx.Socket.Send(fmt.Sprint("recovered=", ok))
}

func TestPositionStringAndParse(t *testing.T) {
	p := laf.Position{Epoch: "abc_-9", Offset: 42}
	assert.Equal(t, "abc_-9:42", p.String())
	got, err := laf.ParsePosition(p.String())
	require.NoError(t, err)
	assert.Equal(t, p, got)
	assert.Equal(t, "", laf.Position{}.String())
	zero, err := laf.ParsePosition("")
	require.NoError(t, err)
	assert.Equal(t, laf.Position{}, zero)
	for _, bad := range []string{"abc", ":1", "abc:", "abc:0", "abc:-1", "abc:x"} {
		_, err := laf.ParsePosition(bad)
		assert.Error(t, err, bad)
	}
}

// Offsets are contiguous, and every socket gets a room's published
// messages in offset order, whichever goroutines publish them.
func TestPublishOrdersConcurrentPublishers(t *testing.T) {
	srv := laftest.NewServer(t, joiner, laf.WithSendQueue(1000, 1<<20))
	a := srv.DialPath(t, "?room=r", nil)
	a.ExpectText("recovered=false")
	b := srv.DialPath(t, "?room=r", nil)
	b.ExpectText("recovered=false")

	const publishers, each = 8, 50
	var mu sync.Mutex
	seen := make(map[uint64]bool)
	var epoch string
	var wg sync.WaitGroup
	for g := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				pos, err := srv.Endpoint.Publish(context.Background(), "r", laf.Text(fmt.Sprint(g, "/", i)))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				assert.False(t, seen[pos.Offset], "offset %d twice", pos.Offset)
				seen[pos.Offset] = true
				if epoch == "" {
					epoch = pos.Epoch
				}
				assert.Equal(t, epoch, pos.Epoch)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for off := uint64(1); off <= publishers*each; off++ {
		require.True(t, seen[off], "offset %d never given", off)
	}
	for _, c := range []*laftest.Conn{a, b} {
		last := make(map[int]int)
		for off := uint64(1); off <= publishers*each; off++ {
			p := c.ReadPublished()
			require.Equal(t, "r", p.Room)
			require.Equal(t, laf.Position{Epoch: epoch, Offset: off}, p.Position())
			var data string
			require.NoError(t, json.Unmarshal(p.Data, &data))
			var g, i int
			fmt.Sscanf(data, "%d/%d", &g, &i)
			if prev, ok := last[g]; ok {
				require.Equal(t, prev+1, i, "publisher %d's messages in the order published", g)
			}
			last[g] = i
		}
	}
}

// A socket that joins since a position gets exactly the messages after
// it, then the live ones, with no gap and no duplicate, while publishers
// run.
func TestJoinSinceRecoversExactlyWhilePublishing(t *testing.T) {
	srv := laftest.NewServer(t, joiner, laf.WithHistory(10000, time.Minute), laf.WithSendQueue(10000, 16<<20))
	first := srv.DialPath(t, "?room=r", nil)
	first.ExpectText("recovered=false")
	const total = 600
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			if _, err := srv.Endpoint.Publish(context.Background(), "r", laf.Text(fmt.Sprint(i))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	// Read some, then reconnect from the last one read while the
	// publisher goes on.
	var last laf.Position
	for range 100 {
		last = first.ReadPublished().Position()
	}
	again := srv.DialPath(t, "?room=r&since="+last.String(), nil)
	want := last.Offset + 1
	recovered := false
	for want <= total {
		_, data := again.Read()
		if string(data) == "recovered=true" {
			require.False(t, recovered, "told twice")
			recovered = true
			continue
		}
		require.NotEqual(t, "recovered=false", string(data))
		var p laftest.Published
		require.NoError(t, json.Unmarshal(data, &p))
		require.Equal(t, laf.Position{Epoch: last.Epoch, Offset: want}, p.Position())
		want++
	}
	<-done
	if !recovered {
		// The Func's reply is queued behind what was published before it.
		again.ExpectText("recovered=true")
	}
	again.ExpectNoMessage(50 * time.Millisecond)
}

// JoinSince reports false, and sends nothing from history, for the zero
// position, another epoch, a position past the room's, one whose
// messages have left the history by size or by age; and true for the
// current position.
func TestJoinSinceNotRecovered(t *testing.T) {
	srv := laftest.NewServer(t, joiner, laf.WithHistory(5, 400*time.Millisecond))
	ctx := context.Background()
	var pos []laf.Position
	for i := range 8 {
		p, err := srv.Endpoint.Publish(ctx, "r", laf.Text(fmt.Sprint(i))) // nobody is in the room
		require.NoError(t, err)
		pos = append(pos, p)
	}
	cur := pos[7]
	check := func(since string, want bool) {
		t.Helper()
		c := srv.DialPath(t, "?room=r&since="+since, nil)
		if !want {
			c.ExpectText("recovered=false")
			c.ExpectNoMessage(50 * time.Millisecond)
			return
		}
		// Recovered messages come before the Func's own reply.
		_, data := c.Read()
		for string(data) != "recovered=true" {
			var p laftest.Published
			require.NoError(t, json.Unmarshal(data, &p), "%s", data)
			_, data = c.Read()
		}
	}
	check("", false)
	check(laf.Position{Epoch: "other", Offset: 3}.String(), false)
	check(laf.Position{Epoch: cur.Epoch, Offset: 9}.String(), false)
	check(pos[1].String(), false) // 6 missed, 5 kept
	check(pos[2].String(), true)  // 5 missed, 5 kept
	check(cur.String(), true)     // none missed
	time.Sleep(500 * time.Millisecond)
	check(pos[5].String(), false) // kept past the ttl
	// The room, idle past the ttl, starts a new epoch.
	p, err := srv.Endpoint.Publish(ctx, "r", laf.Text("new"))
	require.NoError(t, err)
	assert.NotEqual(t, cur.Epoch, p.Epoch)
	assert.Equal(t, uint64(1), p.Offset)
	check(cur.String(), false)
}

// Without WithHistory, Publish still orders and frames, and JoinSince
// never recovers.
func TestPublishWithoutHistory(t *testing.T) {
	srv := laftest.NewServer(t, joiner)
	p1, err := srv.Endpoint.Publish(context.Background(), "r", laf.Text("one"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), p1.Offset)
	assert.NotEmpty(t, p1.Epoch)
	c := srv.DialPath(t, "?room=r&since="+p1.String(), nil)
	c.ExpectText("recovered=false")
}

// The envelope: text data as a JSON string, JSON as it is, binary as
// base64 with "binary": true.
func TestPublishEnvelope(t *testing.T) {
	srv := laftest.NewServer(t, joiner)
	c := srv.DialPath(t, "?room=lobby", nil)
	c.ExpectText("recovered=false")
	ctx := context.Background()
	j, err := laf.JSON(map[string]int{"bid": 17})
	require.NoError(t, err)
	for _, m := range []laf.Message{laf.Text(`he said "hi"`), j, laf.Binary([]byte{0, 1, 0xff})} {
		_, err := srv.Endpoint.Publish(ctx, "lobby", m)
		require.NoError(t, err)
	}
	var raw map[string]any
	c.ReadJSON(&raw)
	assert.Equal(t, "lobby", raw["room"])
	assert.Regexp(t, `^[A-Za-z0-9_-]+:1$`, raw["pos"])
	assert.Equal(t, `he said "hi"`, raw["data"])
	assert.NotContains(t, raw, "binary")
	c.ReadJSON(&raw)
	assert.Equal(t, map[string]any{"bid": float64(17)}, raw["data"])
	c.ReadJSON(&raw)
	assert.Equal(t, "AAH/", raw["data"])
	assert.Equal(t, true, raw["binary"])
}

// A snapshot taken with the room's position, then JoinSince from it:
// no window in which a publish is lost or comes twice.
func TestSnapshotThenJoinSinceHasNoWindow(t *testing.T) {
	var mu sync.Mutex
	state, at := 0, laf.Position{}
	var ep *laf.Endpoint
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method != laf.MethodConnection {
			return nil
		}
		mu.Lock()
		snap, pos := state, at
		mu.Unlock()
		if err := ctx.Socket.SendJSON(map[string]any{"snapshot": snap, "pos": pos.String()}); err != nil {
			return err
		}
		_, err := ctx.Socket.JoinSince(ctx, "auction", pos)
		return err
	}, laf.WithHistory(100000, time.Minute), laf.WithSendQueue(100000, 64<<20))
	ep = srv.Endpoint
	bid := func(v int) {
		mu.Lock()
		defer mu.Unlock()
		state = v
		p, err := ep.Publish(context.Background(), "auction", laf.Text(fmt.Sprint(v)))
		require.NoError(t, err)
		at = p
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := 1; ; v++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Microsecond):
			}
			bid(v)
		}
	}()
	for range 5 {
		c := srv.Dial(t)
		var snap struct {
			Snapshot int
			Pos      string
		}
		c.ReadJSON(&snap)
		want := snap.Snapshot + 1
		for range 20 {
			p := c.ReadPublished()
			var got string
			require.NoError(t, json.Unmarshal(p.Data, &got))
			require.Equal(t, fmt.Sprint(want), got, "after a snapshot of %d", snap.Snapshot)
			want++
		}
	}
	close(stop)
	wg.Wait()
}
