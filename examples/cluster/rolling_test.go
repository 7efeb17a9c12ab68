package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
)

// The rolling restart's settings: how many clients, how long each node
// drains, the sockets' maximum lifetime (short, so that they rebalance
// within the test), and how soon after a node is ready again every
// client must be on a node.
const (
	rollingClients  = 100
	rollingDrain    = time.Second
	rollingLifetime = 4 * time.Second
	backWithin      = 2 * time.Second
)

// TestRollingRestart runs what CLUSTER.md tells an operator to do: three
// nodes of this command, built and run as processes, on one Redis (then
// one NATS server), behind nginx.conf, with clients that reconnect with
// backoff and jitter, and pushes flowing through nginx. Each node in
// turn gets SIGTERM (it drains: 1012 over -drain, then exits), is started
// again, and becomes ready. The test asserts that within backWithin of
// each node's readiness every client is on a node; that no upgrade
// failed through nginx; that every close was a drain's 1012 or a
// lifetime's 1001; that the pushes were answered truly (none arrived
// twice, none was lost after a 202, no 404 for a live socket, no 503 or
// 502 for one delivered) and within the broker timeout; and that a lifetime after
// the last restart every node holds at least a quarter of the sockets (a
// third is fair). It logs how long the clients took to reconnect, and the
// pushes' answers.
func TestRollingRestart(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not in PATH (apt-get install -y nginx)")
	}
	bin := buildNode(t)
	t.Run("redis", func(t *testing.T) { rollingRestart(t, nginx, bin, startRedis(t)) })
	t.Run("nats", func(t *testing.T) { rollingRestart(t, nginx, bin, startNATS(t)) })
}

func rollingRestart(t *testing.T, nginx, bin, brokerURL string) {
	var nodes []*nodeProc
	var addrs []string
	for i := range 3 {
		n := &nodeProc{t: t, bin: bin, name: "n" + strconv.Itoa(i+1), addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), broker: brokerURL}
		t.Cleanup(n.kill)
		n.start()
		nodes, addrs = append(nodes, n), append(addrs, n.addr)
	}
	for _, n := range nodes {
		n.awaitReady()
	}
	port := freePort(t)
	runNginx(t, nginx, nginxConf(t, port, addrs), port)
	wsURL := "ws://127.0.0.1:" + strconv.Itoa(port) + "/ws"

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	clients := make([]*rollingClient, rollingClients)
	for i := range clients {
		clients[i] = &rollingClient{url: wsURL + "?name=c" + strconv.Itoa(i)}
		wg.Go(func() { clients[i].run(ctx) })
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	eventually(t, "every client connected", func() bool {
		for _, c := range clients {
			if !c.connected() {
				return false
			}
		}
		return true
	})

	var lastReady time.Time
	// Pushes flow through nginx all along, to the open socket of a
	// random client.
	pushCtx, stopPushes := context.WithCancel(ctx)
	var pushers sync.WaitGroup
	var pushMu sync.Mutex
	var pushes []push
	seq := 0
	for range 2 {
		pushers.Go(func() {
			for pushCtx.Err() == nil {
				ci := rand.N(len(clients))
				if id := clients[ci].openID(); id != "" {
					pushMu.Lock()
					seq++
					p := push{client: ci, id: id, body: "push-" + strconv.Itoa(seq)}
					pushMu.Unlock()
					start := time.Now()
					p.code = postCode(pushCtx, "http://127.0.0.1:"+strconv.Itoa(port)+"/push?id="+p.id, p.body)
					p.took = time.Since(start)
					if p.code != 0 {
						pushMu.Lock()
						pushes = append(pushes, p)
						pushMu.Unlock()
					}
				}
				select {
				case <-pushCtx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}

	for _, n := range nodes {
		term := time.Now()
		n.stop()
		n.start()
		n.awaitReady()
		ready := time.Now()
		lastReady = ready
		deadline := ready.Add(backWithin)
		for time.Now().Before(deadline) && !allBackBy(clients, ready, deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !allBackBy(clients, ready, deadline) {
			for _, c := range clients {
				if !c.backBy(ready, deadline) {
					t.Errorf("%s: not on a node within %v of %s's readiness; its connections: %s", c.url, backWithin, n.name, c.history())
				}
			}
			t.FailNow()
		}
		gaps, after := reconnects(clients, term, ready)
		t.Logf("%s restarted: TERM to ready %v; %d reconnects since TERM, gap from close to welcome p50 %v p99 %v max %v; after readiness, clients not yet back: p50 %v p99 %v max %v",
			n.name, ready.Sub(term).Round(time.Millisecond), len(gaps), pct(gaps, 50), pct(gaps, 99), pct(gaps, 100), pct(after, 50), pct(after, 99), pct(after, 100))
	}

	stopPushes()
	pushers.Wait()

	// A lifetime after the last node's readiness, every socket has
	// closed with 1001 and come back through nginx's round robin once.
	time.Sleep(time.Until(lastReady.Add(rollingLifetime)))
	var spread []int
	eventually(t, "sockets spread over the three nodes", func() bool {
		spread = spread[:0]
		ok := true
		for _, n := range nodes {
			local := getPresence(t, "http://"+n.addr+"/presence").Local
			spread = append(spread, local)
			ok = ok && local >= rollingClients/4
		}
		return ok
	})
	t.Logf("spread a lifetime (%v) after the last restart: %v of %d clients", rollingLifetime, spread, rollingClients)

	cancel()
	wg.Wait()
	codes := map[websocket.StatusCode]int{}
	failedDials := 0
	for _, c := range clients {
		c.mu.Lock()
		for code, k := range c.codes {
			codes[code] += k
		}
		failedDials += c.failedDials
		c.mu.Unlock()
	}
	t.Logf("closes seen by clients: %v; failed dials: %d", codes, failedDials)
	if failedDials > 0 {
		t.Errorf("%d upgrades through nginx failed; with max_fails=0 and proxy_next_upstream none should", failedDials)
	}
	for code := range codes {
		if code != 1012 && code != websocket.StatusGoingAway {
			t.Errorf("clients saw %d closes with code %d; only a drain's 1012 and a lifetime's 1001 were due", codes[code], code)
		}
	}
	checkPushes(t, clients, pushes)
}

// push is one POST /push?id= through nginx, and its answer.
type push struct {
	client   int
	id, body string
	code     int
	took     time.Duration
}

// postCode posts body to url and returns the status, or 0 if ctx ended.
func postCode(ctx context.Context, url, body string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkPushes checks the answers of the pushes against what the clients
// got: none twice; a 202 for a socket open to the end arrived; no 404
// for a socket open to the end; no 503, and no 502 from nginx, for a push
// that arrived. It logs the answers and how long they took.
func checkPushes(t *testing.T, clients []*rollingClient, pushes []push) {
	t.Helper()
	answers := map[int]int{}
	var took []time.Duration
	for _, p := range pushes {
		answers[p.code]++
		took = append(took, p.took)
		c := clients[p.client]
		c.mu.Lock()
		got := c.got[p.body]
		open := false
		for _, s := range c.conns {
			if s.id == p.id {
				open = s.closed.IsZero()
			}
		}
		c.mu.Unlock()
		switch {
		case got > 1:
			t.Errorf("push %s to %s (HTTP %d) arrived %d times", p.body, p.id, p.code, got)
		case p.code == http.StatusAccepted && open && got == 0:
			t.Errorf("push %s to %s: 202, and the socket stayed open, but it never arrived", p.body, p.id)
		case p.code == http.StatusNotFound && open:
			t.Errorf("push %s to %s: 404 for a socket that stayed open", p.body, p.id)
		case p.code == http.StatusServiceUnavailable && got > 0:
			t.Errorf("push %s to %s: 503 (nothing delivered), yet it arrived", p.body, p.id)
		case p.code == http.StatusBadGateway && got > 0:
			// nginx's 502: the node reset the connection after nginx sent
			// the request, which a node that shuts down cleanly does only
			// to connections it never accepted (in its listen backlog as
			// the listener closes), so the push must not have arrived.
			t.Errorf("push %s to %s: 502 from nginx, yet it arrived", p.body, p.id)
		case p.code != http.StatusAccepted && p.code != http.StatusNotFound && p.code != http.StatusServiceUnavailable &&
			p.code != http.StatusGatewayTimeout && p.code != http.StatusBadGateway:
			t.Errorf("push %s to %s: HTTP %d", p.body, p.id, p.code)
		}
	}
	t.Logf("pushes through nginx: %d, answers %v, took p50 %v p99 %v max %v", len(pushes), answers, pct(took, 50), pct(took, 99), pct(took, 100))
	// A send to other nodes is bounded by WithBrokerTimeout (2 s by
	// default); a push that took longer waited on something else, such
	// as nginx trying a node that does not answer.
	if m := pct(took, 100); m > 2*time.Second {
		t.Errorf("the slowest push took %v, over the broker timeout of 2 s", m)
	}
	if len(pushes) == 0 {
		t.Error("no push was answered")
	}
}

// allBackBy reports whether every client was on a node at some moment
// between ready and deadline.
func allBackBy(clients []*rollingClient, ready, deadline time.Time) bool {
	for _, c := range clients {
		if !c.backBy(ready, deadline) {
			return false
		}
	}
	return true
}

// reconnects returns, over the clients, the gaps between a close at or
// after term and the next welcome, and for each client how long after
// ready it was on a node again (zero if it was at ready).
func reconnects(clients []*rollingClient, term, ready time.Time) (gaps, after []time.Duration) {
	for _, c := range clients {
		c.mu.Lock()
		for i, s := range c.conns {
			if !s.closed.IsZero() && !s.closed.Before(term) && i+1 < len(c.conns) {
				gaps = append(gaps, c.conns[i+1].opened.Sub(s.closed))
			}
		}
		back := time.Duration(-1)
		for _, s := range c.conns {
			if s.opened.After(ready) {
				if back < 0 {
					back = s.opened.Sub(ready)
				}
				continue
			}
			if s.closed.IsZero() || s.closed.After(ready) {
				back = 0
				break
			}
		}
		after = append(after, back)
		c.mu.Unlock()
	}
	return gaps, after
}

// pct returns the p-th percentile of ds, p in (0, 100].
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*p+99)/100-1].Round(time.Millisecond)
}

// rollingClient is a client that stays connected: it reconnects after
// every close, with exponential backoff and full jitter as laf's browser
// client does (a wait drawn in [0, min(2 s, 100 ms × 2^failures))).
type rollingClient struct {
	url         string
	mu          sync.Mutex
	conns       []span // every connection, in order
	codes       map[websocket.StatusCode]int
	failedDials int
	got         map[string]int // pushes received, by body
}

// openID returns the id of the client's open socket, or "".
func (c *rollingClient) openID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.conns); n > 0 && c.conns[n-1].closed.IsZero() {
		return c.conns[n-1].id
	}
	return ""
}

// span is one connection: from its welcome to its close (zero while open).
type span struct {
	node, id       string
	opened, closed time.Time
}

func (c *rollingClient) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		if c.connectOnce(ctx) {
			failures = 0
		} else if ctx.Err() == nil {
			failures++
		}
		wait := min(2*time.Second, 100*time.Millisecond<<min(failures, 5))
		select {
		case <-ctx.Done():
		case <-time.After(rand.N(wait)):
		}
	}
}

// connectOnce dials, reads until the socket closes, and reports whether
// it got a welcome.
func (c *rollingClient) connectOnce(ctx context.Context) bool {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	ws, _, err := websocket.Dial(dctx, c.url, nil)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.mu.Lock()
			c.failedDials++
			c.mu.Unlock()
		}
		return false
	}
	defer ws.CloseNow()
	go func() {
		<-ctx.Done()
		ws.CloseNow()
	}()
	var w chatMsg
	first := true
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return !first
			}
			c.mu.Lock()
			if c.codes == nil {
				c.codes = map[websocket.StatusCode]int{}
			}
			c.codes[websocket.CloseStatus(err)]++
			if !first {
				c.conns[len(c.conns)-1].closed = time.Now()
			}
			c.mu.Unlock()
			return !first
		}
		if first {
			first = false
			if err := json.Unmarshal(data, &w); err != nil || w.Type != "welcome" {
				ws.CloseNow()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, span{node: w.Node, id: w.ID, opened: time.Now()})
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		if c.got == nil {
			c.got = map[string]int{}
		}
		c.got[string(data)]++
		c.mu.Unlock()
	}
}

// connected reports whether the client is on a node now.
func (c *rollingClient) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns) > 0 && c.conns[len(c.conns)-1].closed.IsZero()
}

// backBy reports whether the client was on a node at some moment between
// from and to.
func (c *rollingClient) backBy(from, to time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.conns {
		if !s.opened.After(to) && (s.closed.IsZero() || !s.closed.Before(from)) {
			return true
		}
	}
	return false
}

func (c *rollingClient) history() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, s := range c.conns {
		fmt.Fprintf(&b, "[%s %s–%s] ", s.node, s.opened.Format("15:04:05.000"), s.closed.Format("15:04:05.000"))
	}
	fmt.Fprintf(&b, "failed dials %d", c.failedDials)
	return b.String()
}

// nodeProc is one node, run as main runs it, in a process of its own.
type nodeProc struct {
	t                       *testing.T
	bin, name, addr, broker string
	cmd                     *exec.Cmd
	done                    chan struct{}
	log                     string
}

func (n *nodeProc) start() {
	n.t.Helper()
	n.log = filepath.Join(n.t.TempDir(), n.name+".log")
	f, err := os.Create(n.log)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	n.cmd = exec.Command(n.bin, "-addr", n.addr, "-broker", n.broker, "-node", n.name,
		"-heartbeat", "1s", "-drain", rollingDrain.String(), "-max-lifetime", rollingLifetime.String(),
		"-shutdown-timeout", "20s", "-log-level", "warn")
	n.cmd.Stdout, n.cmd.Stderr = f, f
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(n.cmd, n.done)
}

// awaitReady waits until the node's /readyz answers 200.
func (n *nodeProc) awaitReady() {
	n.t.Helper()
	deadline := time.Now().Add(4 * timeout)
	for {
		resp, err := http.Get("http://" + n.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-n.done:
			n.t.Fatalf("%s exited: %s", n.name, n.readLog())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s not ready: %v\n%s", n.name, err, n.readLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the node to drain and exit cleanly.
func (n *nodeProc) stop() {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(4 * timeout):
		n.t.Fatalf("%s still running %v after SIGTERM\n%s", n.name, 4*timeout, n.readLog())
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		n.t.Fatalf("%s exited with %d after SIGTERM\n%s", n.name, code, n.readLog())
	}
}

func (n *nodeProc) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Kill()
		<-n.done
	}
}

func (n *nodeProc) readLog() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

// buildNode builds this command, with the race detector if the test has
// it, into a directory of the test's.
func buildNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cluster")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startRedis runs redis-server on a free port until the test ends, and
// returns its URL.
func startRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not in PATH; this test needs a real Redis: apt-get install -y redis-server")
	}
	port := freePort(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "redis.log")
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", log)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	eventually(t, "redis-server answers", func() bool { return c.Ping(context.Background()).Err() == nil })
	return "redis://" + addr
}
