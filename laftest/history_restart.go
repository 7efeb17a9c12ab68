package laftest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lafgo/laf"
)

// rollingNodes are the nodes of a rolling restart; a node is down while
// it restarts, and neither publishers nor clients pick it.
type rollingNodes struct {
	mu    sync.Mutex
	nodes []*Server
	up    []bool
}

func (r *rollingNodes) pick() (*Server, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var live []*Server
	for i, n := range r.nodes {
		if r.up[i] {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		return nil, false
	}
	return live[rand.IntN(len(live))], true
}

func (r *rollingNodes) set(i int, n *Server, up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n != nil {
		r.nodes[i] = n
	}
	r.up[i] = up
}

// rollingRestart runs clients on nodes nodes, each in a room of its own
// and one they all share, while publishers publish to those rooms
// through random nodes, and restarts every node in turn (Shutdown, then a
// new endpoint with a new client of the broker). Clients reconnect to a
// random live node with their positions. At the end every client must
// have every message of its rooms, exactly once, in order.
func rollingRestart(t *testing.T, newBroker BrokerFactory, nodes, clients, publishers int) {
	start := func() *Server {
		b, _ := newBroker(t)
		return NewServer(t, resumeFunc, historyOptions(b)...)
	}
	rn := &rollingNodes{nodes: make([]*Server, nodes), up: make([]bool, nodes)}
	for i := range nodes {
		rn.set(i, start(), true)
	}
	// Each room gets a first message before its clients join, so that
	// every client has a position to come back with from the start. (A
	// client that joins a room nothing was published to gets no position,
	// and if it loses its connection before the first message reaches it,
	// it comes back with none and is not recovered: it would need a
	// snapshot.)
	seed := func(room string) {
		if _, err := rn.nodes[0].Endpoint.Publish(context.Background(), room, laf.Text("seed")); err != nil {
			t.Fatal(err)
		}
	}
	shared := uniqueRoom("all")
	seed(shared)
	var cs []*historyClient
	var userRooms []string
	for i := range clients {
		user := uniqueRoom(fmt.Sprint("user", i))
		seed(user)
		userRooms = append(userRooms, user)
		c := newHistoryClient(t, []string{shared, user})
		c.connect(rn.nodes[i%nodes])
		c.waitRecovered(shared)
		c.waitRecovered(user)
		cs = append(cs, c)
	}

	// Publishers.
	var pmu sync.Mutex
	published := map[string]map[uint64]string{}
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); pwg.Wait() }
	t.Cleanup(halt)
	var sent atomic.Int64
	for p := range publishers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(rand.IntN(4)) * time.Millisecond):
				}
				room := shared
				if rand.IntN(4) > 0 {
					room = userRooms[rand.IntN(len(userRooms))]
				}
				n, ok := rn.pick()
				if !ok {
					continue
				}
				data := fmt.Sprintf("p%d #%d", p, k)
				pos, err := n.Endpoint.Publish(context.Background(), room, laf.Text(data))
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				sent.Add(1)
				pmu.Lock()
				if published[room] == nil {
					published[room] = map[uint64]string{}
				}
				if old, dup := published[room][pos.Offset]; dup {
					t.Errorf("room %s: offset %d given twice (%q, %q)", room, pos.Offset, old, data)
				}
				published[room][pos.Offset] = data
				pmu.Unlock()
			}
		}()
	}

	// Clients reconnect by themselves.
	var reconnects atomic.Int64
	var cmu sync.Mutex
	var catchUp []time.Duration
	done := make(chan struct{})
	var cwg sync.WaitGroup
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			close(done)
		}
		cwg.Wait()
	})
	for _, c := range cs {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				c.mu.Lock()
				connected, ch := c.conn != nil, c.changed
				c.mu.Unlock()
				if connected {
					select {
					case <-done:
						return
					case <-ch:
						continue
					}
				}
				began := time.Now()
				for {
					select {
					case <-done:
						return
					case <-time.After(time.Duration(rand.IntN(20)) * time.Millisecond): // jitter
					}
					n, ok := rn.pick()
					if ok && c.dial(n) == nil {
						break
					}
				}
				reconnects.Add(1)
				var lost []string
				c.wait("reconnected and resumed", func() bool {
					lost = nil
					for _, n := range c.notices {
						if !n.Recovered && c.sent[n.Room] != "" {
							lost = append(lost, n.Room+" since "+c.sent[n.Room])
						}
					}
					return len(c.notices) == len(c.rooms) || c.conn == nil
				})
				if len(lost) > 0 {
					t.Errorf("a client reconnected and did not recover %v", lost)
				}
				cmu.Lock()
				catchUp = append(catchUp, time.Since(began))
				cmu.Unlock()
			}
		}()
	}

	time.Sleep(200 * time.Millisecond) // publishing under way
	for i := range nodes {
		rn.set(i, nil, false)
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		if err := rn.nodes[i].Endpoint.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown of node %d: %v", i, err)
		}
		cancel()
		rn.nodes[i].Close()
		n := start()
		waitFor(t, "restarted node ready", func() bool { return n.Endpoint.Ready() == nil })
		rn.set(i, n, true)
		waitFor(t, "every client back", func() bool {
			for _, c := range cs {
				c.mu.Lock()
				back := c.conn != nil && len(c.notices) == len(c.rooms)
				c.mu.Unlock()
				if !back {
					return false
				}
			}
			return true
		})
		time.Sleep(100 * time.Millisecond) // publishing on the new node
	}
	halt()
	if t.Failed() {
		t.FailNow()
	}
	want := func(room string) []string {
		pmu.Lock()
		defer pmu.Unlock()
		// Offsets 2, 3, …: 1 is the seed, published before the client
		// joined.
		out := make([]string, len(published[room]))
		for off, d := range published[room] {
			if off < 2 || off > uint64(len(out))+1 {
				t.Fatalf("room %s: offsets not 2…%d: %d", room, len(out)+1, off)
			}
			out[off-2] = d
		}
		return out
	}
	for i, c := range cs {
		c.waitFor(shared, want(shared), fmt.Sprint("client ", i))
		c.waitFor(userRooms[i], want(userRooms[i]), fmt.Sprint("client ", i))
	}
	close(done)
	cwg.Wait()
	cmu.Lock()
	d := slices.Clone(catchUp)
	cmu.Unlock()
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(p*float64(len(d))))]
	}
	if t.Failed() {
		return
	}
	delivered := 0
	for _, c := range cs {
		c.mu.Lock()
		for _, got := range c.got {
			delivered += len(got)
		}
		c.mu.Unlock()
	}
	t.Logf("rolling restart of %d nodes, %d clients: %d messages published, %d delivered, %d reconnects, catch-up (drop to resumed) p50 %v p99 %v, 0 lost, 0 duplicated",
		nodes, clients, sent.Load(), delivered, reconnects.Load(), q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond))
}
