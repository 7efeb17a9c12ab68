package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds the waits on the server's state: generous, for slow,
// shared machines.
const wait = laftest.DefaultTimeout

func startApp(t *testing.T, opts ...laf.Option) (*app, *laftest.Server) {
	t.Helper()
	a := newApp(opts...)
	return a, laftest.ServeHandler(t, a.mux, a.ep)
}

func boardURL(board, name string) string {
	return "/ws?" + url.Values{"board": {board}, "name": {name}}.Encode()
}

// join dials the board as name, reads the hello and returns its cursor id.
func join(t *testing.T, srv *laftest.Server, board, name string, opts *websocket.DialOptions) (*laftest.Conn, uint32) {
	t.Helper()
	c := srv.DialPath(t, boardURL(board, name), opts)
	var h helloMsg
	c.ReadJSON(&h)
	require.Equal(t, helloMsg{Type: "hello", ID: h.ID, Board: board, Name: name}, h)
	return c, h.ID
}

func position(x, y float32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, math.Float32bits(x))
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(y))
}

// decoded is a cursor frame.
type decoded struct {
	seq     uint32
	cursors map[uint32]pos
}

func decode(t testing.TB, data []byte) decoded {
	t.Helper()
	f, err := parseFrame(data)
	require.NoError(t, err)
	return f
}

func parseFrame(data []byte) (decoded, error) {
	if len(data) < frameHead {
		return decoded{}, fmt.Errorf("frame of %d bytes", len(data))
	}
	n := binary.LittleEndian.Uint32(data[4:])
	if len(data) != frameHead+recSize*int(n) {
		return decoded{}, fmt.Errorf("frame of %d bytes with %d cursors", len(data), n)
	}
	f := decoded{seq: binary.LittleEndian.Uint32(data), cursors: map[uint32]pos{}}
	for i := range int(n) {
		r := data[frameHead+recSize*i:]
		f.cursors[binary.LittleEndian.Uint32(r)] = pos{
			math.Float32frombits(binary.LittleEndian.Uint32(r[4:])),
			math.Float32frombits(binary.LittleEndian.Uint32(r[8:])),
		}
	}
	return f, nil
}

// frameWhere reads until a cursor frame satisfies ok, skipping text.
func frameWhere(t *testing.T, c *laftest.Conn, ok func(decoded) bool) decoded {
	t.Helper()
	var f decoded
	c.ReadUntil(func(binary bool, data []byte) bool {
		if !binary {
			return false
		}
		f = decode(t, data)
		return ok(f)
	})
	return f
}

// nextMembers reads until the next member list, skipping frames.
func nextMembers(t *testing.T, c *laftest.Conn) []string {
	t.Helper()
	var m membersMsg
	require.NoError(t, json.Unmarshal([]byte(c.ReadTextUntil(func(string) bool { return true })), &m))
	require.Equal(t, "members", m.Type)
	var names []string
	for _, x := range m.Members {
		names = append(names, x.Name)
	}
	return names
}

func TestPositionsReachEachOther(t *testing.T) {
	_, srv := startApp(t)
	alice, aliceID := join(t, srv, "b", "alice", nil)
	bob, bobID := join(t, srv, "b", "bob", nil)
	carol, carolID := join(t, srv, "other", "carol", nil)
	require.NotEqual(t, aliceID, bobID)

	alice.SendBinary(position(0.25, 0.5))
	bob.SendBinary(position(0.75, 0.125))
	carol.SendBinary(position(2, -1)) // clamped

	both := func(f decoded) bool {
		return f.cursors[aliceID] == pos{0.25, 0.5} && f.cursors[bobID] == pos{0.75, 0.125}
	}
	f := frameWhere(t, alice, both)
	assert.Len(t, f.cursors, 2, "only the board's cursors")
	f = frameWhere(t, bob, both)
	assert.Len(t, f.cursors, 2)
	f = frameWhere(t, carol, func(f decoded) bool { return len(f.cursors) > 0 })
	assert.Equal(t, map[uint32]pos{carolID: {1, 0}}, f.cursors, "another board, and clamped to [0, 1]")

	// Frames only move forward, one board's seq at a time.
	last := frameWhere(t, alice, func(decoded) bool { return true }).seq
	next := frameWhere(t, alice, func(decoded) bool { return true }).seq
	assert.Greater(t, next, last)

	// Positions that break the protocol close the socket with 1003.
	bob.Send("hi")
	assert.Equal(t, "want 8-byte binary positions", bob.ExpectClose(websocket.StatusUnsupportedData))
	nan := float32(math.NaN())
	carol.SendBinary(position(nan, 0))
	assert.Equal(t, "position is NaN", carol.ExpectClose(websocket.StatusUnsupportedData))
}

func TestRefusesBadNames(t *testing.T) {
	_, srv := startApp(t)
	for _, ref := range []string{"/ws?board=b", "/ws?name=n", boardURL("b", strings.Repeat("x", maxName+1))} {
		_, resp, err := srv.TryDialPath(ref, nil)
		require.Error(t, err, ref)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, ref)
	}
}

func TestMemberListsOnJoinAndLeave(t *testing.T) {
	_, srv := startApp(t)
	alice, _ := join(t, srv, "b", "alice", nil)
	assert.Equal(t, []string{"alice"}, nextMembers(t, alice))
	bob, _ := join(t, srv, "b", "bob", nil)
	assert.Equal(t, []string{"alice", "bob"}, nextMembers(t, bob))
	assert.Equal(t, []string{"alice", "bob"}, nextMembers(t, alice))
	carol, _ := join(t, srv, "other", "carol", nil)
	assert.Equal(t, []string{"carol"}, nextMembers(t, carol))

	bob.Close(websocket.StatusNormalClosure, "")
	assert.Equal(t, []string{"alice"}, nextMembers(t, alice), "carol's board is another")
	dave, _ := join(t, srv, "b", "dave", nil)
	assert.Equal(t, []string{"alice", "dave"}, nextMembers(t, dave))
	assert.Equal(t, []string{"alice", "dave"}, nextMembers(t, alice))
}

func TestTickerRunsWhileTheBoardHasMembers(t *testing.T) {
	a, srv := startApp(t)
	assert.Zero(t, a.running.Load())

	// The hello comes after the connection event, which joined the board:
	// its ticker is running by then.
	alice, _ := join(t, srv, "b1", "alice", nil)
	assert.EqualValues(t, 1, a.running.Load())
	bob, _ := join(t, srv, "b1", "bob", nil)
	assert.Equal(t, []string{"alice", "bob"}, nextMembers(t, bob))
	assert.EqualValues(t, 1, a.running.Load(), "one ticker per board")
	carol, _ := join(t, srv, "b2", "carol", nil)
	assert.EqualValues(t, 2, a.running.Load())

	alice.Close(websocket.StatusNormalClosure, "")
	assert.Equal(t, []string{"bob"}, nextMembers(t, bob)) // alice's close has run
	assert.EqualValues(t, 2, a.running.Load(), "b1 still has bob")
	frameWhere(t, bob, func(decoded) bool { return true })

	bob.Close(websocket.StatusNormalClosure, "")
	carol.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool { return a.running.Load() == 0 }, wait, time.Millisecond,
		"the tickers stop once their boards are empty")
	a.mu.Lock()
	assert.Empty(t, a.tickers)
	a.mu.Unlock()

	// A board that fills again gets a ticker again.
	dave, daveID := join(t, srv, "b1", "dave", nil)
	assert.EqualValues(t, 1, a.running.Load())
	dave.SendBinary(position(0.5, 0.5))
	frameWhere(t, dave, func(f decoded) bool { return f.cursors[daveID] == pos{0.5, 0.5} })
	dave.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool { return a.running.Load() == 0 }, wait, time.Millisecond)
}

func TestReadIdleClosesClientsThatStopSending(t *testing.T) {
	const idle = 500 * time.Millisecond
	a, srv := startApp(t, laf.WithReadIdleTimeout(idle))
	quiet, _ := join(t, srv, "b", "quiet", nil)
	talker, _ := join(t, srv, "b", "talker", nil)

	// The talker sends a position every 50 ms, ten times within the idle
	// timeout, for as long as the test needs it (and at most 30 s).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ws := talker.WS
		for range 600 {
			if ws.Write(t.Context(), websocket.MessageBinary, position(0.5, 0.5)) != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	// The board streams to quiet all along; it is closed all the same.
	frameWhere(t, quiet, func(decoded) bool { return true })
	assert.Equal(t, "idle", quiet.ExpectClose(websocket.StatusNormalClosure))
	// The talker is still there, and hears that quiet left.
	for names := nextMembers(t, talker); !slices.Equal(names, []string{"talker"}); names = nextMembers(t, talker) {
		assert.Contains(t, names, "quiet", "the lists of the joins come first")
	}
	assert.EqualValues(t, 1, a.ep.Stats().Closes[laf.CauseIdle])
	assert.Equal(t, 1, a.ep.Len())
}
