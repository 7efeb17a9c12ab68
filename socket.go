package laf

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wsconn"
)

// Socket is one live WebSocket connection, Laf's ctx.socket. All its
// methods are safe to call from any goroutine, at any time, including
// after it has closed.
//
// Sends are queued and written in the order they were queued, so a send
// never waits for the peer's network. What is sent while one of the
// socket's own events runs is written by the socket's goroutine as soon as
// the event returns, or within about 1–2 ms if the event runs longer;
// other sends are written by a writer goroutine that runs only
// while the queue is not empty. Each socket's queue has a budget (see
// WithSendQueue and WithSlowPolicy).
type Socket struct {
	id       string
	identity string
	ep       *Endpoint
	conn     *wsconn.Conn // the connection's one reader, writer and state
	req      *http.Request
	born     time.Time
	traffic  *traffic
	lent     *FunctionContext   // the message event WithLentData reuses; the socket's goroutine's
	limiter  *rateLimiter       // WithRateLimit's; the socket's goroutine's
	deflate  bool               // permessage-deflate was negotiated
	capKey   string             // the key WithMaxSocketsPerKey counted the socket under
	token    uint64             // the socket's key among the Endpoint's parked sockets
	exact    func(n int) []byte // s.exactData, made once; nil with WithLentData
	exactFC  *FunctionContext   // the event exactData made for the message being read; the socket's goroutine's

	out    outbox              // the write side: queue, writer, close decision
	rooms  map[string]struct{} // guarded by the registry's mu
	ping   pingState           // guarded by the Endpoint's pinger.mu
	timers *timers             // nil without an idle or lifetime limit

	inHandler  atomic.Bool
	lastActive atomic.Int64 // since born, in ns; kept only with an idle timeout
	lastRead   atomic.Int64 // since born, in ns; kept only with a read idle timeout

	valsMu sync.Mutex         // guards vals and the context; a leaf
	vals   map[string]any     // Set's; made on the first Set
	ctx    context.Context    // Context's, made on its first call
	cancel context.CancelFunc // ctx's
	ended  bool               // the socket has closed: ctx is made done
}

// ID returns the socket's id: 128 random bits, URL-safe (with a broker,
// after the node's id and a dot, so that a push by id goes to that node
// alone), unique and
// unguessable. Endpoint.Socket and Endpoint.SendSocket find the socket by it.
func (s *Socket) ID() string { return s.id }

// Identity returns the identity the AuthFunc attached, or "".
func (s *Socket) Identity() string { return s.identity }

// Request returns the upgrade request. The socket keeps it for its life;
// its URL and headers are at most WithMaxRequestBytes (32 KiB by
// default), as larger requests are refused with 431.
func (s *Socket) Request() *http.Request { return s.req }

// Subprotocol returns the negotiated subprotocol, or "".
func (s *Socket) Subprotocol() string { return s.conn.Subprotocol() }

// closeConn closes the socket's connection at once, and resumes the
// socket if it is parked: a closed descriptor leaves the poller's epoll
// set without a word.
func (s *Socket) closeConn() {
	s.conn.Close()
	s.ep.poll.unpark(s)
}

// Context returns a context that is done once the socket has closed, just
// before its close event runs. It carries the upgrade request's values.
func (s *Socket) Context() context.Context {
	s.valsMu.Lock()
	defer s.valsMu.Unlock()
	if s.ctx == nil {
		// Without the request's cancellation, the socket's context does
		// not register with the server's: it is done when the socket
		// closes. Made only when asked for, as most sockets never are.
		s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(s.req.Context()))
		if s.ended {
			s.cancel()
		}
	}
	return s.ctx
}

// endContext makes the socket's context done, now or when it is made.
func (s *Socket) endContext() {
	s.valsMu.Lock()
	s.ended = true
	if s.cancel != nil {
		s.cancel()
	}
	s.valsMu.Unlock()
}

// Send queues a text message. It returns ErrClosed if the socket is
// closing or closed, and ErrQueueFull if the queue budget refused it.
// Messages sent from one goroutine arrive in the order sent; messages from
// several goroutines each arrive whole.
func (s *Socket) Send(text string) error { return s.out.enqueue(Text(text)) }

// SendBinary queues a binary message holding a copy of b. It returns as
// Send does.
func (s *Socket) SendBinary(b []byte) error { return s.out.enqueue(Binary(b)) }

// SendJSON queues v encoded with encoding/json as a text message. It
// returns the encoding error, or as Send does.
func (s *Socket) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.out.enqueue(Message{data: b, json: true})
}

// SendMessage queues m. It returns as Send does.
func (s *Socket) SendMessage(m Message) error { return s.out.enqueue(m) }

// Buffered returns the bytes of the messages queued on the socket and not
// yet written, as a browser's WebSocket.bufferedAmount does: a figure to
// watch for a peer that falls behind.
func (s *Socket) Buffered() int {
	n, _ := s.out.figures()
	return n
}

// Dropped returns how many messages sent to this socket its slow policy
// dropped (DropNewest, DropOldest). Latest replacements are not drops.
func (s *Socket) Dropped() uint64 {
	_, n := s.out.figures()
	return n
}

// Close starts closing the socket with code and reason and returns at
// once. Messages queued before it are written first; then the close
// handshake runs, and the close event fires with this code and reason and
// CauseServer. Close returns ErrClosed if the socket is already closing,
// and an error if code may not be sent (valid: 1000–1003, 1007–1014,
// 3000–4999) or reason is over 123 bytes.
func (s *Socket) Close(code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	if !s.out.decide(closeFor(CauseServer).with(code, reason)) {
		return ErrClosed
	}
	return nil
}

// Join adds the socket to room. Joining a room twice does nothing. A
// closed socket joins nothing.
func (s *Socket) Join(room string) { s.ep.reg.join(s, room) }

// Leave removes the socket from room. A closed socket's rooms stay as
// they were when it closed.
func (s *Socket) Leave(room string) { s.ep.reg.leave(s, room) }

// Rooms returns the rooms the socket is in, in no particular order. During
// and after the close event it returns the rooms the socket was in when
// it closed, so the close event can tell those rooms it left; sends to
// those rooms no longer reach it.
func (s *Socket) Rooms() []string { return s.ep.reg.roomsOf(s) }

// Set stores v under key on the socket, replacing any earlier value: state
// that belongs to one connection, such as the user's name or the room it
// is in. Values are safe to use from any goroutine, stay readable during
// and after the close event, and are freed with the socket.
func (s *Socket) Set(key string, v any) {
	s.valsMu.Lock()
	if s.vals == nil {
		s.vals = make(map[string]any)
	}
	s.vals[key] = v
	s.valsMu.Unlock()
}

// Get returns the value stored under key with Set, and whether there was
// one.
func (s *Socket) Get(key string) (any, bool) {
	s.valsMu.Lock()
	v, ok := s.vals[key]
	s.valsMu.Unlock()
	return v, ok
}

// Delete removes the value stored under key. Deleting a missing key does
// nothing.
func (s *Socket) Delete(key string) {
	s.valsMu.Lock()
	delete(s.vals, key)
	s.valsMu.Unlock()
}
