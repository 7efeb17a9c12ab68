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
// Every method that waits gives up after the Conn's Timeout and fails the
// test. Call the methods that take or hold a testing.TB only from the
// test's goroutine, as with t.Fatal.
package laftest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
)

// DefaultTimeout bounds each wait of a Conn unless its Timeout is changed.
// It is generous, so that tests pass on slow, shared machines.
const DefaultTimeout = 10 * time.Second

// Server is an httptest.Server serving one laf.Endpoint at "/".
type Server struct {
	*httptest.Server
	// Endpoint is the endpoint under test.
	Endpoint *laf.Endpoint
	// WSURL is the ws:// URL of the endpoint.
	WSURL string
}

// NewServer starts a server for laf.Handler(fn, opts...). The test's
// cleanup shuts the endpoint down and closes the server.
func NewServer(t testing.TB, fn laf.Func, opts ...laf.Option) *Server {
	t.Helper()
	return Serve(t, laf.Handler(fn, opts...))
}

// Serve starts a server for an existing endpoint, as NewServer does.
func Serve(t testing.TB, ep *laf.Endpoint) *Server {
	t.Helper()
	hs := httptest.NewServer(ep)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		ep.Shutdown(ctx)
		hs.Close()
	})
	return &Server{Server: hs, Endpoint: ep, WSURL: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

// Dial opens a client connection to the endpoint, failing the test if
// the upgrade fails. The test's cleanup closes it.
func (s *Server) Dial(t testing.TB) *Conn {
	t.Helper()
	return s.DialOptions(t, nil)
}

// DialOptions is Dial with coder/websocket's dial options (headers,
// subprotocols). It sets no read limit on the client.
func (s *Server) DialOptions(t testing.TB, opts *websocket.DialOptions) *Conn {
	t.Helper()
	c, resp, err := s.TryDial(opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("laftest: dial %s: HTTP %d: %v", s.WSURL, status, err)
	}
	t.Cleanup(func() { c.WS.CloseNow() })
	c.t = t
	return c
}

// TryDial dials without failing the test, and returns the HTTP response
// of a refused upgrade so that its status can be checked. The caller
// closes the returned Conn, which has no testing.TB: set one with Bind
// before calling the methods that wait.
func (s *Server) TryDial(opts *websocket.DialOptions) (*Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, s.WSURL, opts)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(-1)
	return &Conn{WS: ws, Timeout: DefaultTimeout}, resp, nil
}

// Conn is a test client connection.
type Conn struct {
	// WS is the underlying client connection, for what Conn does not wrap.
	WS *websocket.Conn
	// Timeout bounds each wait.
	Timeout time.Duration
	t       testing.TB
}

// Bind makes c fail t on errors. Dial binds for you.
func (c *Conn) Bind(t testing.TB) *Conn { c.t = t; return c }

func (c *Conn) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.Timeout)
}

// Send sends a text message.
func (c *Conn) Send(text string) {
	c.t.Helper()
	c.write(websocket.MessageText, []byte(text))
}

// SendBinary sends a binary message.
func (c *Conn) SendBinary(b []byte) {
	c.t.Helper()
	c.write(websocket.MessageBinary, b)
}

// SendJSON sends v encoded as JSON in a text message.
func (c *Conn) SendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("laftest: encode: %v", err)
	}
	c.write(websocket.MessageText, b)
}

func (c *Conn) write(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.WS.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("laftest: send: %v", err)
	}
}

// Read waits for the next message and returns whether it is binary and
// its payload. It fails the test if the connection closes or the Timeout
// passes first.
func (c *Conn) Read() (binary bool, data []byte) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	typ, data, err := c.WS.Read(ctx)
	if err != nil {
		c.t.Fatalf("laftest: read: %v", err)
	}
	return typ == websocket.MessageBinary, data
}

// ReadText waits for the next message, fails the test unless it is a text
// message, and returns it.
func (c *Conn) ReadText() string {
	c.t.Helper()
	binary, data := c.Read()
	if binary {
		c.t.Fatalf("laftest: got binary message %q, want text", data)
	}
	return string(data)
}

// ExpectText fails the test unless the next message is the text want.
func (c *Conn) ExpectText(want string) {
	c.t.Helper()
	if got := c.ReadText(); got != want {
		c.t.Fatalf("laftest: got text %q, want %q", got, want)
	}
}

// ExpectBinary fails the test unless the next message is binary with
// payload want.
func (c *Conn) ExpectBinary(want []byte) {
	c.t.Helper()
	binary, data := c.Read()
	if !binary || string(data) != string(want) {
		c.t.Fatalf("laftest: got (binary %v) %q, want binary %q", binary, data, want)
	}
}

// ReadJSON decodes the next message, which must be text, into v.
func (c *Conn) ReadJSON(v any) {
	c.t.Helper()
	if err := json.Unmarshal([]byte(c.ReadText()), v); err != nil {
		c.t.Fatalf("laftest: decode: %v", err)
	}
}

// ExpectClose waits for the server to close the connection, discarding
// messages until then, fails the test unless the close code is code, and
// returns the reason.
func (c *Conn) ExpectClose(code websocket.StatusCode) (reason string) {
	c.t.Helper()
	got, reason := c.WaitClose()
	if got != code {
		c.t.Fatalf("laftest: closed with %d %q, want %d", got, reason, code)
	}
	return reason
}

// WaitClose waits for the connection to close, discarding messages until
// then, and returns the close code and reason; the code is -1 when the
// connection dropped without a close frame.
func (c *Conn) WaitClose() (websocket.StatusCode, string) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	for {
		_, _, err := c.WS.Read(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			c.t.Fatalf("laftest: no close within %v", c.Timeout)
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		return -1, ""
	}
}

// Close closes the connection with code and reason and waits for the
// close handshake.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.WS.Close(code, reason)
}
