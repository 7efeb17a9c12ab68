package laf

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/lafgo/laf/internal/wire"
	"github.com/lafgo/laf/internal/wsconn"
)

// Endpoint serves one Func over WebSockets. It is an http.Handler: mount
// it on any mux. It keeps a registry of its live sockets, their rooms and
// identities, so any goroutine or HTTP handler can push to them.
//
// All methods are safe for concurrent use.
type Endpoint struct {
	fn           Func
	cfg          config
	reg          registry
	streams      *streams       // Publish's positions and history
	conns        sync.WaitGroup // requests past the shutdown check, not yet done
	stats        counters
	cluster      *cluster // nil without a broker
	leave1       sync.Once
	readBufs     sync.Pool // *[]byte scratch for reading messages
	frameBatches sync.Pool // *frameBatch scratch for writing
	late         lateFlusher
	poll         poller // the parked sockets
	pinger       pinger // the keepalive
	capacity     capacity
	// aborted is done once Shutdown's context ends: every event's
	// context is then done.
	aborted context.Context
	abort   context.CancelFunc
}

// Shared returns the Endpoint's store.
func (e *Endpoint) Shared() *Shared { return e.cfg.shared }

// Socket returns the live socket with the given id on this Endpoint. A
// socket is found from just before its connection event until just before
// its close event.
func (e *Endpoint) Socket(id string) (*Socket, bool) { return e.reg.get(id) }

// Len returns the number of live sockets on this Endpoint: those in the
// registry, from just before their connection event until just before
// their close event. Stats().Live counts the same sockets without a lock
// and may lag it by an instant; Presence().Count() adds the sockets of
// other nodes.
func (e *Endpoint) Len() int { return e.reg.len() }

// Range calls fn for each live socket until fn returns false. It works
// on a snapshot, so fn may call any method of e or of the sockets.
func (e *Endpoint) Range(fn func(s *Socket) bool) {
	for _, s := range e.reg.all() {
		if !fn(s) {
			return
		}
	}
}

// RangeRoom calls fn for each of this Endpoint's sockets in room until fn
// returns false, as Range does: on a snapshot, so fn may call any method
// of e or of the sockets, Join and Leave included.
func (e *Endpoint) RangeRoom(room string, fn func(s *Socket) bool) {
	for _, s := range e.reg.inRoom(room) {
		if !fn(s) {
			return
		}
	}
}

// RoomLen returns the number of this Endpoint's sockets in room.
func (e *Endpoint) RoomLen(room string) int { return e.reg.roomLen(room) }

// ServeHTTP upgrades the request to a WebSocket and starts the socket's
// events on a goroutine of their own; it returns once the socket is in
// the registry. See Handler.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !e.reg.admit(&e.conns) {
		e.stats.refused.Add(1)
		w.Header().Set("Retry-After", shutdownRetryAfter)
		http.Error(w, "laf: endpoint is shutting down", http.StatusServiceUnavailable)
		return
	}
	key, ok := e.admitCapacity(w, r)
	if !ok {
		e.conns.Done()
		return
	}
	var s *Socket
	defer func() {
		if s == nil {
			e.releaseCapacity(key)
			e.conns.Done()
		}
	}()
	identity, ok := e.authorize(w, r)
	if !ok {
		return
	}
	if s = e.upgrade(w, r, identity); s == nil {
		return
	}
	// The socket runs on a goroutine of its own, and ServeHTTP returns: an
	// idle socket then keeps a small stack, not the one net/http grew
	// parsing the request.
	s.capKey = key
	go s.run()
}

// authorize runs the AuthFunc, answering a refusal with its status.
func (e *Endpoint) authorize(w http.ResponseWriter, r *http.Request) (identity string, ok bool) {
	if e.cfg.auth == nil {
		return "", true
	}
	identity, err := e.cfg.auth(r)
	if err == nil {
		return identity, true
	}
	e.stats.refused.Add(1)
	status, msg := http.StatusUnauthorized, ""
	var he *HTTPError
	if errors.As(err, &he) {
		status, msg = he.Status, he.Message
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	http.Error(w, msg, status)
	return "", false
}

// upgrade accepts the WebSocket and registers its socket, or returns nil
// once it has answered a bad request (see wsconn.Upgrade).
func (e *Endpoint) upgrade(w http.ResponseWriter, r *http.Request, identity string) *Socket {
	opts := wsconn.UpgradeOptions{
		Subprotocols:    e.cfg.subprotocols,
		OriginPatterns:  e.cfg.originPatterns,
		Compression:     e.cfg.compress,
		MaxRequestBytes: e.cfg.maxRequestBytes,
		Config: wsconn.Config{
			ReadLimit:    e.cfg.readLimit,
			WriteTimeout: e.cfg.writeTimeout,
		},
	}
	if canPark {
		opts.Config.ParkAfter = parkAfter
	}
	conn, err := wsconn.Upgrade(w, r, &opts)
	if err != nil {
		e.stats.refused.Add(1)
		e.cfg.logger.Debug("laf: upgrade refused", "remote", r.RemoteAddr, "err", err)
		return nil
	}
	n := e.stats.accepted.Add(1)

	s := &Socket{
		id:       e.reg.idPrefix + newID(),
		token:    n,
		identity: identity,
		ep:       e,
		conn:     conn,
		req:      r,
		born:     time.Now(),
		traffic:  &e.stats.traffic[n%trafficStripes],
		limiter:  newRateLimiter(e.cfg.rateLimit, e.cfg.readLimit),
		deflate:  conn.Deflate(),
	}
	if !e.cfg.lentData {
		s.exact = s.exactData
	}
	s.out.init(s)
	if !e.reg.add(s) {
		// Shutdown began during the upgrade: close as it closes the rest.
		s.out.decide(closeFor(CauseShutdown))
	}
	e.stats.live.Add(1)
	s.startTimers()
	return s
}

// Shutdown stops the Endpoint gracefully: new upgrades get 503 with
// Retry-After, Ready fails, every socket is sent 1001 "going away" (after
// what it had queued) and closes with cause CauseShutdown. For a deploy,
// Drain spreads the closes over a window instead. Shutdown waits until
// every close event has returned, or until ctx is done; then it drops
// the connections still open and returns ctx's error. Calling it again
// waits again.
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
	live := e.reg.shutdown()
	for _, s := range live {
		s.out.decide(closeFor(CauseShutdown))
	}
	done := e.allClosed()
	defer e.leaveCluster()
	return e.awaitClosed(ctx, done, live)
}

// leaveCluster stops the Endpoint's part in the cluster, once.
func (e *Endpoint) leaveCluster() {
	if e.cluster != nil {
		e.leave1.Do(e.cluster.stop)
	}
}

// registry is an Endpoint's live sockets, by id, identity and room, and
// the rooms of each socket. It is the one owner of its lock: presence and
// the cluster ask it, and never take the lock themselves.
//
// Sends to a room are queued under the read lock: see locks.go.
type registry struct {
	mu       sync.RWMutex
	sockets  map[string]*Socket
	byIdent  map[string]map[*Socket]struct{}
	rooms    map[string]map[*Socket]struct{}
	shutting bool
	// notify, if set, hears under mu, without blocking: wire.OpBeat with
	// "" when a socket comes or goes, and wire.OpRoom or wire.OpIdentity
	// with the key when a room or identity gets its first socket or loses
	// its last. The cluster holds a room's or identity's channel while it
	// has local members.
	notify func(op wire.Op, key string)
	// idPrefix, set by the cluster before any socket, starts every socket
	// id: the node's id and a dot, so that a push by id finds its node.
	idPrefix string
	// hook, if set, hears rooms become occupied and empty: the changes
	// queue in hookQ under mu, and one goroutine at a time (hooking)
	// calls hook with them, in order, without the lock.
	hook    RoomHook
	hookQ   []roomChange
	hooking bool
}

type roomChange struct {
	room     string
	occupied bool
}

func newRegistry() registry {
	return registry{
		sockets: make(map[string]*Socket),
		byIdent: make(map[string]map[*Socket]struct{}),
		rooms:   make(map[string]map[*Socket]struct{}),
	}
}

// admit counts a request in conns unless the Endpoint is shutting down.
// shutdown sets shutting under the write lock, so no Add races its Wait.
func (r *registry) admit(conns *sync.WaitGroup) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.shutting {
		return false
	}
	conns.Add(1)
	return true
}

// shutdown refuses further sockets and returns the live ones.
func (r *registry) shutdown() []*Socket {
	r.mu.Lock()
	r.shutting = true
	r.mu.Unlock()
	return r.all()
}

// closing reports whether shutdown has been called.
func (r *registry) closing() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.shutting
}

// add registers s, or reports false if the Endpoint is shutting down.
func (r *registry) add(s *Socket) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shutting {
		return false
	}
	r.sockets[s.id] = s
	if s.identity != "" && addMember(r.byIdent, s.identity, s) {
		r.notifyChange(wire.OpIdentity, s.identity)
	}
	r.notifyChange(wire.OpBeat, "")
	return true
}

// remove unregisters s, with its identity and rooms.
func (r *registry) remove(s *Socket) {
	r.mu.Lock()
	defer r.runHooks()
	defer r.mu.Unlock()
	delete(r.sockets, s.id)
	if s.identity != "" && removeMember(r.byIdent, s.identity, s) {
		r.notifyChange(wire.OpIdentity, s.identity)
	}
	// s.rooms stays, for Socket.Rooms in the close event.
	for room := range s.rooms {
		if removeMember(r.rooms, room, s) {
			r.roomChanged(room, false)
			r.notifyChange(wire.OpRoom, room)
		}
	}
	r.notifyChange(wire.OpBeat, "")
}

// notifyChange tells notify, if set, of a change. r.mu is held.
func (r *registry) notifyChange(op wire.Op, key string) {
	if r.notify != nil {
		r.notify(op, key)
	}
}

func (r *registry) get(id string) (*Socket, bool) {
	r.mu.RLock()
	s, ok := r.sockets[id]
	r.mu.RUnlock()
	return s, ok
}

func (r *registry) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.sockets)
}

// all returns a snapshot of the live sockets.
func (r *registry) all() []*Socket {
	r.mu.RLock()
	defer r.mu.RUnlock()
	live := make([]*Socket, 0, len(r.sockets))
	for _, s := range r.sockets {
		live = append(live, s)
	}
	return live
}

// sendAll queues m on every live socket and returns how many there are.
func (r *registry) sendAll(m Message) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.sockets {
		s.out.enqueue(m)
	}
	return len(r.sockets)
}

// sendTo queues m on every socket in the index under key, a room's
// members or the sockets of one identity, and returns how many there are.
func (r *registry) sendTo(index func(*registry) map[string]map[*Socket]struct{}, key string, m Message) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	set := index(r)[key]
	for s := range set {
		s.out.enqueue(m)
	}
	return len(set)
}

func byRoom(r *registry) map[string]map[*Socket]struct{}     { return r.rooms }
func byIdentity(r *registry) map[string]map[*Socket]struct{} { return r.byIdent }

func (r *registry) join(s *Socket, room string) {
	r.joinRoom(s, room)
	r.runHooks()
}

// joinRoom adds s to room, and reports false if s is not live. It leaves
// the room hook to the caller's runHooks, which must come once the
// caller holds no lock.
func (r *registry) joinRoom(s *Socket, room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sockets[s.id] != s {
		return false
	}
	if s.rooms == nil {
		s.rooms = make(map[string]struct{})
	}
	if _, ok := s.rooms[room]; ok {
		return true
	}
	s.rooms[room] = struct{}{}
	if addMember(r.rooms, room, s) {
		r.roomChanged(room, true)
		r.notifyChange(wire.OpRoom, room)
	}
	return true
}

func (r *registry) leave(s *Socket, room string) {
	r.mu.Lock()
	defer r.runHooks()
	defer r.mu.Unlock()
	if r.sockets[s.id] != s {
		return
	}
	if _, ok := s.rooms[room]; ok {
		delete(s.rooms, room)
		if removeMember(r.rooms, room, s) {
			r.roomChanged(room, false)
			r.notifyChange(wire.OpRoom, room)
		}
	}
}

func (r *registry) roomsOf(s *Socket) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rooms := make([]string, 0, len(s.rooms))
	for room := range s.rooms {
		rooms = append(rooms, room)
	}
	return rooms
}

func (r *registry) roomLen(room string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.rooms[room])
}

func (r *registry) identityLen(identity string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byIdent[identity])
}

// roomIDs returns the ids of the sockets in room.
func (r *registry) roomIDs(room string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.rooms[room]))
	for s := range r.rooms[room] {
		ids = append(ids, s.id)
	}
	return ids
}

// roomChanged queues a change for the room hook. r.mu is held.
func (r *registry) roomChanged(room string, occupied bool) {
	if r.hook != nil {
		r.hookQ = append(r.hookQ, roomChange{room, occupied})
	}
}

// runHooks calls the room hook with the queued changes, unless another
// goroutine is at it already. r.mu is not held.
func (r *registry) runHooks() {
	r.mu.Lock()
	if r.hooking || len(r.hookQ) == 0 {
		r.mu.Unlock()
		return
	}
	r.hooking = true
	for len(r.hookQ) > 0 {
		q := r.hookQ
		r.hookQ = nil
		r.mu.Unlock()
		for _, c := range q {
			r.hook(c.room, c.occupied)
		}
		r.mu.Lock()
	}
	r.hooking = false
	r.mu.Unlock()
}

// inRoom returns a snapshot of the sockets in room.
func (r *registry) inRoom(room string) []*Socket {
	r.mu.RLock()
	defer r.mu.RUnlock()
	members := make([]*Socket, 0, len(r.rooms[room]))
	for s := range r.rooms[room] {
		members = append(members, s)
	}
	return members
}

// addMember adds s to the set under key and reports whether it is the
// set's first.
func addMember(m map[string]map[*Socket]struct{}, key string, s *Socket) (first bool) {
	set := m[key]
	if set == nil {
		set = make(map[*Socket]struct{})
		m[key] = set
	}
	set[s] = struct{}{}
	return len(set) == 1
}

// removeMember removes s from the set under key and reports whether it
// was the set's last.
func removeMember(m map[string]map[*Socket]struct{}, key string, s *Socket) (last bool) {
	set := m[key]
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(m, key)
		return true
	}
	return false
}
