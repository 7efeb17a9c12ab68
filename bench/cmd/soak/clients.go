package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// clients runs every kind of client against the server, only ever dialling
// its 127.0.0.1 address.
type clients struct {
	cfg  *config
	addr string // 127.0.0.1:port
	url  string // ws://127.0.0.1:port/ws
	http *http.Client
	tr   *http.Transport
	v    *violations

	// stopping stops new connections: once it is set, each client lets
	// its current socket be closed by the server's Shutdown and returns.
	stopping atomic.Bool
	stop     chan struct{} // closed with stopping
	// ctx aborts everything, should a client not finish after Shutdown.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats        [numKinds]kindStats
	echoes       atomic.Uint64 // echoes received, in order
	broadcasts   atomic.Uint64 // broadcast messages received
	churnSkipped atomic.Uint64 // churn dials skipped: ChurnConc already open
	rawStreams   atomic.Uint64 // server byte streams parsed by raw clients
}

// kindStats is what the clients of one kind saw.
type kindStats struct {
	dials, dialErrs, sent, recv atomic.Uint64
	mu                          sync.Mutex
	outcomes                    map[string]uint64 // how their sockets ended, as the client saw it
	dialErrors                  map[string]uint64
}

func (ks *kindStats) outcome(s string) {
	ks.mu.Lock()
	if ks.outcomes == nil {
		ks.outcomes = make(map[string]uint64)
	}
	ks.outcomes[s]++
	ks.mu.Unlock()
}

func (ks *kindStats) dialError(s string) {
	ks.dialErrs.Add(1)
	ks.mu.Lock()
	if ks.dialErrors == nil {
		ks.dialErrors = make(map[string]uint64)
	}
	ks.dialErrors[s]++
	ks.mu.Unlock()
}

func newClients(cfg *config, addr string, v *violations) (*clients, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host != "127.0.0.1" {
		return nil, fmt.Errorf("refusing to dial %s: 127.0.0.1 only", addr)
	}
	c := &clients{cfg: cfg, addr: addr, url: "ws://" + addr + "/ws", v: v, stop: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var d net.Dialer
	c.tr = &http.Transport{
		// Whatever the request says, connect to the server's address only.
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if a != addr {
				return nil, fmt.Errorf("refusing to dial %s: only %s", a, addr)
			}
			return d.DialContext(ctx, "tcp", addr)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     5 * time.Second,
	}
	c.http = &http.Client{Transport: c.tr}
	return c, nil
}

// start starts the populations and the churn loop.
func (c *clients) start(seed uint64) {
	n := uint64(0)
	rng := func() *rand.Rand { n++; return rand.New(rand.NewPCG(seed, n)) }
	population := func(count int, once func(*rand.Rand), pause func(*rand.Rand) time.Duration) {
		for range count {
			r := rng()
			c.wg.Go(func() {
				// Spread the first dials over a second.
				if !c.sleep(time.Duration(r.Int64N(int64(time.Second)))) {
					return
				}
				for !c.stopping.Load() {
					once(r)
					if !c.sleep(pause(r)) {
						return
					}
				}
			})
		}
	}
	population(c.cfg.Echo, c.echo, func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(50 * time.Millisecond))) })
	population(c.cfg.Flood, c.flood, func(r *rand.Rand) time.Duration { return c.cfg.FloodPause })
	population(c.cfg.NoRead, c.noRead, func(r *rand.Rand) time.Duration { return 100 * time.Millisecond })
	r := rng()
	c.wg.Go(func() { c.churn(r) })
}

// sleep waits d, and reports false if the clients are stopping.
func (c *clients) sleep(d time.Duration) bool {
	if c.stopping.Load() {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !c.stopping.Load()
	case <-c.stop:
		return false
	}
}

// halt stops new connections.
func (c *clients) halt() {
	if c.stopping.CompareAndSwap(false, true) {
		close(c.stop)
	}
}

// churn dials the churn kinds in turn, Churn times a second, with at most
// ChurnConc of their sockets open at once.
func (c *clients) churn(r *rand.Rand) {
	if c.cfg.Churn <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / c.cfg.Churn))
	defer t.Stop()
	sem := make(chan struct{}, c.cfg.ChurnConc)
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		k := churnKinds[i%len(churnKinds)]
		select {
		case sem <- struct{}{}:
		default:
			c.churnSkipped.Add(1)
			continue
		}
		cr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
		c.wg.Go(func() {
			defer func() { <-sem }()
			c.once(k, cr)
		})
	}
}

func (c *clients) once(k kind, r *rand.Rand) {
	switch k {
	case kPeer:
		c.peer(r)
	case kDrop:
		c.drop(r)
	case kServer:
		c.command(kServer, "c")
	case kError:
		c.command(kError, "x")
	case kPanic:
		c.command(kPanic, "p")
	case kConnError, kConnPanic:
		c.connFault(k)
	case kIdle:
		c.idle()
	case kNoPong:
		c.noPong()
	case kTooBig:
		c.tooBig()
	case kBadUTF8:
		c.badUTF8()
	}
}

// dial opens a WebSocket for kind k with coder/websocket's client.
func (c *clients) dial(k kind) (*websocket.Conn, error) {
	ks := &c.stats[k]
	ks.dials.Add(1)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, c.url+"?k="+k.String(), &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		if resp != nil {
			ks.dialError(strconv.Itoa(resp.StatusCode))
		} else {
			ks.dialError(errClass(err))
		}
		c.sleep(100 * time.Millisecond)
		return nil, err
	}
	conn.SetReadLimit(1 << 20)
	return conn, nil
}

// errClass names an error briefly, for the report.
func errClass(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, net.ErrClosed) {
		return "closed"
	}
	s := err.Error()
	for _, w := range []string{"connection reset", "broken pipe", "connection refused", "EOF", "closed"} {
		if strings.Contains(s, w) {
			return w
		}
	}
	return "other"
}

// closeOutcome says how a read loop ended: the close code received, or
// the error's class.
func closeOutcome(err error) string {
	if code := websocket.CloseStatus(err); code != -1 {
		return "got " + strconv.Itoa(int(code))
	}
	return "drop: " + errClass(err)
}

// readLoop reads until the connection fails, counting messages, checking
// that echoes come back in order, and returns the error that ended it.
// lastSent is the last echo sequence number written.
func (c *clients) readLoop(ctx context.Context, conn *websocket.Conn, ks *kindStats, lastSent *atomic.Uint64) error {
	next := uint64(1)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		ks.recv.Add(1)
		switch {
		case bytes.HasPrefix(data, []byte("e:")) && lastSent != nil:
			rest := data[2:]
			if i := bytes.IndexByte(rest, ':'); i >= 0 {
				rest = rest[:i]
			}
			seq, perr := strconv.ParseUint(string(rest), 10, 64)
			if perr != nil || seq != next || seq > lastSent.Load() {
				c.v.add("echo out of order", fmt.Sprintf("got %q, want %d, sent up to %d", data[:min(len(data), 24)], next, lastSent.Load()))
			}
			next = seq + 1
			c.echoes.Add(1)
		case bytes.HasPrefix(data, []byte("b:")):
			c.broadcasts.Add(1)
		}
	}
}

// echo is one socket of a steady echo client: it sends EchoRate messages
// a second and checks their echoes, until it closes the socket itself at
// a random time, or the server closes it.
func (c *clients) echo(r *rand.Rand) {
	ks := &c.stats[kEcho]
	conn, err := c.dial(kEcho)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	var lastSent atomic.Uint64
	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop(ctx, conn, ks, &lastSent) }()

	lo, hi := c.cfg.Lifetime/4, c.cfg.Lifetime*3/2
	selfClose := time.NewTimer(lo + time.Duration(r.Int64N(int64(hi-lo)+1)))
	defer selfClose.Stop()
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.cfg.EchoRate))
	defer tick.Stop()
	pad := strings.Repeat("e", max(0, c.cfg.EchoSize-24))
	for seq := uint64(1); ; {
		select {
		case err := <-readErr:
			ks.outcome(closeOutcome(err))
			return
		case <-selfClose.C:
			if c.stopping.Load() {
				continue // Shutdown closes it
			}
			// Close writes 1000 and waits for the server's close frame,
			// which the read loop may see first, or as the connection
			// closing under it.
			cerr := conn.Close(websocket.StatusNormalClosure, "bye")
			rerr := <-readErr
			if cerr == nil || websocket.CloseStatus(rerr) == websocket.StatusNormalClosure {
				ks.outcome("closed 1000 itself")
			} else {
				ks.outcome("closing itself, " + closeOutcome(rerr))
			}
			return
		case <-tick.C:
			lastSent.Store(seq)
			if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "e:%d:%s", seq, pad)); err != nil {
				err := <-readErr
				ks.outcome(closeOutcome(err))
				return
			}
			ks.sent.Add(1)
			seq++
		}
	}
}

// flood sends tiny messages as fast as it can until the server closes the
// socket for going over the rate limit.
func (c *clients) flood(*rand.Rand) {
	ks := &c.stats[kFlood]
	conn, err := c.dial(kFlood)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop(ctx, conn, ks, nil) }()
	msg := []byte("f")
	for range c.cfg.FloodMax {
		if conn.Write(ctx, websocket.MessageText, msg) != nil {
			break
		}
		ks.sent.Add(1)
		select {
		case err := <-readErr:
			ks.outcome(closeOutcome(err))
			return
		default:
		}
	}
	ks.outcome(closeOutcome(c.waitRead(readErr, cancel)))
}

// waitRead waits for a read loop to end, for at most a graceful close's
// time, and then cancels it.
func (c *clients) waitRead(readErr chan error, cancel context.CancelFunc) error {
	t := time.NewTimer(c.cfg.CloseTimeout + 5*time.Second)
	defer t.Stop()
	select {
	case err := <-readErr:
		return err
	case <-t.C:
		cancel()
		return <-readErr
	}
}

// peer sends a few echoes, reads them back, and closes with 1000.
func (c *clients) peer(r *rand.Rand) {
	ks := &c.stats[kPeer]
	conn, err := c.dial(kPeer)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	n := 1 + r.IntN(5)
	for i := range n {
		if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "e:%d", i+1)); err != nil {
			ks.outcome("write failed")
			return
		}
		ks.sent.Add(1)
	}
	for got := 0; got < n; {
		_, data, err := conn.Read(ctx)
		if err != nil {
			ks.outcome("before closing, " + closeOutcome(err))
			return
		}
		ks.recv.Add(1)
		if bytes.HasPrefix(data, []byte("e:")) {
			got++
		}
	}
	// Close waits for the server's close frame, reading (and dropping)
	// broadcasts meanwhile.
	if err := conn.Close(websocket.StatusNormalClosure, "done"); err != nil {
		ks.outcome("closing itself, " + errClass(err))
		return
	}
	ks.outcome("closed 1000 itself")
}

// command sends one echo, then the command ("c", "x" or "p"), and reads
// until the server closes the socket.
func (c *clients) command(k kind, cmd string) {
	ks := &c.stats[k]
	conn, err := c.dial(k)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	for _, m := range []string{"e:1", cmd} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			break
		}
		ks.sent.Add(1)
	}
	ks.outcome(closeOutcome(c.readLoop(ctx, conn, ks, nil)))
}

// connFault dials a socket whose connection event fails, and sends at
// once: the Func must never see those messages.
func (c *clients) connFault(k kind) {
	ks := &c.stats[k]
	conn, err := c.dial(k)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	for i := range 3 {
		if conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "e:%d", i+1)) != nil {
			break
		}
		ks.sent.Add(1)
	}
	ks.outcome(closeOutcome(c.readLoop(ctx, conn, ks, nil)))
}

// idle reads (so coder/websocket answers pings) and sends nothing, until
// the read idle timeout closes it.
func (c *clients) idle() {
	ks := &c.stats[kIdle]
	conn, err := c.dial(kIdle)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.ReadIdle+c.cfg.Lifetime+30*time.Second)
	defer cancel()
	ks.outcome(closeOutcome(c.readLoop(ctx, conn, ks, nil)))
}

// tooBig sends one message over the read limit.
func (c *clients) tooBig() {
	ks := &c.stats[kTooBig]
	conn, err := c.dial(kTooBig)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte("e"), int(c.cfg.ReadLimit)+1024)
	if conn.Write(ctx, websocket.MessageBinary, big) == nil {
		ks.sent.Add(1)
	}
	ks.outcome(closeOutcome(c.readLoop(ctx, conn, ks, nil)))
}
