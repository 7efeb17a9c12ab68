package laf

import (
	"context"
	"sync"
)

// Endpoint serves one Func over WebSockets. It is an http.Handler: mount
// it on any mux. It keeps a registry of its live sockets, their rooms and
// identities, so any goroutine or HTTP handler can push to them.
//
// All methods are safe for concurrent use.
type Endpoint struct {
	fn  Func
	cfg config

	mu       sync.RWMutex
	sockets  map[string]*Socket
	byIdent  map[string]map[*Socket]struct{}
	rooms    map[string]map[*Socket]struct{}
	shutting bool
	conns    sync.WaitGroup // requests past the shutdown check, not yet done
	stats    counters
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
	e := &Endpoint{
		fn:      fn,
		cfg:     newConfig(opts),
		sockets: make(map[string]*Socket),
		byIdent: make(map[string]map[*Socket]struct{}),
		rooms:   make(map[string]map[*Socket]struct{}),
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
	s.rooms[room] = struct{}{}
	addMember(e.rooms, room, s)
}

func (e *Endpoint) leave(s *Socket, room string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := s.rooms[room]; ok {
		delete(s.rooms, room)
		removeMember(e.rooms, room, s)
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

// SendSocket queues m on the socket with the given id. It returns
// ErrNotFound if there is none, or what Socket.SendMessage returns.
func (e *Endpoint) SendSocket(ctx context.Context, id string, m Message) error {
	s, ok := e.Socket(id)
	if !ok {
		return ErrNotFound
	}
	return s.enqueue(m)
}

// Broadcast queues m on every live socket. It holds no lock while any
// socket writes, and a socket over its queue budget is handled by the
// SlowPolicy without delaying the others. The payload is shared, not
// copied per socket.
func (e *Endpoint) Broadcast(ctx context.Context, m Message) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, s := range e.sockets {
		s.enqueue(m)
	}
	return nil
}

// SendRoom queues m on every socket in room, as Broadcast does.
func (e *Endpoint) SendRoom(ctx context.Context, room string, m Message) error {
	e.sendSet(e.rooms, room, m)
	return nil
}

// SendIdentity queues m on every socket whose AuthFunc attached identity
// (every tab of one user, say), as Broadcast does.
func (e *Endpoint) SendIdentity(ctx context.Context, identity string, m Message) error {
	e.sendSet(e.byIdent, identity, m)
	return nil
}

func (e *Endpoint) sendSet(m map[string]map[*Socket]struct{}, key string, msg Message) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for s := range m[key] {
		s.enqueue(msg)
	}
}

// CloseSocket closes the socket with the given id as Socket.Close does.
// It returns ErrNotFound if there is none.
func (e *Endpoint) CloseSocket(ctx context.Context, id string, code int, reason string) error {
	s, ok := e.Socket(id)
	if !ok {
		return ErrNotFound
	}
	return s.Close(code, reason)
}

// Shutdown stops the Endpoint gracefully: new upgrades get 503, every
// socket is sent 1001 "going away" (after what it had queued) and closes
// with cause CauseShutdown. Shutdown waits until every close event has
// returned, or until ctx is done; then it drops the connections still
// open and returns ctx's error. Calling it again waits again.
//
// http.Server.Shutdown does not wait for WebSockets, which it sees as
// hijacked connections; call both:
//
//	srv.RegisterOnShutdown(func() { ep.Shutdown(ctx) })
//
// or call ep.Shutdown after srv.Shutdown returns.
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
