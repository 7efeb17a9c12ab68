package laf_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/internal/rawws"
	"github.com/stretchr/testify/require"
)

// TestRFC6455 reads, byte for byte, what the server sends on each of many
// sockets while sends from several goroutines and broadcasts race the
// close, and fails if any frame follows the server's close frame (RFC 6455,
// section 5.5.1: after sending a close frame an endpoint sends no more
// data), whoever decided the close. It also checks that the close frame
// carries the code the close calls for, and that each socket's close event
// fires exactly once with that code and cause.
//
// In every scenario the server must send a close frame: the peer's close
// is echoed (a), the protocol error is answered with 1002 before the drop
// (b), and the server's own closes (c, d, e) are graceful. Nothing drops a
// connection without one: the send queues are far larger than anything
// queued here, so no socket is closed as a slow consumer (that would show
// as a wrong cause), pings are 30 s apart, and Shutdown gets time to
// finish its handshakes. A missing close frame fails the test too.
func TestRFC6455(t *testing.T) {
	t.Run("a/peer-close/1000B", func(t *testing.T) { rfcPeerClose(t, 1000, false) })
	t.Run("a/peer-close/200KB", func(t *testing.T) { rfcPeerClose(t, 200<<10, false) })
	t.Run("b/opcode5/1000B", func(t *testing.T) { rfcPeerClose(t, 1000, true) })
	t.Run("b/opcode5/200KB", func(t *testing.T) { rfcPeerClose(t, 200<<10, true) })
	t.Run("c/socket-close", rfcSocketClose)
	t.Run("d/handler-error", rfcHandlerError)
	t.Run("e/shutdown", rfcShutdown)
}

const (
	rfcSockets  = 300              // per scenario
	rfcParallel = 40               // clients dialling at once
	rfcBatch    = 4                // a and b: sockets open at once
	rfcTimeout  = 20 * time.Second // for a socket's whole stream, and for Shutdown
)

// rfcPeerClose is scenario a: each client sends one message of size bytes
// and then at once a close 1000; or, with opcode5, scenario b: the second
// frame has the reserved opcode 5 instead, a protocol error the server
// answers with 1002. The Func answers the message with three sends, from
// three goroutines, while a fourth broadcasts to every socket.
func rfcPeerClose(t *testing.T, size int, opcode5 bool) {
	s := newRFCServer(t, rfcAnswer, laf.WithReadLimit(int64(size)))
	msg := strings.Repeat("m", size)
	conns := make([]*rfcConn, rfcSockets)
	opened := 0
	// A small batch dials at once; once all its sockets are open they all
	// send at once, during a broadcast burst, so that each close meets the
	// broadcasts of the burst and of the others. Small, so that a core is
	// often free to run writers while the socket's own goroutine handles
	// the close: on a busy machine they run only after it, and the race is
	// seldom run.
	for start := 0; start < rfcSockets; start += rfcBatch {
		batch := conns[start:min(start+rfcBatch, rfcSockets)]
		var wg sync.WaitGroup
		for j := range batch {
			wg.Go(func() { batch[j] = rfcDial(s.url, start+j) })
		}
		wg.Wait()
		for _, rc := range batch {
			if rc.err == nil {
				opened++
			}
		}
		require.Eventually(t, func() bool { return int(s.connected.Load()) == opened },
			rfcTimeout, time.Millisecond, "connection events")
		stop := s.burst()
		for _, rc := range batch {
			if rc.err != nil {
				continue
			}
			wg.Go(func() {
				err := rc.c.WriteText(msg)
				if err == nil && opcode5 {
					// No payload: one the server never reads would make its
					// close send a reset, which could destroy what it sent.
					err = rc.c.WriteFrame(true, 0, 5, nil)
				} else if err == nil {
					err = rc.c.WriteClose(1000, "")
				}
				rc.writeErr = err
			})
		}
		wg.Wait()
		for _, rc := range batch {
			rc.wait()
		}
		stop()
	}
	want, cause := 1000, laf.CausePeer
	if opcode5 {
		want, cause = 1002, laf.CauseProtocol
	}
	s.check(t, conns, func(int) int { return want }, cause)
}

// rfcAnswer answers a message with three sends from three goroutines, and
// broadcasts from a fourth. Sends that lose the race with the close return
// ErrClosed, as they should.
func rfcAnswer(s *rfcServer, ctx *laf.FunctionContext) error {
	sock, text := ctx.Socket, ctx.Params.Data.String()
	for range 3 {
		s.work.Go(func() { sock.Send(text) })
	}
	s.work.Go(func() { s.ep.Broadcast(context.Background(), laf.Text("broadcast")) })
	return nil
}

// rfcSocketClose is scenario c: Socket.Close(4000) on every socket while
// broadcasts stream to them all.
func rfcSocketClose(t *testing.T) {
	s := newRFCServer(t, rfcAnswer)
	conns := s.dialAll(t)
	stop := s.burst()
	var socks []*laf.Socket
	s.ep.Range(func(sock *laf.Socket) bool { socks = append(socks, sock); return true })
	require.Len(t, socks, rfcSockets)
	var wg sync.WaitGroup
	for part := range 4 {
		wg.Go(func() {
			for i := part; i < len(socks); i += 4 {
				if err := socks[i].Close(4000, "rfc6455 test"); err != nil {
					t.Errorf("Close: %v", err)
				}
				if i%16 == 0 {
					time.Sleep(time.Millisecond) // spread the closes over the burst
				}
			}
		})
	}
	wg.Wait()
	stop()
	for _, rc := range conns {
		rc.wait()
	}
	s.check(t, conns, func(int) int { return 4000 }, laf.CauseServer)
}

// rfcHandlerError is scenario d: during a broadcast burst each client sends
// a message; the Func answers it as in a, then returns a *CloseError
// (even sockets) or a plain error (odd ones).
func rfcHandlerError(t *testing.T) {
	s := newRFCServer(t, func(s *rfcServer, ctx *laf.FunctionContext) error {
		rfcAnswer(s, ctx)
		if ctx.Params.Data.String() == "close-error" {
			return &laf.CloseError{Code: 4001, Reason: "handler says no"}
		}
		return errors.New("handler failed")
	})
	conns := s.dialAll(t)
	stop := s.burst()
	for i, rc := range conns {
		msg := "plain-error"
		if i%2 == 0 {
			msg = "close-error"
		}
		if err := rc.c.WriteText(msg); err != nil {
			rc.writeErr = err
		}
	}
	for _, rc := range conns {
		rc.wait()
	}
	stop()
	s.check(t, conns, func(i int) int { return [2]int{4001, 1011}[i%2] }, laf.CauseHandlerError)
}

// rfcShutdown is scenario e: Endpoint.Shutdown while broadcasts stream to
// every socket and each client's message is being answered as in a.
func rfcShutdown(t *testing.T) {
	s := newRFCServer(t, rfcAnswer)
	conns := s.dialAll(t)
	stop := s.burst()
	for _, rc := range conns[:rfcSockets/2] {
		if err := rc.c.WriteText("hello"); err != nil {
			rc.writeErr = err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), rfcTimeout)
	defer cancel()
	require.NoError(t, s.ep.Shutdown(ctx))
	stop()
	for _, rc := range conns {
		rc.wait()
	}
	s.check(t, conns, func(int) int { return 1001 }, laf.CauseShutdown)
}

// rfcServer is an Endpoint on an httptest server that records the socket
// ids of each client and the close events of each socket id.
type rfcServer struct {
	ep        *laf.Endpoint
	url       string
	work      sync.WaitGroup // goroutines the Func starts
	connected atomic.Int32

	mu     sync.Mutex
	ids    map[int][]string // by client, from the ?i= of its upgrade request
	closes map[string][]laf.Params
}

// newRFCServer starts an Endpoint whose Func greets each socket, as Laf's
// functions do, hands messages to onMessage, and records connection and
// close events. Its queues are large enough that no socket is closed as a
// slow consumer.
func newRFCServer(t *testing.T, onMessage func(*rfcServer, *laf.FunctionContext) error, opts ...laf.Option) *rfcServer {
	s := &rfcServer{ids: make(map[int][]string), closes: make(map[string][]laf.Params)}
	fn := func(ctx *laf.FunctionContext) error {
		switch ctx.Method {
		case laf.MethodConnection:
			i, err := strconv.Atoi(ctx.Request.URL.Query().Get("i"))
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.ids[i] = append(s.ids[i], ctx.Socket.ID())
			s.mu.Unlock()
			s.connected.Add(1)
			// Not always written: a peer's close that arrives before the
			// greeting goes out ends the socket without it.
			return ctx.Socket.Send("hi connection succeed")
		case laf.MethodMessage:
			return onMessage(s, ctx)
		case laf.MethodClose:
			s.mu.Lock()
			s.closes[ctx.Socket.ID()] = append(s.closes[ctx.Socket.ID()], ctx.Params)
			s.mu.Unlock()
		}
		return nil
	}
	opts = append([]laf.Option{laf.WithSendQueue(1<<20, 1<<30), laf.WithSlowPolicy(laf.CloseSlow)}, opts...)
	s.ep = laf.Handler(fn, opts...)
	srv := httptest.NewServer(s.ep)
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), rfcTimeout)
		defer cancel()
		s.ep.Shutdown(ctx)
		srv.Close()
		s.work.Wait()
	})
	return s
}

// dialAll dials every socket, rfcParallel at a time, and waits until every
// connection event has run.
func (s *rfcServer) dialAll(t *testing.T) []*rfcConn {
	conns := make([]*rfcConn, rfcSockets)
	var next atomic.Int32
	var wg sync.WaitGroup
	for range rfcParallel {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < rfcSockets; i = int(next.Add(1)) - 1 {
				conns[i] = rfcDial(s.url, i)
			}
		})
	}
	wg.Wait()
	for _, rc := range conns {
		require.NoError(t, rc.err, "socket %d: dial", rc.i)
	}
	require.Eventually(t, func() bool { return s.connected.Load() == rfcSockets },
		rfcTimeout, time.Millisecond, "connection events")
	return conns
}

// burst broadcasts to every socket until stop is called, and returns once
// the first broadcasts are out.
func (s *rfcServer) burst() (stop func()) {
	done := make(chan struct{})
	started := make(chan struct{})
	s.work.Go(func() {
		for k := 0; ; k++ {
			if k == 20 {
				close(started)
			}
			select {
			case <-done:
				if k < 20 {
					close(started)
				}
				return
			default:
			}
			s.ep.Broadcast(context.Background(), laf.Text(fmt.Sprintf("burst %d", k)))
			if k%8 == 7 {
				time.Sleep(100 * time.Microsecond) // let the writers keep up
			}
		}
	})
	<-started
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// rfcConn is one client and, once it is done, all the server sent it.
type rfcConn struct {
	i        int
	c        *rawws.Conn
	done     chan struct{}
	stream   []byte
	err      error // from the dial, or from the read (nil at a clean EOF)
	writeErr error
}

// rfcDial dials socket i and starts reading its stream at once, so that
// nothing the server sends waits in the kernel for a reset to destroy.
func rfcDial(url string, i int) *rfcConn {
	rc := &rfcConn{i: i, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), rfcTimeout)
	defer cancel()
	rc.c, rc.err = rawws.Dial(ctx, url+"?i="+strconv.Itoa(i))
	if rc.err != nil {
		close(rc.done)
		return rc
	}
	go func() {
		defer close(rc.done)
		rc.stream, rc.err = rc.c.ReadAll(rfcTimeout)
		rc.c.Close()
	}()
	return rc
}

func (rc *rfcConn) wait() { <-rc.done }

// rfcWaitFor polls cond until it holds or d passes, and reports whether it held.
func rfcWaitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// check waits for every close event, then checks each socket's stream and
// close event: code(i) is the close code socket i must get.
func (s *rfcServer) check(t *testing.T, conns []*rfcConn, code func(i int) int, cause laf.CloseCause) {
	t.Helper()
	// A client sees the end of its stream before the server's close event
	// runs: wait for them all before Shutdown would close the rest.
	opened := 0
	for _, rc := range conns {
		if rc.c != nil {
			opened++
		}
	}
	closed := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.closes) >= opened
	}
	if !rfcWaitFor(rfcTimeout, closed) {
		t.Errorf("close events missing after %v", rfcTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rfcTimeout)
	defer cancel()
	require.NoError(t, s.ep.Shutdown(ctx), "close events still running") // waits for every close event
	s.work.Wait()

	r := rfcReport{t: t, counts: make(map[string]int)}
	defer r.summary()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool)
	for _, rc := range conns {
		if rc.c == nil {
			r.fail("dial failed", "socket %d: %v", rc.i, rc.err)
			continue
		}
		// Any other read error, a reset say, ends the stream as EOF would;
		// what arrived before it is checked all the same.
		var netErr net.Error
		if errors.As(rc.err, &netErr) && netErr.Timeout() {
			r.fail("no EOF", "socket %d: the server did not close the connection within %v (%d bytes read)", rc.i, rfcTimeout, len(rc.stream))
		}
		frames, err := rawws.Parse(rc.stream)
		ids := s.ids[rc.i]
		var id string
		if len(ids) == 1 {
			id = ids[0]
		}
		events := s.closes[id]
		seen[id] = true
		who := fmt.Sprintf("socket %d (id %q, close events %+v, read error %v, write error %v)", rc.i, id, events, rc.err, rc.writeErr)
		if e := (*rawws.Error)(nil); errors.As(err, &e) {
			r.fail("malformed stream", "%s: %v\n%s", who, err, rawws.Dump(rc.stream, e.Offset-32, e.Offset+64))
			continue
		}
		k := rawws.FirstClose(frames)
		if err := rawws.CheckClosed(frames); err != nil {
			var e *rawws.Error
			errors.As(err, &e)
			kind := "frame after the close frame"
			if e.Offset == frames[k].Offset {
				kind = "invalid close frame"
			}
			from, to := max(0, frames[k].Offset-32), min(len(rc.stream), e.Offset+64)
			r.fail(kind, "%s: %v\nbytes %d to %d of %d, the close frame at %d:\n%s", who, err, from, to, len(rc.stream),
				frames[k].Offset, rawws.Dump(rc.stream, from, to))
		}
		switch {
		case len(ids) != 1:
			r.fail("connection events not exactly once", "%s: connection events for sockets %q", who, ids)
		case len(events) != 1:
			r.fail("close events not exactly once", "%s: %d close events", who, len(events))
		case events[0].Code != code(rc.i) || events[0].Cause != cause:
			r.fail("wrong close event", "%s: close event %d %v, want %d %v", who, events[0].Code, events[0].Cause, code(rc.i), cause)
		}
		if k < 0 || frames[k].Truncated {
			last := max(0, len(rc.stream)-64)
			r.fail("no close frame", "%s: no whole close frame in %d frames, %d bytes; the last bytes:\n%s",
				who, len(frames), len(rc.stream), rawws.Dump(rc.stream, last, len(rc.stream)))
			continue
		}
		if got, reason, _ := frames[k].CloseStatus(); got != code(rc.i) {
			r.fail("wrong close code", "%s: close frame %d %q, want %d", who, got, reason, code(rc.i))
		}
	}
	var extra []string
	for id := range s.closes {
		if !seen[id] {
			extra = append(extra, id)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		t.Errorf("%d close events for sockets no client saw: %q", len(extra), extra)
	}
}

// rfcReport reports the first few failures of each kind in full, and how
// many sockets had each.
type rfcReport struct {
	t      *testing.T
	counts map[string]int
}

func (r *rfcReport) fail(kind, format string, args ...any) {
	r.t.Helper()
	if r.counts[kind]++; r.counts[kind] <= 3 {
		r.t.Errorf(kind+": "+format, args...)
	}
}

func (r *rfcReport) summary() {
	r.t.Helper()
	for _, kind := range slices.Sorted(maps.Keys(r.counts)) {
		r.t.Errorf("%s: %d of %d sockets", kind, r.counts[kind], rfcSockets)
	}
}
