// Command clusterscale counts what a laf cluster costs each node, for
// each broker adapter and K = 2, 4 and 8 nodes: broker messages and bytes
// delivered to the nodes, not times, so that noise does not matter.
//
//	cd examples/cluster
//	go run ./cmd/clusterscale                    # table on stdout
//	go run ./cmd/clusterscale -o scale.md -adapters redis,nats -nodes 2,4,8
//
// Every node is a laf.Endpoint in this process, on its own loopback HTTP
// server with its own broker connection, and every socket a real
// WebSocket client. Each node's broker is wrapped to count what the
// broker delivers to that node's subscriptions (messages and bytes, by
// envelope op), which is what the node receives and decodes. Redis is a
// redis-server from PATH on a free loopback port; NATS an in-process
// nats-server.
//
// For each K it measures:
//
//   - push by id: -pushes pushes, each to a random socket through a
//     random other node; deliveries of pushes to all nodes, per push;
//   - room send: -rooms sends from node 1 to a room whose members are all
//     on node K; deliveries of room sends to all nodes, per send, and to
//     nodes without members;
//   - presence: with -sockets sockets per node, then 4× as many, idle,
//     the bytes of presence (beats, syncs) delivered to each node per
//     second over -window, with -heartbeat.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/internal/wire"
	"github.com/lafgo/laf/natsbroker"
	"github.com/lafgo/laf/redisbroker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

type config struct {
	adapters  []string
	nodes     []int
	pushes    int
	rooms     int
	sockets   int
	heartbeat time.Duration
	window    time.Duration
	timeout   time.Duration
}

// row is one adapter at one K.
type row struct {
	adapter string
	k       int
	// per push by id, and per room send: deliveries to all nodes
	perPush, perRoom, roomToOthers float64
	// presence bytes per node per second at 1× and 4× the sockets
	presence1, presence4 float64
	beatBytes            float64 // mean bytes of one beat
}

func main() {
	var cfg config
	adapters := flag.String("adapters", "redis,nats", "adapters: redis, nats")
	nodes := flag.String("nodes", "2,4,8", "cluster sizes")
	flag.IntVar(&cfg.pushes, "pushes", 1000, "pushes by id per K")
	flag.IntVar(&cfg.rooms, "rooms", 200, "room sends per K")
	flag.IntVar(&cfg.sockets, "sockets", 50, "sockets per node for presence at 1× (4× then)")
	flag.DurationVar(&cfg.heartbeat, "heartbeat", time.Second, "the nodes' heartbeat")
	flag.DurationVar(&cfg.window, "window", 5*time.Second, "how long presence is counted, idle")
	flag.DurationVar(&cfg.timeout, "timeout", time.Minute, "longest wait for any one step")
	out := flag.String("o", "", "write the markdown table to this file instead of stdout")
	flag.Parse()
	cfg.adapters = strings.Split(*adapters, ",")
	for _, s := range strings.Split(*nodes, ",") {
		k, err := strconv.Atoi(s)
		if err != nil || k < 2 {
			fail(fmt.Errorf("-nodes: %q is not a size of at least 2", s))
		}
		cfg.nodes = append(cfg.nodes, k)
	}
	var rows []row
	for _, a := range cfg.adapters {
		for _, k := range cfg.nodes {
			fmt.Fprintf(os.Stderr, "clusterscale: %s, K=%d...\n", a, k)
			r, err := run(a, k, cfg)
			if err != nil {
				fail(fmt.Errorf("%s K=%d: %w", a, k, err))
			}
			rows = append(rows, r)
		}
	}
	report := markdown(cfg, rows)
	if *out == "" {
		os.Stdout.WriteString(report)
		return
	}
	if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "clusterscale:", err)
	os.Exit(1)
}

// counter counts what the broker delivers to one node, by op.
type counter struct {
	mu    sync.Mutex
	msgs  map[wire.Op]int
	bytes map[wire.Op]int
}

func (c *counter) add(msg []byte) {
	env, err := wire.Decode(msg)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.msgs[env.Op]++
	c.bytes[env.Op] += len(msg)
	c.mu.Unlock()
}

func (c *counter) snapshot() (msgs, bytes map[wire.Op]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, bytes = make(map[wire.Op]int), make(map[wire.Op]int)
	for k, v := range c.msgs {
		msgs[k] = v
	}
	for k, v := range c.bytes {
		bytes[k] = v
	}
	return msgs, bytes
}

type counting struct {
	laf.Broker
	c *counter
}

func (b counting) Open(ctx context.Context, fn func([]byte)) (laf.Channels, error) {
	return b.Broker.Open(ctx, func(msg []byte) { b.c.add(msg); fn(msg) })
}

type node struct {
	ep    *laf.Endpoint
	hs    *httptest.Server
	count *counter
	close func()
	ws    []*websocket.Conn
	ids   []string
}

func run(adapter string, k int, cfg config) (r row, err error) {
	r.adapter, r.k = adapter, k
	newBroker, stop, err := startBroker(adapter, cfg.timeout)
	if err != nil {
		return r, err
	}
	defer stop()
	fn := func(ctx *laf.FunctionContext) error {
		switch ctx.Method {
		case laf.MethodConnection:
			return ctx.Socket.Send(ctx.Socket.ID())
		case laf.MethodMessage:
			ctx.Socket.Join(ctx.Params.Data.String())
			return ctx.Socket.Send("joined")
		}
		return nil
	}
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			for _, ws := range n.ws {
				ws.CloseNow()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			n.ep.Shutdown(ctx)
			cancel()
			n.hs.Close()
			n.close()
		}
	}()
	for range k {
		b, closeB, err := newBroker()
		if err != nil {
			return r, err
		}
		cnt := &counter{msgs: map[wire.Op]int{}, bytes: map[wire.Op]int{}}
		ep := laf.Handler(fn, laf.WithBroker(counting{b, cnt}), laf.WithHeartbeat(cfg.heartbeat))
		n := &node{ep: ep, hs: httptest.NewServer(ep), count: cnt, close: closeB}
		nodes = append(nodes, n)
	}
	if err := grow(nodes, cfg.sockets, cfg.timeout); err != nil {
		return r, err
	}

	// Push by id, each through a node other than the holder's.
	rng := rand.New(rand.NewPCG(1, uint64(k)))
	before := sum(nodes, wire.OpSend)
	for range cfg.pushes {
		holder := rng.IntN(k)
		from := (holder + 1 + rng.IntN(k-1)) % k
		id := nodes[holder].ids[rng.IntN(len(nodes[holder].ids))]
		if err := nodes[from].ep.SendSocket(context.Background(), id, laf.Text("p")); err != nil {
			return r, fmt.Errorf("push: %w", err)
		}
	}
	if err := settle(nodes, wire.OpSend, before+cfg.pushes, cfg.timeout); err != nil {
		return r, err
	}
	r.perPush = float64(sum(nodes, wire.OpSend)-before) / float64(cfg.pushes)

	// Room send: the members are node k's first 5 sockets.
	last := nodes[k-1]
	for _, ws := range last.ws[:5] {
		if err := ws.Write(context.Background(), websocket.MessageText, []byte("stage")); err != nil {
			return r, err
		}
	}
	if err := waitFor(cfg.timeout, func() bool { return len(nodes[0].ep.Presence().RoomMembers("stage")) == 5 }); err != nil {
		return r, errors.New("room members not seen")
	}
	beforeAll := sum(nodes, wire.OpRoom)
	beforeOthers := sum(nodes[:k-1], wire.OpRoom)
	for range cfg.rooms {
		if err := nodes[0].ep.SendRoom(context.Background(), "stage", laf.Text("r")); err != nil {
			return r, fmt.Errorf("room send: %w", err)
		}
	}
	if err := settle(nodes, wire.OpRoom, beforeAll+cfg.rooms, cfg.timeout); err != nil {
		return r, err
	}
	r.perRoom = float64(sum(nodes, wire.OpRoom)-beforeAll) / float64(cfg.rooms)
	r.roomToOthers = float64(sum(nodes[:k-1], wire.OpRoom)-beforeOthers) / float64(cfg.rooms)

	// Presence, idle, at 1× then 4× the sockets.
	r.presence1, r.beatBytes = presence(nodes, cfg)
	if err := grow(nodes, 4*cfg.sockets, cfg.timeout); err != nil {
		return r, err
	}
	r.presence4, _ = presence(nodes, cfg)
	return r, nil
}

// presence returns the presence bytes delivered per node per second, and
// the mean size of a beat, over an idle window.
func presence(nodes []*node, cfg config) (perNodePerSec, beat float64) {
	time.Sleep(cfg.heartbeat) // let the changes' beats pass
	type snap struct{ m, b map[wire.Op]int }
	start := make([]snap, len(nodes))
	for i, n := range nodes {
		start[i].m, start[i].b = n.count.snapshot()
	}
	t0 := time.Now()
	time.Sleep(cfg.window)
	secs := time.Since(t0).Seconds()
	var bytes, beats, beatBytes int
	for i, n := range nodes {
		m, b := n.count.snapshot()
		for _, op := range []wire.Op{wire.OpBeat, wire.OpSync, wire.OpBye, wire.OpPing} {
			bytes += b[op] - start[i].b[op]
		}
		beats += m[wire.OpBeat] - start[i].m[wire.OpBeat]
		beatBytes += b[wire.OpBeat] - start[i].b[wire.OpBeat]
	}
	if beats > 0 {
		beat = float64(beatBytes) / float64(beats)
	}
	return float64(bytes) / float64(len(nodes)) / secs, beat
}

// grow dials sockets until every node has want, and waits until every
// node counts them all.
func grow(nodes []*node, want int, timeout time.Duration) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 16)
	for _, n := range nodes {
		for range want - len(n.ws) {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.hs.URL, "http"), nil)
				var id []byte
				if err == nil {
					_, id, err = ws.Read(ctx)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = err
					return
				}
				n.ws = append(n.ws, ws)
				n.ids = append(n.ids, string(id))
				// Read and drop what comes, so no socket is slow.
				go func() {
					for {
						if _, _, err := ws.Read(context.Background()); err != nil {
							return
						}
					}
				}()
			}()
		}
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	total := want * len(nodes)
	return waitFor(timeout, func() bool {
		for _, n := range nodes {
			p := n.ep.Presence()
			if p.Count() != total || p.Nodes() != len(nodes) {
				return false
			}
		}
		return true
	})
}

func sum(nodes []*node, op wire.Op) int {
	total := 0
	for _, n := range nodes {
		m, _ := n.count.snapshot()
		total += m[op]
	}
	return total
}

// settle waits until at least want deliveries of op are counted, then a
// little more, for any beyond.
func settle(nodes []*node, op wire.Op, want int, timeout time.Duration) error {
	if err := waitFor(timeout, func() bool { return sum(nodes, op) >= want }); err != nil {
		return fmt.Errorf("%d of %d %s deliveries", sum(nodes, op), want, op)
	}
	time.Sleep(200 * time.Millisecond)
	return nil
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func startBroker(name string, timeout time.Duration) (func() (laf.Broker, func(), error), func(), error) {
	switch name {
	case "redis":
		path, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, nil, errors.New("redis-server is not in PATH (apt-get install -y redis-server)")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		dir, err := os.MkdirTemp("", "clusterscale-redis")
		if err != nil {
			return nil, nil, err
		}
		var log bytes.Buffer
		cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		stop := func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		if err := waitFor(timeout, func() bool { return c.Ping(context.Background()).Err() == nil }); err != nil {
			stop()
			return nil, nil, fmt.Errorf("redis-server not ready: %s", log.String())
		}
		return func() (laf.Broker, func(), error) {
			client := redis.NewClient(&redis.Options{Addr: addr})
			b := redisbroker.New(client)
			return b, func() { b.Close(); client.Close() }, nil
		}, stop, nil
	case "nats":
		s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
		if err != nil {
			return nil, nil, err
		}
		go s.Start()
		if !s.ReadyForConnections(timeout) {
			s.Shutdown()
			return nil, nil, errors.New("nats-server not ready")
		}
		return func() (laf.Broker, func(), error) {
			nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
			if err != nil {
				return nil, nil, err
			}
			b := natsbroker.New(nc)
			return b, func() { b.Close(); nc.Close() }, nil
		}, func() { s.Shutdown(); s.WaitForShutdown() }, nil
	}
	return nil, nil, fmt.Errorf("unknown adapter %q (want redis or nats)", name)
}

func markdown(cfg config, rows []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### laf cluster costs per node (counts and bytes)\n\n")
	fmt.Fprintf(&b, "- Go: %s, %s/%s, %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Command: `go run ./cmd/clusterscale %s` (in examples/cluster)\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "- %d pushes by id to random sockets through random other nodes; %d room sends from node 1 to a room with its members on node K; presence idle over %v with a %v heartbeat, %d and %d sockets per node\n\n",
		cfg.pushes, cfg.rooms, cfg.window, cfg.heartbeat, cfg.sockets, 4*cfg.sockets)
	b.WriteString("| Adapter | K | Deliveries per push by id | Deliveries per room send | … to nodes without members | Presence B/s per node, 1× | 4× | 4× / 1× | Beat size (B) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		ratio := 0.0
		if r.presence1 > 0 {
			ratio = r.presence4 / r.presence1
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %.2f | %.0f | %.0f | %.2f | %.0f |\n",
			r.adapter, r.k, r.perPush, r.perRoom, r.roomToOthers, r.presence1, r.presence4, ratio, r.beatBytes)
	}
	return b.String()
}
