package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf"
)

// numCauses is one past the last laf.CloseCause.
const numCauses = int(laf.CausePolicy) + 1

// stateKey is the per-socket value under which the Func keeps what it saw
// of the socket (laf frees it with the socket).
const stateKey = "soak"

// sockState is what the Func saw of one socket.
type sockState struct {
	kind kind
	// closed is set at the start of the close event; a send that starts
	// after that must fail.
	closed  atomic.Bool
	inEvent atomic.Bool // an event of this socket is running

	mu         sync.Mutex
	closeSeen  bool
	errored    bool // an error event fired
	connFailed bool // the connection event returned an error or panicked
}

// enter marks an event as running and reports whether another one was.
func (st *sockState) enter() bool { return st.inEvent.CompareAndSwap(false, true) }
func (st *sockState) leave()      { st.inEvent.Store(false) }

// server is the laf Endpoint under soak, its HTTP server, and the Func's
// invariant bookkeeping.
type server struct {
	cfg  *config
	ep   *laf.Endpoint
	http *http.Server
	ln   net.Listener
	addr string // 127.0.0.1:port
	v    *violations

	live liveSet // ids between their connection and close events

	connEvents, msgEvents, errEvents, closeEvents atomic.Uint64
	panics, handlerErrs                           atomic.Uint64 // thrown and returned by the Func
	echoSendErrs                                  atomic.Uint64 // echoes refused (the socket was closing)
	rateErrors                                    atomic.Uint64 // error events with ErrRateLimited
	causes                                        [numCauses]atomic.Uint64
	byKind                                        [numKinds][numCauses]atomic.Uint64
	openedByKind                                  [numKinds]atomic.Uint64

	// The never-reading peers' streams.
	streams    sync.WaitGroup
	streamMsg  laf.Message
	streamSent atomic.Uint64

	broadcasts atomic.Uint64
	reaped     atomic.Uint64
	probes     atomic.Uint64

	recent recentRing // sockets closed lately, probed for sends that succeed
}

var (
	errAsked       = errors.New("soak: handler error asked for")
	errRefusedConn = errors.New("soak: connection refused by the Func")
)

func newServer(cfg *config, v *violations) (*server, error) {
	s := &server{cfg: cfg, v: v}
	s.live.m = make(map[string]struct{})
	s.streamMsg = laf.Binary(make([]byte, cfg.StreamSize))
	s.ep = laf.Handler(s.fn,
		laf.WithLogger(slog.New(slog.DiscardHandler)),
		laf.WithReadLimit(cfg.ReadLimit),
		laf.WithPing(cfg.Ping, cfg.Pong),
		laf.WithIdleTimeout(cfg.Idle),
		laf.WithReadIdleTimeout(cfg.ReadIdle),
		laf.WithMaxLifetime(cfg.Lifetime),
		laf.WithSendQueue(cfg.QueueMsgs, cfg.QueueBytes),
		laf.WithSlowPolicy(laf.CloseSlow),
		laf.WithCloseTimeout(cfg.CloseTimeout),
		laf.WithRateLimit(laf.RateLimit{
			Messages: cfg.Rate, MessageBurst: cfg.RateBurst,
			Bytes: cfg.RateBytes, ByteBurst: int(cfg.ReadLimit),
			Policy: laf.CloseOverRate,
		}),
		laf.WithMaxSockets(cfg.MaxSockets),
		// Per kind of client, so that the per-key cap's code runs too;
		// every client comes from 127.0.0.1.
		laf.WithMaxSocketsPerKey(cfg.MaxSockets, func(r *http.Request) string { return r.URL.Query().Get("k") }),
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln, s.addr = ln, ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("GET /ws", s.ep)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

func stateOf(sock *laf.Socket) *sockState {
	v, _ := sock.Get(stateKey)
	st, _ := v.(*sockState)
	return st
}

// fn is the Func: it dispatches on the event and checks, for every socket,
// one connection event first, no event after the close event, and one
// close event.
func (s *server) fn(ctx *laf.FunctionContext) error {
	switch ctx.Method {
	case laf.MethodConnection:
		return s.connection(ctx)
	case laf.MethodMessage:
		return s.message(ctx)
	case laf.MethodError:
		s.errorEvent(ctx)
	case laf.MethodClose:
		s.closeEvent(ctx)
	default:
		s.v.add("unknown method", ctx.Method)
	}
	return nil
}

func (s *server) connection(ctx *laf.FunctionContext) error {
	id := ctx.Socket.ID()
	if stateOf(ctx.Socket) != nil {
		s.v.add("connection event twice", id)
		return nil
	}
	st := &sockState{kind: kindOf(ctx.Request.URL.Query().Get("k"))}
	st.enter()
	defer st.leave()
	ctx.Socket.Set(stateKey, st)
	if !s.live.add(id) {
		s.v.add("connection event for a live id", id)
	}
	s.connEvents.Add(1)
	s.openedByKind[st.kind].Add(1)
	switch st.kind {
	case kConnError:
		st.mu.Lock()
		st.connFailed = true
		st.mu.Unlock()
		s.handlerErrs.Add(1)
		return errRefusedConn
	case kConnPanic:
		st.mu.Lock()
		st.connFailed = true
		st.mu.Unlock()
		s.panics.Add(1)
		panic("soak: panic in the connection event")
	case kNoRead:
		s.streams.Add(1)
		go s.stream(ctx.Socket, st)
	}
	return nil
}

func (s *server) message(ctx *laf.FunctionContext) error {
	id := ctx.Socket.ID()
	st := stateOf(ctx.Socket)
	if st == nil {
		s.v.add("message event before the connection event", id)
		return nil
	}
	if !st.enter() {
		s.v.add("events of one socket overlap", id)
	} else {
		defer st.leave()
	}
	st.mu.Lock()
	closed, errored, failed := st.closeSeen, st.errored, st.connFailed
	st.mu.Unlock()
	switch {
	case closed:
		s.v.add("message event after the close event", id)
	case errored:
		s.v.add("message event after the error event", id)
	case failed:
		s.v.add("message event after a failed connection event", id)
	}
	s.msgEvents.Add(1)
	data := ctx.Params.Data
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case 'e': // echo
		if err := ctx.Socket.SendMessage(laf.Owned(data, ctx.Params.IsBinary)); err != nil {
			s.echoSendErrs.Add(1)
		}
	case 'c': // close me
		_ = ctx.Socket.Close(4000, "asked")
	case 'x': // fail
		s.handlerErrs.Add(1)
		return errAsked
	case 'p': // panic
		s.panics.Add(1)
		panic("soak: panic asked for")
	}
	return nil
}

func (s *server) errorEvent(ctx *laf.FunctionContext) {
	id := ctx.Socket.ID()
	s.errEvents.Add(1)
	if errors.Is(ctx.Params.Err, laf.ErrRateLimited) {
		s.rateErrors.Add(1)
	}
	st := stateOf(ctx.Socket)
	if st == nil {
		s.v.add("error event before the connection event", id)
		return
	}
	if !st.enter() {
		s.v.add("events of one socket overlap", id)
	} else {
		defer st.leave()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closeSeen {
		s.v.add("error event after the close event", id)
	}
	st.errored = true
}

func (s *server) closeEvent(ctx *laf.FunctionContext) {
	id := ctx.Socket.ID()
	st := stateOf(ctx.Socket)
	if st == nil {
		s.v.add("close event without a connection event", id)
		return
	}
	if !st.enter() {
		s.v.add("events of one socket overlap", id)
	} else {
		defer st.leave()
	}
	st.mu.Lock()
	twice := st.closeSeen
	st.closeSeen = true
	st.mu.Unlock()
	st.closed.Store(true)
	if twice {
		s.v.add("close event twice", id)
		return
	}
	if !s.live.remove(id) {
		s.v.add("close event for an id not live", id)
	}
	cause := ctx.Params.Cause
	if cause <= 0 || int(cause) >= numCauses {
		s.v.add("close event with an unknown cause", fmt.Sprint(id, " ", int(cause)))
		cause = 0
	}
	s.closeEvents.Add(1)
	s.causes[cause].Add(1)
	s.byKind[st.kind][cause].Add(1)
	if err := ctx.Socket.Send("after close"); !errors.Is(err, laf.ErrClosed) {
		s.v.add("send in the close event did not return ErrClosed", fmt.Sprint(id, " ", err))
	}
	if _, ok := s.ep.Socket(id); ok {
		s.v.add("socket still in the registry during its close event", id)
	}
	if ctx.Socket.Context().Err() == nil {
		s.v.add("socket context not done during its close event", id)
	}
	s.recent.push(ctx.Socket)
}

// stream feeds a peer that never reads, as fast as its queue takes it,
// until laf closes the socket as a slow consumer (or its pings time out).
// Every send that starts after the close event has begun must fail.
func (s *server) stream(sock *laf.Socket, st *sockState) {
	defer s.streams.Done()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	done := sock.Context().Done()
	for {
		closed := st.closed.Load()
		err := sock.SendMessage(s.streamMsg)
		switch {
		case err == nil && closed:
			s.v.add("send succeeded after the close event", sock.ID())
			return
		case err == nil:
			s.streamSent.Add(1)
		case errors.Is(err, laf.ErrClosed), errors.Is(err, laf.ErrQueueFull):
			// Closed, or closing now as a slow consumer: once the socket
			// is done, a send must fail.
			<-done
			if err := sock.SendMessage(s.streamMsg); !errors.Is(err, laf.ErrClosed) {
				s.v.add("send after the socket's context is done did not return ErrClosed", fmt.Sprint(sock.ID(), " ", err))
			}
			return
		default:
			s.v.add("send failed with an unexpected error", err.Error())
			return
		}
		select {
		case <-done:
		case <-t.C:
		}
	}
}

// broadcastLoop broadcasts a text message to every socket every
// cfg.Broadcast until ctx is done.
func (s *server) broadcastLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Broadcast)
	defer t.Stop()
	pad := strings.Repeat("b", max(0, s.cfg.BroadcastSize-24))
	for seq := uint64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_ = s.ep.Broadcast(ctx, laf.Text(fmt.Sprintf("b:%d:%s", seq, pad)))
		s.broadcasts.Add(1)
	}
}

// reapLoop closes a random live socket from outside its events, with
// Endpoint.CloseSocket, every cfg.Reap.
func (s *server) reapLoop(ctx context.Context, rng *rand.Rand) {
	if s.cfg.Reap <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.Reap)
	defer t.Stop()
	var ids []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids = ids[:0]
		s.ep.Range(func(sock *laf.Socket) bool {
			ids = append(ids, sock.ID())
			return true
		})
		if len(ids) == 0 {
			continue
		}
		id := ids[rng.IntN(len(ids))]
		if err := s.ep.CloseSocket(ctx, id, 4002, "reaped"); err == nil {
			s.reaped.Add(1)
		} else if !errors.Is(err, laf.ErrNotFound) && !errors.Is(err, laf.ErrClosed) {
			s.v.add("CloseSocket failed", err.Error())
		}
	}
}

// probeLoop sends to sockets closed lately, by pointer and by id, and
// fails on any send that succeeds or any that finds the socket.
func (s *server) probeLoop(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	msg := laf.Text("probe")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, sock := range s.recent.snapshot() {
			s.probes.Add(1)
			if err := sock.SendMessage(msg); !errors.Is(err, laf.ErrClosed) {
				s.v.add("send to a closed socket did not return ErrClosed", fmt.Sprint(sock.ID(), " ", err))
			}
			if err := s.ep.SendSocket(ctx, sock.ID(), msg); !errors.Is(err, laf.ErrNotFound) {
				s.v.add("SendSocket to a closed socket did not return ErrNotFound", fmt.Sprint(sock.ID(), " ", err))
			}
			if _, ok := s.ep.Socket(sock.ID()); ok {
				s.v.add("closed socket found by Endpoint.Socket", sock.ID())
			}
		}
	}
}

// liveSet is the set of ids between their connection and close events.
type liveSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (l *liveSet) add(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[id]; ok {
		return false
	}
	l.m[id] = struct{}{}
	return true
}

func (l *liveSet) remove(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[id]; !ok {
		return false
	}
	delete(l.m, id)
	return true
}

func (l *liveSet) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// recentRing keeps the last few closed sockets, a bounded number, for the
// probe.
type recentRing struct {
	mu   sync.Mutex
	buf  [32]*laf.Socket
	next int
}

func (r *recentRing) push(s *laf.Socket) {
	r.mu.Lock()
	r.buf[r.next%len(r.buf)] = s
	r.next++
	r.mu.Unlock()
}

func (r *recentRing) snapshot() []*laf.Socket {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*laf.Socket, 0, len(r.buf))
	for _, s := range r.buf {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// clear forgets the sockets, so that they do not count against the heap
// at the end.
func (r *recentRing) clear() {
	r.mu.Lock()
	r.buf = [32]*laf.Socket{}
	r.mu.Unlock()
}

// violations counts invariant violations by name and keeps the first few
// examples.
type violations struct {
	mu       sync.Mutex
	counts   map[string]uint64
	examples []string
}

func newViolations() *violations { return &violations{counts: make(map[string]uint64)} }

func (v *violations) add(what, detail string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.counts[what]++
	if len(v.examples) < 20 {
		v.examples = append(v.examples, what+": "+detail)
	}
}

func (v *violations) snapshot() (map[string]uint64, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := make(map[string]uint64, len(v.counts))
	for k, n := range v.counts {
		m[k] = n
	}
	return m, append([]string(nil), v.examples...)
}
