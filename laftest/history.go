package laftest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
)

// HistoryLimits are the limits TestHistoryBroker keeps rooms' history
// with.
var HistoryLimits = laf.HistoryLimits{Size: 1000, TTL: time.Minute}

// TestHistoryBroker checks a laf.HistoryBroker: the brokers newBroker
// returns must implement it. It checks the broker's own contract (offsets
// 1, 2, … per room in one epoch whoever appends; each append published to
// the room's channel in offset order; History since a position returns
// exactly what came after it, within the size limit; lose, which makes
// the broker lose every room's history, starts a new epoch), then the
// contract of Endpoint.Publish and Socket.JoinSince across three nodes:
// publishes from every node reach every node's sockets once each, in
// offset order; a socket that reconnects to another node recovers
// exactly what it missed; a node that dies takes no history with it; and
// clients publishing and recovering through a rolling restart of every
// node miss nothing and get nothing twice (24 clients, or as many as the
// environment variable LAFTEST_ROLLING_CLIENTS says). Adapters call it
// from their own tests.
func TestHistoryBroker(t *testing.T, newBroker BrokerFactory, lose func()) {
	hb := func(t *testing.T) laf.HistoryBroker {
		b, _ := newBroker(t)
		h, ok := b.(laf.HistoryBroker)
		if !ok {
			t.Fatalf("laftest: %T is not a laf.HistoryBroker", b)
		}
		return h
	}
	t.Run("AppendAndRead", func(t *testing.T) {
		appendAndRead(t, hb(t), hb(t))
	})
	t.Run("OrderAcrossClients", func(t *testing.T) {
		orderAcrossClients(t, []laf.HistoryBroker{hb(t), hb(t), hb(t)})
	})
	t.Run("Lost", func(t *testing.T) {
		b := hb(t)
		room := uniqueRoom("lost")
		p1 := appendOK(t, b, room, "before")
		appendOK(t, b, room, "before 2")
		lose()
		p := appendOK(t, b, room, "after")
		if p.Epoch == p1.Epoch || p.Offset != 1 {
			t.Fatalf("after the history was lost: %v, want offset 1 of an epoch other than %q", p, p1.Epoch)
		}
		last, missed, err := b.History(context.Background(), roomChannel(room), p1, HistoryLimits)
		if err != nil || last != p || len(missed) != 0 {
			t.Fatalf("History since a lost epoch: %v %v %v, want %v and nothing", last, missed, err, p)
		}
	})
	t.Run("Cluster", func(t *testing.T) {
		historyCluster(t, newBroker)
	})
	t.Run("RollingRestart", func(t *testing.T) {
		clients := 24
		if n, err := strconv.Atoi(os.Getenv("LAFTEST_ROLLING_CLIENTS")); err == nil && n > 0 {
			clients = n // the 300, say
		}
		rollingRestart(t, newBroker, 3, clients, 3)
	})
}

// uniqueRoom returns a room name no other test uses, so that tests can
// share one broker.
func uniqueRoom(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func roomChannel(room string) string { return "r." + room }

func appendOK(t *testing.T, b laf.HistoryBroker, room, msg string) laf.Position {
	t.Helper()
	p, err := b.Append(context.Background(), roomChannel(room), []byte(msg), HistoryLimits)
	if err != nil {
		t.Fatalf("Append to %q: %v", room, err)
	}
	return p
}

// frame is a message a HistoryBroker published to a room's channel.
type frame struct {
	pos laf.Position
	msg string
}

func parseFrame(t *testing.T, b []byte) frame {
	t.Helper()
	rest, ok := bytes.CutPrefix(b, []byte("lafh "))
	sp := bytes.IndexByte(rest, ' ')
	if !ok || sp < 0 {
		t.Fatalf("published %q, not a history frame", b)
	}
	p, err := laf.ParsePosition(string(rest[:sp]))
	if err != nil {
		t.Fatalf("history frame %q: %v", b, err)
	}
	return frame{p, string(rest[sp+1:])}
}

// listen subscribes, through b, to room's channel and returns its frames.
func listen(t *testing.T, b laf.Broker, room string) <-chan frame {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan frame, 10000)
	chans, err := b.Open(ctx, func(msg []byte) { out <- parseFrame(t, msg) })
	if err != nil {
		t.Fatal(err)
	}
	if err := chans.Subscribe(context.Background(), roomChannel(room)); err != nil {
		t.Fatal(err)
	}
	return out
}

func nextFrame(t *testing.T, in <-chan frame) frame {
	t.Helper()
	select {
	case f := <-in:
		return f
	case <-time.After(DefaultTimeout):
		t.Fatalf("no history frame within %v", DefaultTimeout)
		return frame{}
	}
}

func appendAndRead(t *testing.T, a, b laf.HistoryBroker) {
	room := uniqueRoom("read")
	if last, missed, err := b.History(context.Background(), roomChannel(room), laf.Position{}, HistoryLimits); err != nil || last != (laf.Position{}) || len(missed) != 0 {
		t.Fatalf("History of a room never appended to: %v %v %v, want nothing", last, missed, err)
	}
	frames := listen(t, b, room)
	var pos []laf.Position
	for i := range 10 {
		p := appendOK(t, a, room, fmt.Sprint("m", i))
		if p.Offset != uint64(i+1) || p.Epoch == "" || i > 0 && p.Epoch != pos[0].Epoch {
			t.Fatalf("append %d: position %v, want offset %d of one epoch", i, p, i+1)
		}
		pos = append(pos, p)
	}
	for i := range 10 {
		if f := nextFrame(t, frames); f.pos != pos[i] || f.msg != fmt.Sprint("m", i) {
			t.Fatalf("frame %d: %v %q, want %v %q", i, f.pos, f.msg, pos[i], fmt.Sprint("m", i))
		}
	}
	last, missed, err := b.History(context.Background(), roomChannel(room), pos[6], HistoryLimits)
	if err != nil || last != pos[9] || len(missed) != 3 {
		t.Fatalf("History since offset 7: %v, %d messages, %v; want %v and 3", last, len(missed), err, pos[9])
	}
	for i, h := range missed {
		if h.Offset != uint64(8+i) || string(h.Msg) != fmt.Sprint("m", 7+i) {
			t.Fatalf("missed[%d]: %d %q", i, h.Offset, h.Msg)
		}
	}
	// Another epoch: the last position, nothing else.
	if last, missed, err := b.History(context.Background(), roomChannel(room), laf.Position{Epoch: "other", Offset: 3}, HistoryLimits); err != nil || last != pos[9] || len(missed) != 0 {
		t.Fatalf("History since another epoch: %v %v %v", last, missed, err)
	}
	// Within the size limit: the newest.
	small := laf.HistoryLimits{Size: 4, TTL: time.Minute}
	last, missed, err = b.History(context.Background(), roomChannel(room), pos[0], small)
	if err != nil || last != pos[9] || len(missed) > 4 || len(missed) > 0 && missed[len(missed)-1].Offset != 10 {
		t.Fatalf("History with Size 4: %v, %v, %v", last, missed, err)
	}
	if _, err := a.Append(context.Background(), roomChannel(room), []byte("late"), small); err != nil {
		t.Fatal(err)
	}
	_, missed, _ = b.History(context.Background(), roomChannel(room), pos[0], HistoryLimits)
	if len(missed) < 4 || missed[len(missed)-1].Offset != 11 {
		t.Fatalf("after an append with Size 4, history since 1: %v", missed)
	}
}

// orderAcrossClients appends from every client at once and checks that
// offsets are 1…n with none twice, and that a subscriber gets them in
// offset order.
func orderAcrossClients(t *testing.T, clients []laf.HistoryBroker) {
	room := uniqueRoom("order")
	frames := listen(t, clients[0], room)
	const each = 50
	var wg sync.WaitGroup
	errs := make(chan error, len(clients)*each)
	for c, b := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := b.Append(context.Background(), roomChannel(room), []byte(fmt.Sprintf("c%d-%d", c, i)), HistoryLimits); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next := make([]int, len(clients))
	for i := range len(clients) * each {
		f := nextFrame(t, frames)
		if f.pos.Offset != uint64(i+1) {
			t.Fatalf("frame %d has offset %d: out of order or missing", i, f.pos.Offset)
		}
		var c, n int
		fmt.Sscanf(f.msg, "c%d-%d", &c, &n)
		if n != next[c] {
			t.Fatalf("client %d's message %d came where %d was due", c, n, next[c])
		}
		next[c]++
	}
}

// historyOptions are the options of TestHistoryBroker's nodes.
func historyOptions(b laf.Broker) []laf.Option {
	return []laf.Option{laf.WithBroker(b), laf.WithHeartbeat(BrokerHeartbeat), laf.WithHistory(HistoryLimits.Size, HistoryLimits.TTL)}
}

// resumeFunc resumes, on connection, every room named in the query
// parameter "rooms" (comma-separated), from the positions in laf.Since.
func resumeFunc(ctx *laf.FunctionContext) error {
	if ctx.Method != laf.MethodConnection {
		return nil
	}
	for _, room := range strings.Split(ctx.Socket.Request().URL.Query().Get("rooms"), ",") {
		if room == "" {
			continue
		}
		if _, err := ctx.Socket.Resume(ctx, room); err != nil {
			return err
		}
	}
	return nil
}

func historyCluster(t *testing.T, newBroker BrokerFactory) {
	var nodes []*Server
	var cuts []func()
	for range 3 {
		b, cut := newBroker(t)
		nodes = append(nodes, NewServer(t, resumeFunc, historyOptions(b)...))
		cuts = append(cuts, cut)
	}
	room := uniqueRoom("cluster")
	var clients []*historyClient
	for _, n := range nodes {
		c := newHistoryClient(t, []string{room})
		c.connect(n)
		c.waitRecovered(room)
		clients = append(clients, c)
	}
	// Every node publishes at once.
	var mu sync.Mutex
	published := map[uint64]string{}
	publishAll := func(from []*Server, each int, tag string) {
		var wg sync.WaitGroup
		for i, n := range from {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					data := fmt.Sprintf("%s n%d #%d", tag, i, k)
					p, err := n.Endpoint.Publish(context.Background(), room, laf.Text(data))
					if err != nil {
						t.Errorf("Publish on node %d: %v", i, err)
						return
					}
					mu.Lock()
					if old, dup := published[p.Offset]; dup {
						t.Errorf("offset %d given twice: %q and %q", p.Offset, old, data)
					}
					published[p.Offset] = data
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	publishAll(nodes, 30, "a")
	if t.Failed() {
		t.FailNow()
	}
	want := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := make([]string, len(published))
		for off, d := range published {
			if off == 0 || off > uint64(len(out)) {
				t.Fatalf("offsets not 1…%d: %d", len(out), off)
			}
			out[off-1] = d
		}
		return out
	}
	for i, c := range clients {
		c.waitFor(room, want(), fmt.Sprintf("client on node %d", i))
	}
	// Client 0 drops; more messages; it comes back on node 2 and
	// recovers exactly what it missed.
	clients[0].drop()
	publishAll(nodes[1:], 10, "b")
	clients[0].connect(nodes[2])
	if !clients[0].waitRecovered(room) {
		t.Fatal("reconnecting to another node: not recovered")
	}
	for i, c := range clients {
		c.waitFor(room, want(), fmt.Sprintf("client %d after the reconnect", i))
	}
	// Node 1 dies with no goodbye: its sockets' clients recover on node
	// 0 what nodes 0 and 2 publish, and what node 1 published is not lost.
	clients[1].drop()
	cuts[1]()
	publishAll([]*Server{nodes[0], nodes[2]}, 10, "c")
	clients[1].connect(nodes[0])
	if !clients[1].waitRecovered(room) {
		t.Fatal("after a node died: not recovered")
	}
	for i, c := range clients {
		c.waitFor(room, want(), fmt.Sprintf("client %d after node 1 died", i))
	}
	// A position of another epoch is not recovered, and nothing is
	// queued from history.
	fresh := newHistoryClient(t, []string{room})
	fresh.positions[room] = laf.Position{Epoch: "gone", Offset: 2}.String()
	fresh.connect(nodes[2])
	if fresh.waitRecovered(room) {
		t.Fatal("a position of another epoch: recovered")
	}
	publishAll(nodes[2:], 1, "d")
	w := want()
	fresh.waitFor(room, w[len(w)-1:], "a client that recovered nothing")
}

// historyClient is a client as laf's browser client is: it remembers the
// position of the last published message from each room and sends them
// when it reconnects; it checks that every room's messages come in
// offset order, none twice.
type historyClient struct {
	t     *testing.T
	rooms []string

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	conn      *websocket.Conn
	positions map[string]string   // room → "EPOCH:OFFSET"
	sent      map[string]string   // the positions the last dial sent
	got       map[string][]string // room → data, in order
	notices   []notice
	err       error
}

type notice struct {
	Laf       string `json:"laf"`
	Room      string `json:"room"`
	Recovered bool   `json:"recovered"`
	Pos       string `json:"pos"`
}

func newHistoryClient(t *testing.T, rooms []string) *historyClient {
	return &historyClient{t: t, rooms: rooms, changed: make(chan struct{}), positions: map[string]string{}, got: map[string][]string{}}
}

// dial connects to srv with the client's positions, or returns an error.
func (c *historyClient) dial(srv *Server) error {
	c.mu.Lock()
	q := url.Values{"rooms": {strings.Join(c.rooms, ",")}}
	if len(c.positions) > 0 {
		since, _ := json.Marshal(c.positions)
		q.Set(laf.SinceParam, string(since))
	}
	c.sent = maps.Clone(c.positions)
	c.notices = nil
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WSURL+"/?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	ws.SetReadLimit(-1)
	c.mu.Lock()
	c.conn = ws
	c.mu.Unlock()
	go c.read(ws)
	return nil
}

func (c *historyClient) connect(srv *Server) {
	c.t.Helper()
	if err := c.dial(srv); err != nil {
		c.t.Fatalf("dial: %v", err)
	}
}

// drop closes the connection, as a lost network would.
func (c *historyClient) drop() {
	c.mu.Lock()
	ws := c.conn
	c.conn = nil
	c.mu.Unlock()
	if ws != nil {
		ws.CloseNow()
	}
}

// read reads ws until it closes, recording what comes.
func (c *historyClient) read(ws *websocket.Conn) {
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			if c.conn == ws {
				c.conn = nil
			}
			c.signal()
			c.mu.Unlock()
			return
		}
		var n notice
		var p Published
		c.mu.Lock()
		switch {
		case json.Unmarshal(data, &n) == nil && n.Laf == "recovered":
			c.notices = append(c.notices, n)
			if n.Pos != "" {
				c.positions[n.Room] = n.Pos
			}
		case json.Unmarshal(data, &p) == nil && p.Pos != "":
			pos := p.Position()
			if prev, ok := c.positions[p.Room]; ok {
				pp, _ := laf.ParsePosition(prev)
				if pp.Epoch == pos.Epoch && pos.Offset != pp.Offset+1 && c.err == nil {
					c.err = fmt.Errorf("room %s: %v after %v", p.Room, pos, pp)
				}
			}
			c.positions[p.Room] = p.Pos
			var s string
			json.Unmarshal(p.Data, &s)
			c.got[p.Room] = append(c.got[p.Room], s)
		}
		c.signal()
		c.mu.Unlock()
	}
}

// signal wakes waiters. c.mu is held.
func (c *historyClient) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// wait waits until cond, called under c.mu, holds.
func (c *historyClient) wait(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(DefaultTimeout)
	for {
		c.mu.Lock()
		ok, err, ch := cond(), c.err, c.changed
		c.mu.Unlock()
		if err != nil {
			c.t.Fatal(err)
		}
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			c.t.Fatalf("%s: not within %v", what, DefaultTimeout)
		}
	}
}

// waitRecovered waits for the notice of room and returns whether it
// said recovered.
func (c *historyClient) waitRecovered(room string) bool {
	c.t.Helper()
	var rec bool
	c.wait("recovered notice for "+room, func() bool {
		for _, n := range c.notices {
			if n.Room == room {
				rec = n.Recovered
				return true
			}
		}
		return false
	})
	return rec
}

// waitFor waits until the client has got want from room, and checks
// that it got exactly that.
func (c *historyClient) waitFor(room string, want []string, who string) {
	c.t.Helper()
	c.wait(fmt.Sprintf("%s: %d messages of %s", who, len(want), room), func() bool { return len(c.got[room]) >= len(want) })
	c.mu.Lock()
	got := slices.Clone(c.got[room])
	c.mu.Unlock()
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				c.t.Fatalf("%s: message %d of %s is %q, want %q (%d got, %d published)", who, i, room, got[i], want[i], len(got), len(want))
			}
		}
		c.t.Fatalf("%s: got %d messages of %s, want %d", who, len(got), room, len(want))
	}
}

// TestHistoryOutage checks Publish and JoinSince on two endpoints, on a
// and b (two clients of one broker that keeps history), through an
// outage of the broker: stop takes it down and returns once both clients
// have noticed; start brings it back. While it is down, Publish returns
// an error and queues nothing, not even on the publishing node's own
// sockets, so nothing recorded locally can later diverge from the
// broker. Once it is back, publishes resume in offset order, and a
// client that reconnects to the other node either recovers exactly what
// it missed or is told it did not (the broker may have lost the history
// in the outage: then the epoch is new). Adapters call it from their own
// tests.
func TestHistoryOutage(t *testing.T, a, b laf.Broker, stop, start func()) {
	nodes := []*Server{
		NewServer(t, resumeFunc, laf.WithBroker(a), laf.WithHeartbeat(OutageHeartbeat), laf.WithHistory(HistoryLimits.Size, HistoryLimits.TTL)),
		NewServer(t, resumeFunc, laf.WithBroker(b), laf.WithHeartbeat(OutageHeartbeat), laf.WithHistory(HistoryLimits.Size, HistoryLimits.TTL)),
	}
	room := uniqueRoom("outage")
	cs := []*historyClient{newHistoryClient(t, []string{room}), newHistoryClient(t, []string{room})}
	for i, c := range cs {
		c.connect(nodes[i])
		c.waitRecovered(room)
	}
	var want []string
	publish := func(n int, data string) error {
		_, err := nodes[n].Endpoint.Publish(context.Background(), room, laf.Text(data))
		if err == nil {
			want = append(want, data)
		}
		return err
	}
	for i := range 5 {
		if err := publish(i%2, fmt.Sprint("before ", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cs {
		c.waitFor(room, want, fmt.Sprint("client ", i, " before the outage"))
	}
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	_, err := nodes[0].Endpoint.Publish(ctx, room, laf.Text("during"))
	cancel()
	if err == nil {
		t.Fatal("Publish with the broker down: no error")
	}
	if errors.Is(err, laf.ErrNotFound) {
		t.Fatalf("Publish with the broker down: %v", err)
	}
	start()
	// Publishes resume once each node's client has reconnected.
	waitFor(t, "Publish works again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, n := range nodes {
			if _, err := n.Endpoint.Publish(ctx, room, laf.Text("probe")); err != nil {
				return false
			}
		}
		return true
	})
	// Client 0 drops and comes back on node 1 while both nodes publish.
	cs[0].drop()
	for i := range 4 {
		if err := publish(i%2, fmt.Sprint("after ", i)); err != nil {
			t.Fatal(err)
		}
	}
	cs[0].connect(nodes[1])
	recovered := cs[0].waitRecovered(room)
	if err := publish(0, "last"); err != nil {
		t.Fatal(err)
	}
	// Client 1 stayed: it never got "during", and got everything else
	// published after the outage in order (its epoch may have changed,
	// if the broker lost the history).
	cs[1].waitUntil(room, "last")
	cs[1].mu.Lock()
	got1 := slices.Clone(cs[1].got[room])
	cs[1].mu.Unlock()
	if slices.Contains(got1, "during") {
		t.Fatalf("a message whose Publish failed was delivered: %q", got1)
	}
	cs[0].waitUntil(room, "last")
	cs[0].mu.Lock()
	got0 := slices.Clone(cs[0].got[room])
	cs[0].mu.Unlock()
	if slices.Contains(got0, "during") {
		t.Fatalf("a message whose Publish failed was delivered: %q", got0)
	}
	if recovered {
		// Exact: what client 1 got, every message, once each.
		if !slices.Equal(got0, got1) {
			t.Fatalf("recovered, but client 0 got %q and client 1 %q", got0, got1)
		}
	}
	t.Logf("after the outage, the reconnecting client recovered: %v", recovered)
}

// waitUntil waits until the client has got data from room.
func (c *historyClient) waitUntil(room, data string) {
	c.t.Helper()
	c.wait("message "+data+" of "+room, func() bool { return slices.Contains(c.got[room], data) })
}
