// Command clusterbench measures laf across the nodes of a cluster, for
// each broker adapter: the latency of a push by id from one node to a
// socket on another, and how many broadcast messages per second reach
// sockets spread over all nodes.
//
// Every node is a laf.Endpoint in this process, on its own loopback HTTP
// server and with its own broker connection, and every socket is a real
// WebSocket client, so a cross-node message goes endpoint → broker →
// endpoint → socket → client as it would between processes. Redis is a
// redis-server from PATH that the command starts on a free loopback port
// and stops; NATS is an in-process nats-server, "nats-flush" the same
// with natsbroker.WithPublishFlush; "local" is laf's in-process
// LocalBroker, a baseline without a network hop to a broker.
//
//	cd examples/cluster
//	go run ./cmd/clusterbench                       # table on stdout
//	go run ./cmd/clusterbench -o clusterbench.md    # table in a file
//	go run ./cmd/clusterbench -adapters nats -sockets 300
//
// Push latency: one socket on node 2; node 1 pushes to it by id, one push
// at a time, each timed from just before SendSocket until the client has
// read it; after a warm-up, p50 and p99 of -pushes pushes.
//
// Broadcast: -sockets sockets spread evenly over the nodes; -broadcasts
// binary messages of -size bytes, in rounds of -batch sent back to back
// from one node (a different node each round), each round waiting until
// every socket has read every message. Deliveries/s is sockets ×
// broadcasts over the time from the first send to the last read. A batch
// stays under laf's default send queue (256 messages), so no socket is
// dropped as slow; the command fails if any is.
//
// All traffic stays on loopback, and every loop is bounded in count and
// time.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/natsbroker"
	"github.com/lafgo/laf/redisbroker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// config is the command's flags.
type config struct {
	adapters   []string
	nodes      int
	pushes     int
	warmup     int
	sockets    int
	broadcasts int
	batch      int
	size       int
	timeout    time.Duration
	out        string
}

// result is one adapter's row.
type result struct {
	adapter, broker       string
	p50, p99, max         time.Duration
	deliveriesPerSec      float64
	broadcastElapsed      time.Duration
	publishErrors, failed uint64
}

func main() {
	var cfg config
	adapters := flag.String("adapters", "redis,nats,nats-flush,local", "comma-separated adapters to measure: redis, nats, nats-flush (natsbroker.WithPublishFlush), local")
	flag.IntVar(&cfg.nodes, "nodes", 3, "endpoints in the cluster (at least 2)")
	flag.IntVar(&cfg.pushes, "pushes", 2000, "timed pushes by id, after the warm-up")
	flag.IntVar(&cfg.warmup, "warmup", 200, "untimed pushes first")
	flag.IntVar(&cfg.sockets, "sockets", 1000, "sockets for the broadcast test, spread over the nodes")
	flag.IntVar(&cfg.broadcasts, "broadcasts", 500, "broadcasts in all")
	flag.IntVar(&cfg.batch, "batch", 100, "broadcasts per round, sent back to back (keep under the send queue of 256)")
	flag.IntVar(&cfg.size, "size", 1024, "broadcast payload in bytes")
	flag.DurationVar(&cfg.timeout, "timeout", time.Minute, "longest wait for any one step before giving up")
	flag.StringVar(&cfg.out, "o", "", "write the markdown table to this file instead of stdout")
	flag.Parse()
	cfg.adapters = strings.Split(*adapters, ",")
	if cfg.nodes < 2 || cfg.pushes < 1 || cfg.sockets < cfg.nodes || cfg.broadcasts < 1 || cfg.batch < 1 || cfg.size < 1 {
		fail(errors.New("need -nodes ≥ 2, -sockets ≥ -nodes, and positive -pushes, -broadcasts, -batch, -size"))
	}

	var results []result
	for _, name := range cfg.adapters {
		fmt.Fprintf(os.Stderr, "clusterbench: %s...\n", name)
		r, err := run(name, cfg)
		if err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
		fmt.Fprintf(os.Stderr, "clusterbench: %s: push p50 %v p99 %v, %.0f deliveries/s\n", name, r.p50, r.p99, r.deliveriesPerSec)
		results = append(results, r)
	}

	report := markdown(cfg, results)
	if cfg.out == "" {
		os.Stdout.WriteString(report)
		return
	}
	if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "clusterbench:", err)
	os.Exit(1)
}

// run measures one adapter on a cluster of its own, torn down before it
// returns.
func run(name string, cfg config) (r result, err error) {
	r.adapter = name
	newBroker, describe, stop, err := startBroker(name, cfg)
	if err != nil {
		return r, err
	}
	defer stop()
	r.broker = describe

	c, err := startCluster(cfg.nodes, newBroker)
	if err != nil {
		return r, err
	}
	defer c.close()

	if err := c.latency(cfg, &r); err != nil {
		return r, fmt.Errorf("push latency: %w", err)
	}
	if err := c.throughput(cfg, &r); err != nil {
		return r, fmt.Errorf("broadcast: %w", err)
	}
	for _, n := range c.nodes {
		r.publishErrors += n.ep.Stats().PublishErrors
	}
	return r, nil
}

// startBroker starts the adapter's broker and returns a function giving
// each node its own client, a description, and a function that stops it
// all.
func startBroker(name string, cfg config) (newBroker func() (laf.Broker, func(), error), describe string, stop func(), err error) {
	switch name {
	case "redis":
		rs, err := startRedis(cfg.timeout)
		if err != nil {
			return nil, "", nil, err
		}
		newBroker = func() (laf.Broker, func(), error) {
			client := redis.NewClient(&redis.Options{Addr: rs.addr})
			return redisbroker.New(client), func() { client.Close() }, nil
		}
		return newBroker, rs.version + ", loopback TCP", rs.stop, nil
	case "nats", "nats-flush":
		var opts []natsbroker.Option
		describe := "nats-server v" + server.VERSION + " in-process, loopback TCP"
		if name == "nats-flush" {
			opts = append(opts, natsbroker.WithPublishFlush())
			describe += ", WithPublishFlush"
		}
		s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
		if err != nil {
			return nil, "", nil, err
		}
		go s.Start()
		if !s.ReadyForConnections(cfg.timeout) {
			s.Shutdown()
			return nil, "", nil, errors.New("nats-server not ready")
		}
		newBroker = func() (laf.Broker, func(), error) {
			nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
			if err != nil {
				return nil, nil, err
			}
			return natsbroker.New(nc, opts...), nc.Close, nil
		}
		return newBroker, describe, func() { s.Shutdown(); s.WaitForShutdown() }, nil
	case "local":
		lb := laf.NewLocalBroker()
		newBroker = func() (laf.Broker, func(), error) { return lb, func() {}, nil }
		return newBroker, "laf.LocalBroker, in-process (baseline)", func() {}, nil
	}
	return nil, "", nil, fmt.Errorf("unknown adapter %q (want redis, nats, nats-flush or local)", name)
}

// redisServer is a redis-server process on a free loopback port.
type redisServer struct {
	addr, version string
	cmd           *exec.Cmd
	dir           string
}

func startRedis(timeout time.Duration) (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not in PATH: install it (apt-get install -y redis-server), or leave redis out of -adapters")
	}
	out, _ := exec.Command(path, "--version").Output()
	version := "redis-server"
	if _, v, ok := strings.Cut(string(out), " v="); ok {
		version += " " + strings.Fields(v)[0]
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "clusterbench-redis")
	if err != nil {
		return nil, err
	}
	var log bytes.Buffer
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	rs := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), version: version, cmd: cmd, dir: dir}
	c := redis.NewClient(&redis.Options{Addr: rs.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			rs.stop()
			return nil, fmt.Errorf("redis-server on %s not ready: %s", rs.addr, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return rs, nil
}

func (rs *redisServer) stop() {
	rs.cmd.Process.Kill()
	rs.cmd.Wait()
	os.RemoveAll(rs.dir)
}

// node is one endpoint of the cluster.
type node struct {
	ep    *laf.Endpoint
	hs    *httptest.Server
	wsURL string
	close func()
}

type cluster struct {
	nodes []*node
}

// startCluster starts n endpoints, each with its own broker client, that
// greet every socket with its id.
func startCluster(n int, newBroker func() (laf.Broker, func(), error)) (*cluster, error) {
	c := &cluster{}
	greet := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID())
		}
		return nil
	}
	for range n {
		b, closeBroker, err := newBroker()
		if err != nil {
			c.close()
			return nil, err
		}
		ep := laf.Handler(greet, laf.WithBroker(b), laf.WithHeartbeat(time.Second))
		hs := httptest.NewServer(ep)
		c.nodes = append(c.nodes, &node{ep: ep, hs: hs, wsURL: "ws" + strings.TrimPrefix(hs.URL, "http"), close: closeBroker})
	}
	return c, nil
}

func (c *cluster) close() {
	for _, n := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n.ep.Shutdown(ctx)
		cancel()
		n.hs.Close()
		n.close()
	}
}

// waitPresence waits until every node counts want sockets on all nodes.
func (c *cluster) waitPresence(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, n := range c.nodes {
			p := n.ep.Presence()
			ok = ok && p.Count() == want && p.Nodes() == len(c.nodes)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("presence did not reach %d sockets on %d nodes within %v", want, len(c.nodes), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client is a WebSocket client whose reads run on their own goroutine.
type client struct {
	ws *websocket.Conn
	id string
}

// dial connects to n and reads the greeting.
func dial(n *node, timeout time.Duration) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, n.wsURL, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(-1)
	_, id, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	return &client{ws: ws, id: string(id)}, nil
}

// latency times pushes by id from node 0 to a socket on node 1.
func (c *cluster) latency(cfg config, r *result) error {
	target, err := dial(c.nodes[1], cfg.timeout)
	if err != nil {
		return err
	}
	defer target.ws.CloseNow()
	if err := c.waitPresence(1, cfg.timeout); err != nil {
		return err
	}
	got := make(chan time.Time, 1)
	go func() {
		for {
			if _, _, err := target.ws.Read(context.Background()); err != nil {
				return
			}
			got <- time.Now()
		}
	}()
	from := c.nodes[0].ep
	msg := laf.Text("push")
	lat := make([]time.Duration, 0, cfg.pushes)
	for i := range cfg.warmup + cfg.pushes {
		start := time.Now()
		if err := from.SendSocket(context.Background(), target.id, msg); err != nil {
			return err
		}
		select {
		case at := <-got:
			if i >= cfg.warmup {
				lat = append(lat, at.Sub(start))
			}
		case <-time.After(cfg.timeout):
			return fmt.Errorf("push %d not received within %v", i, cfg.timeout)
		}
	}
	slices.Sort(lat)
	r.p50 = lat[len(lat)/2]
	r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	r.max = lat[len(lat)-1]
	// Let the cluster forget the target before the next test counts.
	target.ws.Close(websocket.StatusNormalClosure, "")
	return c.waitPresence(0, cfg.timeout)
}

// throughput measures broadcast deliveries per second to sockets spread
// over every node.
func (c *cluster) throughput(cfg config, r *result) error {
	clients := make([]*client, cfg.sockets)
	counts := make([]atomic.Int64, cfg.sockets)
	var total atomic.Int64
	var dialErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // dials in flight
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cl, err := dial(c.nodes[i%len(c.nodes)], cfg.timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				dialErr = err
				return
			}
			clients[i] = cl
		}()
	}
	wg.Wait()
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.ws.CloseNow()
			}
		}
	}()
	if dialErr != nil {
		return dialErr
	}
	if err := c.waitPresence(cfg.sockets, cfg.timeout); err != nil {
		return err
	}
	for i, cl := range clients {
		go func() {
			for {
				_, data, err := cl.ws.Read(context.Background())
				if err != nil {
					return
				}
				if len(data) == cfg.size {
					counts[i].Add(1)
					total.Add(1)
				}
			}
		}()
	}

	payload := bytes.Repeat([]byte{'x'}, cfg.size)
	msg := laf.Binary(payload)
	start := time.Now()
	sent := 0
	for round := 0; sent < cfg.broadcasts; round++ {
		from := c.nodes[round%len(c.nodes)].ep
		for range min(cfg.batch, cfg.broadcasts-sent) {
			if err := from.Broadcast(context.Background(), msg); err != nil {
				return err
			}
			sent++
		}
		want := int64(sent) * int64(cfg.sockets)
		deadline := time.Now().Add(cfg.timeout)
		for total.Load() < want {
			if time.Now().After(deadline) {
				return fmt.Errorf("round %d: %d of %d deliveries within %v", round, total.Load(), want, cfg.timeout)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	r.broadcastElapsed = time.Since(start)
	r.deliveriesPerSec = float64(cfg.sockets*cfg.broadcasts) / r.broadcastElapsed.Seconds()

	// Exactly once per socket: more would show as a total over want.
	time.Sleep(50 * time.Millisecond)
	for i := range counts {
		if got := counts[i].Load(); got != int64(cfg.broadcasts) {
			return fmt.Errorf("socket %d read %d broadcasts, want %d", i, got, cfg.broadcasts)
		}
	}
	for _, n := range c.nodes {
		s := n.ep.Stats()
		r.failed += s.Dropped + s.SlowClosed
	}
	if r.failed > 0 {
		return fmt.Errorf("%d messages dropped or sockets closed as slow", r.failed)
	}
	return nil
}

// markdown renders the results with what they were measured on.
func markdown(cfg config, results []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## laf cross-node benchmark\n\n")
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs, %s/%s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Command: `go run ./cmd/clusterbench %s` (in examples/cluster)\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "- Cluster: %d laf endpoints in one process, each on its own loopback HTTP server with its own broker connection; real WebSocket clients\n", cfg.nodes)
	fmt.Fprintf(&b, "- Push: node 1 → socket on node 2 by id, one at a time, %d timed after %d warm-up, until the client has read it\n", cfg.pushes, cfg.warmup)
	fmt.Fprintf(&b, "- Broadcast: %d sockets over %d nodes, %d broadcasts of %d B in rounds of %d from a different node each round\n\n", cfg.sockets, cfg.nodes, cfg.broadcasts, cfg.size, cfg.batch)
	b.WriteString("| Adapter | Broker | Push p50 | Push p99 | Push max | Broadcast deliveries/s | Broadcast time |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.adapter, r.broker,
			us(r.p50), us(r.p99), us(r.max), thousands(r.deliveriesPerSec), r.broadcastElapsed.Round(time.Millisecond))
	}
	return b.String()
}

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

// thousands formats n with thin separators: 1,234,567.
func thousands(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// cpuModel reads the CPU's name on Linux, or says what it can.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
