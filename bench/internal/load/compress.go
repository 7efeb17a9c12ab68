package load

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The compression scenarios dial with gorilla's client offering
// permessage-deflate ("permessage-deflate; server_no_context_takeover;
// client_no_context_takeover": gorilla compresses its own messages, at
// level 1, and inflates the server's), over connections that count the
// bytes they carry, so that what compression saves is measured on the
// wire rather than computed.

// countConn counts the bytes read from and written to a connection: the
// TCP payload, WebSocket frame headers, handshake and control frames
// included (IP and TCP headers are not).
type countConn struct {
	net.Conn
	read, written atomic.Uint64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(uint64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(uint64(n))
	return n, err
}

func compressDialer(src net.IP) *websocket.Dialer {
	d := dialer(src, 0)
	dial := d.NetDialContext
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countConn{Conn: c}, nil
	}
	d.EnableCompression = true
	return d
}

// DialCompressed opens socket number i offering permessage-deflate, and
// fails unless the server accepted it.
func (t *Target) DialCompressed(ctx context.Context, i int) (*websocket.Conn, error) {
	d := t.zDialers[i%sourceIPs]
	u := "ws://" + t.Addrs[(i/sourceIPs)%len(t.Addrs)] + "/ws"
	c, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(strings.TrimSpace(ext), "permessage-deflate") {
		c.Close()
		return nil, fmt.Errorf("load: the server did not negotiate permessage-deflate (Sec-WebSocket-Extensions: %q)", ext)
	}
	return c, nil
}

// DialManyCompressed opens n sockets with DialCompressed.
func (t *Target) DialManyCompressed(n int) ([]*websocket.Conn, error) {
	return dialMany(n, t.DialCompressed)
}

// WireBytes returns the bytes the sockets of conns dialled by
// DialCompressed have read and written so far (others count as 0).
func WireBytes(conns []*websocket.Conn) (read, written uint64) {
	for _, c := range conns {
		if c == nil {
			continue
		}
		if cc, ok := c.NetConn().(*countConn); ok {
			read += cc.read.Load()
			written += cc.written.Load()
		}
	}
	return read, written
}

// BroadcastsChat is Broadcasts with chat traffic (wire.NewChat) as the
// payload.
func (t *Target) BroadcastsChat(r *Receivers, n, size int, timeout time.Duration) (*BroadcastResult, error) {
	return t.broadcasts(r, n, size, timeout, true)
}
