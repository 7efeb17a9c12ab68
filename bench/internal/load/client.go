// Package load is the load client: it dials a contender's server over
// loopback with gorilla/websocket's client and runs the scenarios. Every
// loop is bounded in count and time, and only 127.0.0.0/8 is ever dialled.
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Target is a server under test.
type Target struct {
	// Addrs are the server's listeners, host:port, all on 127.0.0.0/8.
	// Sockets are spread over them.
	Addrs []string

	http        *http.Client
	dialers     [sourceIPs]*websocket.Dialer
	slowDialers [sourceIPs]*websocket.Dialer // with a small receive buffer
	zDialers    [sourceIPs]*websocket.Dialer // permessage-deflate, counting bytes
	stuckDialer *websocket.Dialer
}

// Sockets are dialled from 8 source addresses in turn, 127.B.0.2 to
// 127.B.0.9, where B changes with every Target, so that ephemeral ports
// never run short and sockets left in TIME_WAIT by an earlier server
// never share a source address with a later one. The port is picked at
// connect time (IP_BIND_ADDRESS_NO_PORT), per 4-tuple.
const sourceIPs = 8

var targets atomic.Uint32

func sourceIP(block byte, i int) net.IP {
	return net.IP{127, block, 0, byte(2 + i%sourceIPs)}
}

// NewTarget checks that every address is on loopback.
func NewTarget(addrs []string) (*Target, error) {
	if len(addrs) == 0 {
		return nil, errors.New("load: no server address")
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return nil, err
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("load: %s is not a loopback address", a)
		}
	}
	t := &Target{
		Addrs: addrs,
		http:  &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
	block := byte(1 + targets.Add(1)%250)
	for i := range t.dialers {
		t.dialers[i] = dialer(sourceIP(block, i), 0)
		t.slowDialers[i] = dialer(sourceIP(block, i), slowRcvBuf)
		t.zDialers[i] = compressDialer(sourceIP(block, i))
	}
	t.stuckDialer = dialer(sourceIP(block, 0), 4096)
	return t, nil
}

// CloseIdle drops the control connections.
func (t *Target) CloseIdle() { t.http.CloseIdleConnections() }

// Stats is what the server's /stats reports.
type Stats struct {
	Conns      int    `json:"conns"`
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	// Compressed is the messages the server compressed, if it counts
	// them (laf), or nil.
	Compressed *uint64 `json:"compressed"`
	// From /stats?lite=1 (Lite): GC cycles, the heap goal, and the bytes
	// of heap objects, live and not yet swept.
	GCs         uint64 `json:"gcs"`
	HeapGoal    uint64 `json:"heap_goal"`
	HeapObjects uint64 `json:"heap_objects"`
}

// Stats reads the server's stats; with free, after debug.FreeOSMemory.
func (t *Target) Stats(free bool) (Stats, error) {
	u := "http://" + t.Addrs[0] + "/stats"
	if free {
		u += "?free=1"
	}
	var s Stats
	resp, err := t.http.Get(u)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("load: /stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Lite reads the server's /stats?lite=1: sockets, goroutines, GC cycles,
// heap goal and heap objects, read without stopping the server's world.
func (t *Target) Lite() (Stats, error) {
	var s Stats
	resp, err := t.http.Get("http://" + t.Addrs[0] + "/stats?lite=1")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("load: /stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// WaitConns waits until the server's registry holds at least n sockets
// (exact: exactly n), for at most timeout.
func (t *Target) WaitConns(n int, exact bool, timeout time.Duration) (Stats, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := t.Stats(false)
		if err == nil && (s.Conns == n || !exact && s.Conns > n) {
			return s, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("load: server has %d sockets, want %d", s.Conns, n)
			}
			return s, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Broadcast asks the server to broadcast one message.
func (t *Target) Broadcast(size int, seq uint64) error { return t.broadcast(size, seq, false) }

// broadcast asks the server to broadcast one message, of chat traffic
// (wire.NewChat) with chat.
func (t *Target) broadcast(size int, seq uint64, chat bool) error {
	u := "http://" + t.Addrs[0] + "/broadcast?size=" + strconv.Itoa(size) + "&seq=" + strconv.FormatUint(seq, 10)
	if chat {
		u += "&payload=chat"
	}
	resp, err := t.http.Post(u, "", nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("load: /broadcast: %s", resp.Status)
	}
	return nil
}

// writePool shares write buffers between sockets: a socket holds one only
// while it writes. 32 KiB carries every payload in one frame.
var writePool = &sync.Pool{}

// slowRcvBuf is the receive buffer of the latest-state scenario's slow
// sockets: small, so that what they do not read waits in the server's
// queue, where it can be replaced, rather than in the kernel's buffers.
const slowRcvBuf = 4096

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h.
const ipBindAddressNoPort = 24

func dialer(src net.IP, rcvBuf int) *websocket.Dialer {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	nd.Control = func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			if serr == nil && rcvBuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	return &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  32<<10 + 16,
		WriteBufferPool:  writePool,
	}
}

// Dial opens socket number i (which picks the source address and the
// listener).
func (t *Target) Dial(ctx context.Context, i int) (*websocket.Conn, error) {
	return t.dialWith(ctx, t.dialers[i%sourceIPs], i)
}

func (t *Target) dialWith(ctx context.Context, d *websocket.Dialer, i int) (*websocket.Conn, error) {
	return t.dialPath(ctx, d, i, "/ws", "")
}

// dialPath dials path?query with d, as socket number i.
func (t *Target) dialPath(ctx context.Context, d *websocket.Dialer, i int, path, query string) (*websocket.Conn, error) {
	u := url.URL{Scheme: "ws", Host: t.Addrs[(i/sourceIPs)%len(t.Addrs)], Path: path, RawQuery: query}
	c, resp, err := d.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return c, err
}

// DialMany opens n sockets with a few dialling goroutines.
func (t *Target) DialMany(n int) ([]*websocket.Conn, error) {
	return dialMany(n, t.Dial)
}

// dialMany opens n sockets with dial and a few dialling goroutines.
func dialMany(n int, dial func(ctx context.Context, i int) (*websocket.Conn, error)) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	err := forEach(n, 2*time.Minute, func(ctx context.Context, i int) error {
		c, err := dial(ctx, i)
		conns[i] = c
		return err
	})
	if err != nil {
		CloseAll(conns)
		return nil, err
	}
	return conns, nil
}

// forEach runs do for 0 to n-1 on 16 goroutines, each i up to 3 times (a
// full accept queue can refuse a burst of dials), all within timeout. It
// stops at the first i that fails 3 times and returns its error.
func forEach(n int, timeout time.Duration, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var next, done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				var err error
				for try := 0; try < 3; try++ {
					if err = do(ctx, i); err == nil {
						done.Add(1)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("load: dial %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && done.Load() < int64(n) {
		firstErr = fmt.Errorf("load: dialling %d sockets: %w", n, ctx.Err())
	}
	return firstErr
}

// CloseAll drops every socket at once (no close handshake).
func CloseAll(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// readInto reads one message into buf, growing it if needed.
func readInto(c *websocket.Conn, buf []byte) (int, []byte, []byte, error) {
	typ, r, err := c.NextReader()
	if err != nil {
		return 0, nil, buf, err
	}
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf)+512)...)
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return typ, buf[:n], buf, nil
		}
		if err != nil {
			return 0, nil, buf, err
		}
	}
}
