//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sockBuf is the kernel buffer size, each way, of the connections that
// should fill up fast: a client that stops reading is then blocked after
// a few kilobytes instead of megabytes.
const sockBuf = 4096

func shrinkBuffers(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, sockBuf),
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, sockBuf))
	})
	return errors.Join(err, serr)
}

// smallBuffers shrinks the buffers of every connection it accepts.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			shrinkBuffers(rc) // if it fails, the test times out waiting for the client to be stuck, and says so
		}
	}
	return c, nil
}

// smallClient dials with small buffers, set before the connection opens
// so that the receive window starts small.
func smallClient() *websocket.DialOptions {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error { return shrinkBuffers(rc) }}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}

// recorder reads a connection in the background and keeps its member
// lists, in order, and its newest cursor frame.
type recorder struct {
	mu       sync.Mutex
	lists    []string
	newest   decoded
	maxFrame int
	err      error
}

func record(ws *websocket.Conn) *recorder {
	r := &recorder{}
	go func() {
		for {
			typ, data, err := ws.Read(context.Background())
			if err != nil {
				return // closed by the test's cleanup
			}
			r.mu.Lock()
			if typ == websocket.MessageText {
				r.lists = append(r.lists, string(data))
			} else if f, err := parseFrame(data); err != nil {
				r.err = err
			} else {
				if f.seq <= r.newest.seq {
					r.err = fmt.Errorf("frame %d after frame %d", f.seq, r.newest.seq)
				}
				r.newest = f
				r.maxFrame = max(r.maxFrame, len(data))
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// drain reads and drops every message of ws, in the background.
func drain(ws *websocket.Conn) {
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
}

func names(list string) []string {
	var m membersMsg
	if json.Unmarshal([]byte(list), &m) != nil {
		return nil
	}
	var n []string
	for _, x := range m.Members {
		n = append(n, x.Name)
	}
	return n
}

// until polls cond on the test's goroutine until it holds, for at most
// timeout.
func until(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
	}
}

// waitMembers waits until the newest member list the recorder has is want.
func (r *recorder) waitMembers(t *testing.T, want ...string) {
	t.Helper()
	until(t, wait, fmt.Sprintf("member list %v", want), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.lists) > 0 && slices.Equal(names(r.lists[len(r.lists)-1]), want)
	})
}

// A client that stops reading, among readers, while its board streams at
// 30 Hz and members come and go, is not closed as a slow consumer; its
// queue holds the newest frame and the member lists, never a backlog of
// frames; and once it reads again it gets every member list, in order,
// and then the newest frame.
func TestStuckClientGetsEveryListAndThenTheNewestFrame(t *testing.T) {
	const movers, churn = 20, 5
	// Pings off: a client that never reads never answers them, and the
	// pong timeout would close it after 40 s, which a slow machine
	// running this test many times might reach.
	a := newApp(laf.WithPing(0, 0))
	srv := laftest.NewUnstartedServer(t, a.mux, a.ep)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()

	watcher, _ := join(t, srv, "b", "watcher", nil)
	w := record(watcher.WS)
	w.waitMembers(t, "watcher")
	members := []string{"watcher"}

	// The stuck client reads nothing from here on.
	stuckConn := srv.DialPath(t, boardURL("b", "stuck"), smallClient())
	members = append(members, "stuck")
	w.waitMembers(t, members...)
	var stuck *laf.Socket
	a.ep.RangeRoom("b", func(s *laf.Socket) bool {
		if m, ok := s.Get(keyMember); ok && m.(member).Name == "stuck" {
			stuck = s
		}
		return stuck == nil
	})
	require.NotNil(t, stuck)
	// Readers with a cursor each make the frames a few hundred bytes.
	conns := make([]*laftest.Conn, movers)
	ids := make([]uint32, movers)
	for i := range conns {
		name := fmt.Sprintf("m%02d", i)
		conns[i], ids[i] = join(t, srv, "b", name, nil)
		drain(conns[i].WS)
		conns[i].SendBinary(position(float32(i)/32, 0))
		members = append(members, name)
		w.waitMembers(t, members...)
	}

	// Stuck: the kernel's buffers are full and its writer is blocked, so
	// its queue stays non-empty while a reader's empties at once.
	var since time.Time
	until(t, 30*time.Second, "the stuck client's buffers to fill", func() bool {
		if stuck.Buffered() == 0 {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) > 300*time.Millisecond // 9 frames
	})
	// From here its queue holds the newest frame and what else is sent:
	// its Buffered grows by the member lists alone.
	atStuck := stuck.Buffered()
	w.mu.Lock()
	listsAtStuck := len(w.lists)
	w.mu.Unlock()
	replacedAtStuck := a.ep.Stats().Replaced
	var peak atomic.Int64
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if b := int64(stuck.Buffered()); b > peak.Load() {
				peak.Store(b)
			}
			select {
			case <-sampling:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	stopSampling := sync.OnceFunc(func() { close(sampling); sampler.Wait() })
	defer stopSampling()

	// Members come and go while it is stuck.
	for i := range churn {
		name := fmt.Sprintf("z%d", i)
		c, _ := join(t, srv, "b", name, nil)
		w.waitMembers(t, append(members, name)...)
		c.Close(websocket.StatusNormalClosure, "")
		w.waitMembers(t, members...)
	}
	// The movers move, and the watcher sees where they end.
	final := map[uint32]pos{}
	for i, c := range conns {
		p := pos{float32(i+1) / 32, 1 - float32(i+1)/32}
		final[ids[i]] = p
		c.SendBinary(position(p.x, p.y))
	}
	// And the board streams on, for a second at least.
	until(t, wait, "30 frames replaced", func() bool { return a.ep.Stats().Replaced >= replacedAtStuck+frameRate })
	until(t, wait, "the watcher to see the final positions", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for id, p := range final {
			if w.newest.cursors[id] != p {
				return false
			}
		}
		return true
	})

	// Still open, not a slow consumer, and its queue never held more
	// than one frame beside the member lists.
	stopSampling()
	w.mu.Lock()
	require.NoError(t, w.err)
	releaseSeq := w.newest.seq
	from := slices.IndexFunc(w.lists, func(l string) bool { return slices.Contains(names(l), "stuck") })
	want := slices.Clone(w.lists[from:])
	listBytes := 0
	for _, l := range w.lists[listsAtStuck:] {
		listBytes += len(l)
	}
	frameSize := w.maxFrame
	w.mu.Unlock()
	_, open := a.ep.Socket(stuck.ID())
	require.True(t, open, "the stuck client is still open")
	st := a.ep.Stats()
	assert.Zero(t, st.SlowClosed)
	assert.Zero(t, st.Closes[laf.CauseSlowConsumer])
	assert.Zero(t, stuck.Dropped())
	bound := atStuck + listBytes + frameSize
	assert.LessOrEqual(t, int(peak.Load()), bound, "Buffered: what it was when stuck, the member lists since, and one frame")
	t.Logf("stuck for %d frames of %d B; Buffered %d B when stuck, then at most %d B (bound %d B, with %d B of member lists)",
		st.Replaced-replacedAtStuck, frameSize, atStuck, peak.Load(), bound, listBytes)

	// It reads again: the hello, then every member list in order, with
	// frames that only move forward among them; then, after the last
	// list, a frame at least as new as the newest the watcher had.
	binary, data := stuckConn.Read()
	require.False(t, binary)
	require.Contains(t, string(data), `"type":"hello"`)
	var lastSeq uint32
	frames := 0
	for got := 0; got < len(want); {
		binary, data := stuckConn.Read()
		if !binary {
			require.Equal(t, want[got], string(data), "member list %d of %d", got+1, len(want))
			got++
			continue
		}
		f := decode(t, data)
		require.Greater(t, f.seq, lastSeq, "frames only move forward")
		lastSeq = f.seq
		frames++
	}
	binary, data = stuckConn.Read()
	require.True(t, binary, "no member list after the last one")
	f := decode(t, data)
	assert.GreaterOrEqual(t, f.seq, releaseSeq, "the newest frame")
	assert.Greater(t, f.seq, lastSeq)
	for id, p := range final {
		assert.Equal(t, p, f.cursors[id], "cursor %d", id)
	}
	t.Logf("it read %d frames before the last member list, then frame %d (the watcher had %d)", frames, f.seq, releaseSeq)
}
