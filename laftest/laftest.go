// Package laftest starts laf endpoints on real loopback servers and dials
// them with real WebSocket clients, for testing a laf.Func in a few lines:
//
//	func TestEcho(t *testing.T) {
//		srv := laftest.NewServer(t, echo)
//		c := srv.Dial(t)
//		c.Send("hi")
//		c.ExpectText("hi")
//		c.Close(websocket.StatusNormalClosure, "")
//	}
//
// # Servers
//
// NewServer serves a Func at "/", and Serve an Endpoint built elsewhere.
// ServeHandler serves any http.Handler, such as an app's http.ServeMux
// with its endpoint mounted at "/ws" among plain HTTP handlers; DialPath
// then dials a path and query on it, with headers or subprotocols in its
// websocket.DialOptions, and the plain handlers are at srv.URL:
//
//	srv := laftest.ServeHandler(t, app.Mux, app.Endpoint)
//	alice := srv.DialPath(t, "/ws?user=alice", &websocket.DialOptions{
//		HTTPHeader: http.Header{"Authorization": {"Bearer alice-token"}},
//	})
//	resp, err := http.Get(srv.URL + "/stats")
//
// NewUnstartedServer returns a server not yet started, whose Listener,
// TLS and http.Server a test may change before Start or StartTLS, as with
// httptest.NewUnstartedServer. A listener whose Accept gives each
// *net.TCPConn small buffers (SetWriteBuffer, SetReadBuffer), say, makes a
// client that stops reading fill up after a few kilobytes:
//
//	srv := laftest.NewUnstartedServer(t, ep, ep)
//	srv.Listener = smallBuffers{srv.Listener}
//	srv.Start()
//
// Every server's cleanup shuts its endpoint down and closes it.
//
// # Connections
//
// A Conn is a client connection whose methods fail the test instead of
// returning errors. Read, ReadText, ExpectText and ReadJSON take the next
// message; ReadUntil, ReadTextUntil and ExpectTextEventually skip
// messages until one matches, for endpoints that also send on a ticker.
// Wrap makes a Conn of a *websocket.Conn dialed some other way.
//
// Every method that waits gives up after the Conn's Timeout and fails the
// test. Call the methods that take or hold a testing.TB only from the
// test's goroutine, as with t.Fatal.
//
// # Recording events
//
// A Recorder records the events a Func sees, for the test to read back
// in order. Give Recorder.Func to NewServer, or Recorder.Wrap to an app
// that builds its own Endpoint around its own Func.
package laftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
)

// DefaultTimeout bounds each wait of a Conn unless its Timeout is changed.
// It is generous, so that tests pass on slow, shared machines.
const DefaultTimeout = 10 * time.Second

// Server is an httptest.Server serving a laf.Endpoint: at "/" when
// started by NewServer or Serve, wherever its handler mounts it when
// started by ServeHandler or NewUnstartedServer.
type Server struct {
	*httptest.Server
	// Endpoint is the endpoint under test, which the test's cleanup shuts
	// down. It is nil for a ServeHandler or NewUnstartedServer given none.
	Endpoint *laf.Endpoint
	// WSURL is the ws:// (wss:// with TLS) URL that Dial dials and that
	// DialPath resolves against: the server's root URL, unless the test
	// sets it to the endpoint's URL. It is empty until the server starts.
	WSURL string
}

// NewServer starts a server for laf.Handler(fn, opts...) at "/". The
// test's cleanup shuts the endpoint down and closes the server.
func NewServer(t testing.TB, fn laf.Func, opts ...laf.Option) *Server {
	t.Helper()
	return Serve(t, laf.Handler(fn, opts...))
}

// Serve starts a server for an existing endpoint at "/", as NewServer
// does.
func Serve(t testing.TB, ep *laf.Endpoint) *Server {
	t.Helper()
	return ServeHandler(t, ep, ep)
}

// ServeHandler starts a server for h, typically a mux on which ep is
// mounted among other handlers. The test's cleanup shuts ep down, if it
// is not nil, and then closes the server.
//
// WSURL is the server's root URL, so Dial dials "/": dial the endpoint
// with DialPath (srv.DialPath(t, "/ws", nil)), or set WSURL to its URL
// once (srv.WSURL += "/ws") for Dial and DialPath("?user=bob").
func ServeHandler(t testing.TB, h http.Handler, ep *laf.Endpoint) *Server {
	t.Helper()
	s := NewUnstartedServer(t, h, ep)
	s.Start()
	return s
}

// NewUnstartedServer returns a server for h, as ServeHandler does, but
// does not start it: the test may change its Listener, Config or TLS
// first, as with httptest.NewUnstartedServer, and then calls Start or
// StartTLS. To wrap the listener, replace it with a net.Listener whose
// Accept calls the original's; to replace it, close the original first.
// The test's cleanup shuts ep down, if it is not nil, and closes the
// server and its listener, whether or not it was started.
func NewUnstartedServer(t testing.TB, h http.Handler, ep *laf.Endpoint) *Server {
	t.Helper()
	if h == nil {
		t.Fatalf("laftest: nil http.Handler")
	}
	hs := httptest.NewUnstartedServer(h)
	t.Cleanup(func() {
		if ep != nil {
			ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
			defer cancel()
			ep.Shutdown(ctx)
		}
		hs.Close()
	})
	return &Server{Server: hs, Endpoint: ep}
}

// Start starts a server from NewUnstartedServer and sets WSURL. It
// panics if the server has started already.
func (s *Server) Start() {
	s.Server.Start()
	s.WSURL = wsURL(s.URL)
}

// StartTLS starts a server from NewUnstartedServer with TLS and sets
// WSURL to its wss:// URL. The Dial methods trust its certificate. It
// panics if the server has started already.
func (s *Server) StartTLS() {
	s.Server.StartTLS()
	s.WSURL = wsURL(s.URL)
}

// wsURL turns an http:// or https:// URL into a ws:// or wss:// one.
func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }

// Dial opens a client connection to WSURL, failing the test if the
// upgrade fails. The test's cleanup closes it.
func (s *Server) Dial(t testing.TB) *Conn {
	t.Helper()
	return s.DialPath(t, "", nil)
}

// DialOptions is Dial with coder/websocket's dial options (headers,
// subprotocols). It sets no read limit on the client.
func (s *Server) DialOptions(t testing.TB, opts *websocket.DialOptions) *Conn {
	t.Helper()
	return s.DialPath(t, "", opts)
}

// DialPath is DialOptions to ref resolved against WSURL as a URL
// reference (RFC 3986): "/ws?user=alice" replaces WSURL's path and query,
// "?user=alice" only its query, and "" dials WSURL itself. Headers go in
// opts.HTTPHeader. It fails the test, with the HTTP status, if the upgrade
// fails; the test's cleanup closes the connection. opts may be nil and is
// not modified.
func (s *Server) DialPath(t testing.TB, ref string, opts *websocket.DialOptions) *Conn {
	t.Helper()
	u, err := s.resolve(ref)
	if err != nil {
		t.Fatalf("laftest: %v", err)
	}
	c, resp, err := s.dial(u, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("laftest: dial %s: HTTP %d: %v", u, status, err)
	}
	return Wrap(t, c)
}

// TryDial dials WSURL without failing the test, and returns the HTTP
// response of a refused upgrade so that its status can be checked. The
// caller closes the returned Conn, which has no testing.TB: set one with
// Bind before calling the methods that wait, or use Wrap(t, c.WS), which
// also closes it in the test's cleanup.
func (s *Server) TryDial(opts *websocket.DialOptions) (*Conn, *http.Response, error) {
	return s.TryDialPath("", opts)
}

// TryDialPath is TryDial to ref resolved against WSURL, as in DialPath.
func (s *Server) TryDialPath(ref string, opts *websocket.DialOptions) (*Conn, *http.Response, error) {
	u, err := s.resolve(ref)
	if err != nil {
		return nil, nil, err
	}
	ws, resp, err := s.dial(u, opts)
	if err != nil {
		return nil, resp, err
	}
	return &Conn{WS: ws, Timeout: DefaultTimeout}, resp, nil
}

// resolve resolves ref against WSURL (the root URL if WSURL is empty).
func (s *Server) resolve(ref string) (string, error) {
	base := s.WSURL
	if base == "" && s.Server != nil {
		base = wsURL(s.URL)
	}
	if base == "" {
		return "", errors.New("server not started")
	}
	if ref == "" {
		return base, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("WSURL: %w", err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("dial %q: %w", ref, err)
	}
	return b.ResolveReference(r).String(), nil
}

// dial dials u within DefaultTimeout, with a client that trusts the
// server's certificate when it serves TLS, and lifts the client's read
// limit.
func (s *Server) dial(u string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if s.Server != nil && strings.HasPrefix(s.URL, "https:") && (opts == nil || opts.HTTPClient == nil) {
		o := websocket.DialOptions{}
		if opts != nil {
			o = *opts
		}
		o.HTTPClient = s.Client()
		opts = &o
	}
	ws, resp, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(-1)
	return ws, resp, nil
}

// Conn is a test client connection. Its methods fail the test it is
// bound to (see Bind) instead of returning errors.
type Conn struct {
	// WS is the underlying client connection, for what Conn does not wrap.
	WS *websocket.Conn
	// Timeout bounds each wait; zero means DefaultTimeout.
	Timeout time.Duration
	t       testing.TB
	// pending is a read ExpectNoMessage left under way: the next read
	// takes its result.
	pending chan readResult
}

type readResult struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

// next reads the next message, or takes the one a read left under way
// by ExpectNoMessage got, within ctx. coder/websocket closes the
// connection when a Read's context ends, so the wait for a pending read
// does not end it.
func (c *Conn) next(ctx context.Context) (websocket.MessageType, []byte, error) {
	if c.pending == nil {
		return c.WS.Read(ctx)
	}
	select {
	case r := <-c.pending:
		c.pending = nil
		return r.typ, r.data, r.err
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

// ExpectNoMessage fails the test if a message arrives within d, or the
// connection closes. The connection stays open, and the next read gets
// whatever arrives after d.
func (c *Conn) ExpectNoMessage(d time.Duration) {
	t := c.tb()
	t.Helper()
	if c.pending == nil {
		ch := make(chan readResult, 1)
		c.pending = ch
		go func() {
			typ, data, err := c.WS.Read(context.Background())
			ch <- readResult{typ, data, err}
		}()
	}
	select {
	case r := <-c.pending:
		c.pending = nil
		if r.err != nil {
			t.Fatalf("laftest: read: %v", r.err)
		}
		t.Fatalf("laftest: got (binary %v) %.200q within %v, want no message", r.typ == websocket.MessageBinary, r.data, d)
	case <-time.After(d):
	}
}

// ReadJSONAs decodes the next message, which must be text, as a T.
func ReadJSONAs[T any](c *Conn) T {
	c.tb().Helper()
	var v T
	c.ReadJSON(&v)
	return v
}

// Published is a message as Endpoint.Publish sends it.
type Published struct {
	Room   string          `json:"room"`
	Pos    string          `json:"pos"`
	Data   json.RawMessage `json:"data"`
	Binary bool            `json:"binary,omitempty"`
}

// Position returns p's position, parsed.
func (p Published) Position() laf.Position {
	pos, _ := laf.ParsePosition(p.Pos)
	return pos
}

// ReadPublished reads the next message and fails the test unless it is a
// published one (a text message with a room and a position).
func (c *Conn) ReadPublished() Published {
	t := c.tb()
	t.Helper()
	var p Published
	c.ReadJSON(&p)
	if _, err := laf.ParsePosition(p.Pos); err != nil || p.Pos == "" || p.Data == nil {
		t.Fatalf("laftest: %+v is not a published message", p)
	}
	return p
}

// Wrap returns a Conn for ws, a connection dialed some other way (with
// websocket.Dial to a server that is not a Server, say), bound to t, with
// DefaultTimeout:
//
//	ws, _, err := websocket.Dial(ctx, url, nil)
//	require.NoError(t, err)
//	c := laftest.Wrap(t, ws)
//	c.ExpectText("hi connection succeed")
//
// The Conn takes ws over: the test's cleanup closes it. Wrap leaves ws's
// read limit as it is (coder/websocket's default is 32 KiB; the Dial
// methods of Server set none).
func Wrap(t testing.TB, ws *websocket.Conn) *Conn {
	t.Helper()
	if ws == nil {
		t.Fatalf("laftest: Wrap of a nil *websocket.Conn")
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &Conn{WS: ws, Timeout: DefaultTimeout, t: t}
}

// Bind makes c fail t on errors and returns c. Dial, DialPath and Wrap
// bind for you; a Conn from TryDial needs it. Bind does not arrange for
// the connection to be closed.
func (c *Conn) Bind(t testing.TB) *Conn { c.t = t; return c }

// tb returns the test c is bound to, and panics, rather than dereference
// nil, if it is bound to none.
func (c *Conn) tb() testing.TB {
	if c.t == nil {
		panic("laftest: Conn has no testing.TB: call Bind first")
	}
	return c.t
}

func (c *Conn) ctx() (context.Context, context.CancelFunc) {
	d := c.Timeout
	if d == 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(context.Background(), d)
}

// timeout is the Timeout in effect, for messages.
func (c *Conn) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// Send sends a text message.
func (c *Conn) Send(text string) {
	c.tb().Helper()
	c.write(websocket.MessageText, []byte(text))
}

// SendBinary sends a binary message.
func (c *Conn) SendBinary(b []byte) {
	c.tb().Helper()
	c.write(websocket.MessageBinary, b)
}

// SendJSON sends v encoded as JSON in a text message.
func (c *Conn) SendJSON(v any) {
	t := c.tb()
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("laftest: encode: %v", err)
	}
	c.write(websocket.MessageText, b)
}

func (c *Conn) write(typ websocket.MessageType, b []byte) {
	t := c.tb()
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.WS.Write(ctx, typ, b); err != nil {
		t.Fatalf("laftest: send: %v", err)
	}
}

// Read waits for the next message and returns whether it is binary and
// its payload. It fails the test if the connection closes or the Timeout
// passes first.
func (c *Conn) Read() (binary bool, data []byte) {
	t := c.tb()
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	typ, data, err := c.next(ctx)
	if err != nil {
		t.Fatalf("laftest: read: %v", err)
	}
	return typ == websocket.MessageBinary, data
}

// ReadText waits for the next message, fails the test unless it is a text
// message, and returns it.
func (c *Conn) ReadText() string {
	t := c.tb()
	t.Helper()
	binary, data := c.Read()
	if binary {
		t.Fatalf("laftest: got binary message %q, want text", data)
	}
	return string(data)
}

// ExpectText fails the test unless the next message is the text want.
func (c *Conn) ExpectText(want string) {
	t := c.tb()
	t.Helper()
	if got := c.ReadText(); got != want {
		t.Fatalf("laftest: got text %q, want %q", got, want)
	}
}

// ExpectBinary fails the test unless the next message is binary with
// payload want.
func (c *Conn) ExpectBinary(want []byte) {
	t := c.tb()
	t.Helper()
	binary, data := c.Read()
	if !binary || string(data) != string(want) {
		t.Fatalf("laftest: got (binary %v) %q, want binary %q", binary, data, want)
	}
}

// ReadJSON decodes the next message, which must be text, into v.
func (c *Conn) ReadJSON(v any) {
	t := c.tb()
	t.Helper()
	if err := json.Unmarshal([]byte(c.ReadText()), v); err != nil {
		t.Fatalf("laftest: decode: %v", err)
	}
}

// ReadUntil reads messages, discarding each one for which match returns
// false, and returns the first one for which it returns true. match sees
// every message in order and may keep data. One Timeout bounds the whole
// wait, however many messages it skips; ReadUntil fails the test if it
// passes, or the connection closes, before a message matches, and says
// how many it skipped and what the last one was.
func (c *Conn) ReadUntil(match func(binary bool, data []byte) bool) (binary bool, data []byte) {
	t := c.tb()
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	var (
		skipped    int
		lastBinary bool
		last       []byte
	)
	for {
		typ, data, err := c.next(ctx)
		if err != nil {
			what := "no message matched within " + c.timeout().String()
			if ctx.Err() == nil {
				what = fmt.Sprintf("read: %v", err)
			}
			if skipped == 0 {
				t.Fatalf("laftest: %s; none skipped", what)
			}
			t.Fatalf("laftest: %s; skipped %d, the last (binary %v) %.200q", what, skipped, lastBinary, last)
		}
		binary := typ == websocket.MessageBinary
		if match(binary, data) {
			return binary, data
		}
		skipped++
		lastBinary, last = binary, data
	}
}

// ReadTextUntil is ReadUntil for text: it skips binary messages and text
// messages for which match returns false, and returns the first text
// message for which it returns true.
func (c *Conn) ReadTextUntil(match func(text string) bool) string {
	c.tb().Helper()
	_, data := c.ReadUntil(func(binary bool, data []byte) bool {
		return !binary && match(string(data))
	})
	return string(data)
}

// ExpectTextEventually skips messages until one is the text want, as
// ReadUntil does, and fails the test if none comes within the Timeout.
func (c *Conn) ExpectTextEventually(want string) {
	c.tb().Helper()
	c.ReadUntil(func(binary bool, data []byte) bool {
		return !binary && string(data) == want
	})
}

// ExpectClose waits for the server to close the connection, discarding
// messages until then, fails the test unless the close code is code, and
// returns the reason.
func (c *Conn) ExpectClose(code websocket.StatusCode) (reason string) {
	t := c.tb()
	t.Helper()
	got, reason := c.WaitClose()
	if got != code {
		t.Fatalf("laftest: closed with %d %q, want %d", got, reason, code)
	}
	return reason
}

// WaitClose waits for the connection to close, discarding messages until
// then, and returns the close code and reason; the code is -1 when the
// connection dropped without a close frame. It fails the test if the
// connection stays open for the Timeout.
func (c *Conn) WaitClose() (websocket.StatusCode, string) {
	t := c.tb()
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	for {
		_, _, err := c.next(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			t.Fatalf("laftest: no close within %v", c.timeout())
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		return -1, ""
	}
}

// Close closes the connection with code and reason and waits for the
// close handshake (coder/websocket bounds that wait by itself). It needs
// no testing.TB and ignores errors, so that it suits deferred calls.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.WS.Close(code, reason)
}
