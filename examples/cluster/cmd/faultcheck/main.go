//go:build unix

// Command faultcheck breaks the broker under a small cluster of
// examples/cluster nodes and reports what the HTTP API answered, for an
// operator's table: the answers of the pushes sent meanwhile (202, 503,
// 504, 404, other), how many were lost or arrived twice, how long a push
// blocked, how long /readyz took to say 503 and then 200 again, how long
// until pushes flowed again, and how many log lines the nodes wrote.
//
// It runs any build of the example, so that the same fault can be
// measured before and after a change:
//
//	go build -o /tmp/cluster-after .            # in examples/cluster
//	(cd ../../natsbroker && go build -o /tmp/nats-server github.com/nats-io/nats-server/v2)
//	go run ./cmd/faultcheck -bin /tmp/cluster-after -broker redis -fault hang
//	go run ./cmd/faultcheck -bin /tmp/cluster-after -broker nats -nats-server /tmp/nats-server -fault restart
//
// Faults: hang stops the broker process (SIGSTOP) for -for, then lets it
// go on (SIGCONT); restart kills it and starts it again on the same port
// after -for. Two nodes run with the example's defaults; sockets connect
// to the second, and four goroutines push by id through the first.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	bin := flag.String("bin", "", "the examples/cluster binary to run")
	brokerKind := flag.String("broker", "redis", "redis or nats")
	natsServer := flag.String("nats-server", "nats-server", "the nats-server binary")
	fault := flag.String("fault", "hang", "hang (SIGSTOP, then SIGCONT) or restart (kill, then start)")
	length := flag.Duration("for", 10*time.Second, "how long the fault lasts")
	heartbeat := flag.Duration("heartbeat", 5*time.Second, "the nodes' -heartbeat")
	sockets := flag.Int("sockets", 20, "sockets on the second node")
	verbose = flag.Bool("v", false, "print the nodes' logs from the fault on, to stderr")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "faultcheck: -bin is required")
		os.Exit(2)
	}
	r, err := run(*bin, *brokerKind, *natsServer, *fault, *length, *heartbeat, *sockets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultcheck:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(out))
}

var verbose *bool

// report is what faultcheck prints.
type report struct {
	Broker, Fault   string
	For             string
	Pushes          int
	Answers         map[string]int // HTTP status of the pushes sent during the fault and the 10 s after it
	Lost            int            // answered 202, never arrived
	Duplicated      int            // arrivals beyond the first, whatever the answer
	Arrived503      int            // answered 503 ("nothing delivered, retry is safe"), arrived all the same
	Arrived504      int            // answered 504 (outcome unknown), arrived
	MaxBlock        string         // the longest a push waited for its answer
	NotReadyAfter   []string       // per node: from the fault to /readyz 503 ("never": stayed 200)
	ReadyAfter      []string       // per node: from the end of the fault to /readyz 200 for good
	PushesFlowAfter string         // from the end of the fault to the answer of the first push after the last that failed (not 202, or 202 and lost)
	ReadyzDuring    []string       // per node: the /readyz bodies seen during the fault
	LogLines        []int          // per node: lines logged from the fault to the end
	LogSample       []string       // per node: the first warning logged after the fault began
}

type push struct {
	body   string
	status int
	sent   time.Time
	took   time.Duration
}

type node struct {
	addr string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []logLine
}

type logLine struct {
	at   time.Time
	text string
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// brokerProc is the broker's process, which faults stop, kill and start.
type brokerProc struct {
	kind, natsBin, dir string
	port               int
	cmd                *exec.Cmd
}

func (b *brokerProc) url() string {
	if b.kind == "nats" {
		return "nats://127.0.0.1:" + strconv.Itoa(b.port)
	}
	return "redis://127.0.0.1:" + strconv.Itoa(b.port)
}

func (b *brokerProc) start() error {
	var cmd *exec.Cmd
	if b.kind == "nats" {
		cmd = exec.Command(b.natsBin, "-a", "127.0.0.1", "-p", strconv.Itoa(b.port))
	} else {
		cmd = exec.Command("redis-server", "--port", strconv.Itoa(b.port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", b.dir)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	b.cmd = cmd
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(b.port)); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("%s not listening", b.kind)
}

func (b *brokerProc) kill() {
	if b.cmd != nil {
		b.cmd.Process.Signal(syscall.SIGCONT)
		b.cmd.Process.Kill()
		b.cmd.Wait()
		b.cmd = nil
	}
}

func startNode(bin, name, broker string, heartbeat time.Duration) (*node, error) {
	n := &node{addr: "127.0.0.1:" + strconv.Itoa(freePort())}
	n.cmd = exec.Command(bin, "-addr", n.addr, "-broker", broker, "-node", name, "-heartbeat", heartbeat.String())
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.mu.Lock()
			n.logs = append(n.logs, logLine{time.Now(), sc.Text()})
			n.mu.Unlock()
		}
	}()
	return n, nil
}

func get(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func run(bin, kind, natsBin, fault string, length, heartbeat time.Duration, nsockets int) (*report, error) {
	dir, err := os.MkdirTemp("", "faultcheck")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	br := &brokerProc{kind: kind, natsBin: natsBin, dir: dir, port: freePort()}
	if err := br.start(); err != nil {
		return nil, err
	}
	defer br.kill()
	var nodes []*node
	for i := range 2 {
		n, err := startNode(bin, "n"+strconv.Itoa(i+1), br.url(), heartbeat)
		if err != nil {
			return nil, err
		}
		defer func() { n.cmd.Process.Signal(syscall.SIGTERM); n.cmd.Wait() }()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		ok := false
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if code, _ := get("http://" + n.addr + "/readyz"); code == 200 {
				ok = true
				break
			}
		}
		if !ok {
			return nil, fmt.Errorf("node %s never ready", n.addr)
		}
	}

	// Sockets on node 2, counting what each receives.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var gmu sync.Mutex
	got := map[string]int{}
	var ids []string
	for i := range nsockets {
		ws, _, err := websocket.Dial(ctx, "ws://"+nodes[1].addr+"/ws?name=u"+strconv.Itoa(i), nil)
		if err != nil {
			return nil, err
		}
		_, data, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var w struct{ ID string }
		json.Unmarshal(data, &w)
		ids = append(ids, w.ID)
		go func() {
			for {
				_, data, err := ws.Read(ctx)
				if err != nil {
					return
				}
				gmu.Lock()
				got[string(data)]++
				gmu.Unlock()
			}
		}()
	}
	// Both nodes count each other's sockets before the fault.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body := get("http://" + nodes[0].addr + "/presence")
		if strings.Contains(body, `"sockets":`+strconv.Itoa(nsockets)) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("node 1 never saw the sockets: %s", body)
		}
	}

	// Readiness of each node, every 100 ms.
	type readyz struct {
		at   time.Time
		code int
		body string
	}
	polls := make([][]readyz, len(nodes))
	var pmu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				code, body := get("http://" + n.addr + "/readyz")
				pmu.Lock()
				polls[i] = append(polls[i], readyz{time.Now(), code, body})
				pmu.Unlock()
			}
		}()
	}

	// Four pushers through node 1.
	var mu sync.Mutex
	var pushes []push
	client := http.Client{Timeout: 60 * time.Second}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("p%d-%d", g, i)
				id := ids[(g+4*i)%len(ids)]
				start := time.Now()
				status := 0
				resp, err := client.Post("http://"+nodes[0].addr+"/push?id="+id, "text/plain", strings.NewReader(body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				pushes = append(pushes, push{body, status, start, time.Since(start)})
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	time.Sleep(2 * time.Second)
	faultAt := time.Now()
	switch fault {
	case "hang":
		br.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(length)
		br.cmd.Process.Signal(syscall.SIGCONT)
	case "restart":
		br.kill()
		time.Sleep(length)
		if err := br.start(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown fault %q", fault)
	}
	endAt := time.Now()
	time.Sleep(10 * time.Second)
	close(stop)
	wg.Wait()
	time.Sleep(3 * time.Second) // late arrivals

	r := &report{Broker: kind, Fault: fault, For: length.String(), Answers: map[string]int{}}
	gmu.Lock()
	defer gmu.Unlock()
	var maxBlock time.Duration
	var lastBad time.Time
	for _, p := range pushes {
		n := got[p.body]
		if n > 1 {
			r.Duplicated += n - 1
		}
		if p.sent.Before(faultAt) {
			if p.status != 202 && p.sent.After(lastBad) {
				lastBad = p.sent
			}
			continue
		}
		r.Pushes++
		r.Answers[strconv.Itoa(p.status)]++
		maxBlock = max(maxBlock, p.took)
		switch p.status {
		case 202:
			if n == 0 {
				r.Lost++
			}
		case 503:
			if n > 0 {
				r.Arrived503++
			}
		case 504:
			if n > 0 {
				r.Arrived504++
			}
		}
		if (p.status != 202 || n == 0) && p.sent.After(lastBad) {
			lastBad = p.sent // pushes are in the order they were answered, not sent
		}
	}
	r.MaxBlock = maxBlock.Round(time.Millisecond).String()
	if *verbose {
		for _, p := range pushes {
			if p.sent.After(faultAt.Add(-time.Second)) && p.sent.Before(endAt.Add(3*time.Second)) {
				fmt.Fprintf(os.Stderr, "push %s sent %v took %v: %d, arrived %d\n", p.body,
					p.sent.Sub(faultAt).Round(time.Millisecond), p.took.Round(time.Millisecond), p.status, got[p.body])
			}
		}
	}
	r.PushesFlowAfter = "never"
	if lastBad.Before(faultAt) {
		r.PushesFlowAfter = "no failure"
	} else {
		for _, p := range pushes {
			if p.sent.After(lastBad) {
				r.PushesFlowAfter = p.sent.Add(p.took).Sub(endAt).Round(time.Millisecond).String()
				break // the first answered
			}
		}
	}
	for i := range nodes {
		notReady, ready := "never", "stayed ready"
		seen := map[string]bool{}
		var bodies []string
		lastNotReady := time.Time{}
		for _, z := range polls[i] {
			if z.at.Before(faultAt) {
				continue
			}
			if z.code != 200 {
				if notReady == "never" {
					notReady = z.at.Sub(faultAt).Round(time.Millisecond).String()
				}
				lastNotReady = z.at
			}
			if z.at.Before(endAt) && !seen[z.body] && len(bodies) < 4 {
				seen[z.body] = true
				bodies = append(bodies, strconv.Itoa(z.code)+" "+z.body)
			}
		}
		if !lastNotReady.IsZero() {
			ready = "never"
			for _, z := range polls[i] {
				if z.at.After(lastNotReady) {
					ready = z.at.Sub(endAt).Round(time.Millisecond).String()
					break
				}
			}
		}
		r.NotReadyAfter = append(r.NotReadyAfter, notReady)
		r.ReadyAfter = append(r.ReadyAfter, ready)
		sort.Strings(bodies)
		r.ReadyzDuring = append(r.ReadyzDuring, strings.Join(bodies, " | "))
		n := nodes[i]
		n.mu.Lock()
		lines, sample := 0, ""
		for _, l := range n.logs {
			if l.at.Before(faultAt) {
				continue
			}
			lines++
			if sample == "" && strings.Contains(l.text, "level=WARN") {
				sample = l.text
			}
			if *verbose {
				fmt.Fprintf(os.Stderr, "n%d %v %s\n", i+1, l.at.Sub(faultAt).Round(time.Millisecond), l.text)
			}
		}
		n.mu.Unlock()
		r.LogLines = append(r.LogLines, lines)
		r.LogSample = append(r.LogSample, sample)
	}
	return r, nil
}
