package laf

import (
	"context"
	"sync"

	"github.com/lafgo/laf/internal/wire"
)

// Endpoint serves one Func over WebSockets. It is an http.Handler: mount
// it on any mux. It keeps a registry of its live sockets, their rooms and
// identities, so any goroutine or HTTP handler can push to them.
//
// All methods are safe for concurrent use.
type Endpoint struct {
	fn  Func
	cfg config

	mu           sync.RWMutex
	sockets      map[string]*Socket
	byIdent      map[string]map[*Socket]struct{}
	rooms        map[string]map[*Socket]struct{}
	shutting     bool
	conns        sync.WaitGroup // requests past the shutdown check, not yet done
	stats        counters
	cluster      *cluster // nil without a broker
	leave1       sync.Once
	readBufs     sync.Pool // *[]byte scratch for reading messages
	frameBatches sync.Pool // *frameBatch scratch for writing
	late         lateFlusher
}

// Handler returns an Endpoint that calls fn for every event of every
// socket it accepts.
//
// For each socket, fn is called first once with MethodConnection, then
// once with MethodMessage per message in the order the messages arrived,
// and last once with MethodClose; MethodError, when it fires, comes just
// before MethodClose. Calls for one socket never overlap, and the close
// event runs after the last message event has returned. Calls for
// different sockets run in parallel.
//
// When fn returns a non-nil error (or panics, which is recovered and
// logged with its stack), the socket is closed with 1011, or with the code
// and reason of a *CloseError; no further message events are delivered,
// and the close event follows. An error from the connection event closes
// the socket before any message is delivered. Errors returned from the
// error and close events are only logged.
//
// Upgrade requests that are not WebSocket requests get 426 Upgrade
// Required (or 400 Bad Request); cross-origin requests not allowed by
// WithOriginPatterns get 403; requests refused by the AuthFunc get its
// status; requests after Shutdown get 503.
func Handler(fn Func, opts ...Option) *Endpoint {
	if fn == nil {
		panic("laf: nil Func")
	}
	e := &Endpoint{
		fn:      fn,
		cfg:     newConfig(opts),
		sockets: make(map[string]*Socket),
		byIdent: make(map[string]map[*Socket]struct{}),
		rooms:   make(map[string]map[*Socket]struct{}),
	}
	if e.cfg.broker != nil {
		e.cluster = newCluster(e.cfg.broker, e, e.cfg.heartbeat, e.cfg.logger)
	}
	return e
}

// Shared returns the Endpoint's store.
func (e *Endpoint) Shared() *Shared { return e.cfg.shared }

// Socket returns the live socket with the given id on this Endpoint. A
// socket is found from just before its connection event until just before
// its close event.
func (e *Endpoint) Socket(id string) (*Socket, bool) {
	e.mu.RLock()
	s, ok := e.sockets[id]
	e.mu.RUnlock()
	return s, ok
}

// Len returns the number of live sockets.
func (e *Endpoint) Len() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.sockets)
}

// Range calls fn for each live socket until fn returns false. It works
// on a snapshot, so fn may call any method of e or of the sockets.
func (e *Endpoint) Range(fn func(s *Socket) bool) {
	e.mu.RLock()
	live := make([]*Socket, 0, len(e.sockets))
	for _, s := range e.sockets {
		live = append(live, s)
	}
	e.mu.RUnlock()
	for _, s := range live {
		if !fn(s) {
			return
		}
	}
}

// register adds s to the registry, or reports false if the Endpoint is
// shutting down.
func (e *Endpoint) register(s *Socket) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shutting {
		return false
	}
	e.sockets[s.id] = s
	if s.identity != "" {
		addMember(e.byIdent, s.identity, s)
	}
	if e.cluster != nil {
		e.cluster.queue(&wire.Envelope{Op: wire.OpAdd, Sockets: []wire.Socket{{ID: s.id, Identity: s.identity}}})
	}
	return true
}

// unregister removes s from the registry, its identity and its rooms.
func (e *Endpoint) unregister(s *Socket) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.sockets, s.id)
	if s.identity != "" {
		removeMember(e.byIdent, s.identity, s)
	}
	for room := range s.rooms {
		removeMember(e.rooms, room, s)
	}
	s.rooms = nil
	if e.cluster != nil {
		e.cluster.queue(&wire.Envelope{Op: wire.OpRemove, Target: s.id})
	}
}

func addMember(m map[string]map[*Socket]struct{}, key string, s *Socket) {
	set := m[key]
	if set == nil {
		set = make(map[*Socket]struct{})
		m[key] = set
	}
	set[s] = struct{}{}
}

func removeMember(m map[string]map[*Socket]struct{}, key string, s *Socket) {
	set := m[key]
	delete(set, s)
	if len(set) == 0 {
		delete(m, key)
	}
}

func (e *Endpoint) join(s *Socket, room string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sockets[s.id] != s {
		return
	}
	if s.rooms == nil {
		s.rooms = make(map[string]struct{})
	}
	if _, ok := s.rooms[room]; ok {
		return
	}
	s.rooms[room] = struct{}{}
	addMember(e.rooms, room, s)
	if e.cluster != nil {
		e.cluster.queue(&wire.Envelope{Op: wire.OpJoin, Target: s.id, Room: room})
	}
}

func (e *Endpoint) leave(s *Socket, room string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := s.rooms[room]; ok {
		delete(s.rooms, room)
		removeMember(e.rooms, room, s)
		if e.cluster != nil {
			e.cluster.queue(&wire.Envelope{Op: wire.OpLeave, Target: s.id, Room: room})
		}
	}
}

func (e *Endpoint) roomsOf(s *Socket) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// RoomLen returns the number of this Endpoint's sockets in room.
func (e *Endpoint) RoomLen(room string) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.rooms[room])
}

// SendSocket queues m on the socket with the given id, on this node or,
// with a broker, on any node. It returns ErrNotFound if no node has it
// (as far as presence knows), the error of the publish if the broker
// refused it, or what Socket.SendMessage returns for a local socket.
func (e *Endpoint) SendSocket(ctx context.Context, id string, m Message) error {
	if s, ok := e.Socket(id); ok {
		return s.enqueue(m)
	}
	if e.cluster == nil {
		return ErrNotFound
	}
	return e.cluster.sendSocket(ctx, id, m)
}

// Broadcast queues m on every live socket, on every node with a broker.
// It holds no lock while any socket writes, and a socket over its queue
// budget is handled by the SlowPolicy without delaying the others. The
// payload is shared, not copied per socket. Local sockets get m even if
// publishing to the broker fails, which Broadcast then returns.
func (e *Endpoint) Broadcast(ctx context.Context, m Message) error {
	e.broadcastLocal(m)
	return e.publish(ctx, wire.OpBroadcast, "", m)
}

func (e *Endpoint) broadcastLocal(m Message) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, s := range e.sockets {
		s.enqueue(m)
	}
}

// SendRoom queues m on every socket in room, as Broadcast does.
func (e *Endpoint) SendRoom(ctx context.Context, room string, m Message) error {
	e.sendSet(e.rooms, room, m)
	return e.publish(ctx, wire.OpRoom, room, m)
}

// SendIdentity queues m on every socket whose AuthFunc attached identity
// (every tab of one user, say), as Broadcast does.
func (e *Endpoint) SendIdentity(ctx context.Context, identity string, m Message) error {
	e.sendSet(e.byIdent, identity, m)
	return e.publish(ctx, wire.OpIdentity, identity, m)
}

func (e *Endpoint) sendSet(m map[string]map[*Socket]struct{}, key string, msg Message) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for s := range m[key] {
		s.enqueue(msg)
	}
}

func (e *Endpoint) publish(ctx context.Context, op wire.Op, target string, m Message) error {
	if e.cluster == nil {
		return nil
	}
	return e.cluster.publishMessage(ctx, op, target, m)
}

// deliverLocal serves a send that another node published.
func (e *Endpoint) deliverLocal(env *wire.Envelope) {
	m := Message{data: env.Data, binary: env.Binary}
	switch env.Op {
	case wire.OpSend:
		if s, ok := e.Socket(env.Target); ok {
			s.enqueue(m)
		}
	case wire.OpClose:
		if s, ok := e.Socket(env.Target); ok {
			s.Close(env.Code, env.Reason)
		}
	case wire.OpRoom:
		e.sendSet(e.rooms, env.Target, m)
	case wire.OpIdentity:
		e.sendSet(e.byIdent, env.Target, m)
	case wire.OpBroadcast:
		e.broadcastLocal(m)
	}
}

// CloseSocket closes the socket with the given id, on any node with a
// broker, as Socket.Close does. It returns ErrNotFound if no node has it.
func (e *Endpoint) CloseSocket(ctx context.Context, id string, code int, reason string) error {
	if s, ok := e.Socket(id); ok {
		return s.Close(code, reason)
	}
	if e.cluster == nil {
		return ErrNotFound
	}
	return e.cluster.closeSocket(ctx, id, code, reason)
}

// leaveCluster stops the Endpoint's part in the cluster, once.
func (e *Endpoint) leaveCluster() {
	if e.cluster != nil {
		e.leave1.Do(e.cluster.stop)
	}
}

// Shutdown stops the Endpoint gracefully: new upgrades get 503, every
// socket is sent 1001 "going away" (after what it had queued) and closes
// with cause CauseShutdown. Shutdown waits until every close event has
// returned, or until ctx is done; then it drops the connections still
// open and returns ctx's error. Calling it again waits again.
//
// http.Server.Shutdown does not wait for WebSockets, which it sees as
// hijacked connections. Start the Endpoint's Shutdown from the server's:
//
//	srv.RegisterOnShutdown(func() { ep.Shutdown(ctx) })
//	srv.Shutdown(ctx)
//
// rather than after srv.Shutdown returns: that waits for idle keep-alive
// connections first (browsers keep a spare one open), which would delay
// the sockets' 1001 by seconds. RegisterOnShutdown runs the function in
// its own goroutine, so wait for it before the process exits. With a
// broker, Shutdown also leaves the cluster, so other nodes drop this
// one's presence at once.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.shutting = true
	live := make([]*Socket, 0, len(e.sockets))
	for _, s := range e.sockets {
		live = append(live, s)
	}
	e.mu.Unlock()
	for _, s := range live {
		s.closeWith(1001, "going away", CauseShutdown, false)
	}

	done := make(chan struct{})
	go func() {
		e.conns.Wait()
		close(done)
	}()
	defer e.leaveCluster()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, s := range live {
		s.closeWith(1001, "going away", CauseShutdown, true)
		s.drop()
	}
	return ctx.Err()
}
