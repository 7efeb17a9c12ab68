package rawws

// This file adds to the client what a protocol case suite needs beyond
// Dial, ReadAll and Parse: handshakes that offer extensions or break the
// rules, frames read one at a time, and frames encoded without being
// sent. Nothing here changes what the rest of the package does.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MaxFrameLen is the longest frame payload ReadFrame accepts from a
// server; a longer one is an error rather than an allocation.
const MaxFrameLen = 64 << 20

// AcceptKey returns the Sec-WebSocket-Accept a server must answer key
// with (RFC 6455, section 4.2.2).
func AcceptKey(key string) string { return acceptKey(key) }

// NewKey returns a fresh Sec-WebSocket-Key: 16 random bytes in base64.
func NewKey() string {
	var nonce [16]byte
	rand.Read(nonce[:])
	return base64.StdEncoding.EncodeToString(nonce[:])
}

// EncodeFrame returns the bytes of a client frame, masked with a fresh
// random key, as WriteFrame would send them. Like WriteFrame it checks
// nothing, so a test can embed or concatenate frames of any kind.
func EncodeFrame(fin bool, rsv, opcode byte, payload []byte) []byte {
	return encodeFrame(fin, rsv&7, opcode&0xF, payload)
}

// DialRequest connects to rawURL (ws://, loopback only, as for Dial) and
// writes the upgrade request that build returns, given the URL's request
// URI and host and key, a fresh Sec-WebSocket-Key; build may use them or
// not. It reads the response and returns it, whatever its status, with
// the Conn over the connection, which the caller must close; after a 101
// the Conn reads the server's frames. Nothing in the response is checked.
// ctx bounds the dial and the handshake.
func DialRequest(ctx context.Context, rawURL string, build func(requestURI, host, key string) string) (*Conn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if u.Scheme != "ws" {
		return nil, nil, fmt.Errorf("rawws: scheme %q, want ws", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, fmt.Errorf("rawws: host %q is not a loopback address", host)
	}
	if port == "" {
		port = "80"
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, nil, err
	}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		nc.Close()
		return nil, nil, fmt.Errorf("rawws: %v is not a loopback address", nc.RemoteAddr())
	}
	resp, br, err := roundTrip(ctx, nc, build(u.RequestURI(), u.Host, NewKey()))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return &Conn{nc: nc, br: br}, resp, nil
}

// roundTrip writes req on nc and reads the response; the returned reader
// holds whatever the server sent after it.
func roundTrip(ctx context.Context, nc net.Conn, req string) (*http.Response, *bufio.Reader, error) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	// A server may answer a request it refuses (one too large, say)
	// before reading all of it, so the write runs beside the read.
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(nc, req)
		werr <- err
	}()
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		if werr := <-werr; werr != nil {
			return nil, nil, fmt.Errorf("rawws: writing the request: %w (reading the response: %v)", werr, err)
		}
		return nil, nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := <-werr; err != nil {
			return nil, nil, err
		}
	} else {
		// The body of a refusal, if it has one the server ends.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	}
	resp.Body.Close()
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	if ctx.Err() != nil { // the deadline may have been set just after the clear
		return nil, nil, ctx.Err()
	}
	return resp, br, nil
}

// UpgradeRequest returns a valid upgrade request (as Dial writes) for
// requestURI, host and key, with the header fields of extra added.
func UpgradeRequest(requestURI, host, key string, extra http.Header) string {
	var sb strings.Builder
	sb.WriteString("GET " + requestURI + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range extra {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range extra[k] {
			sb.WriteString(k + ": " + v + "\r\n")
		}
	}
	sb.WriteString("\r\n")
	return sb.String()
}

// DialHeader is Dial with the request header fields of extra added, such
// as an extension offer: it checks the response as Dial does (101,
// Upgrade, Connection, Sec-WebSocket-Accept, no subprotocol), except that
// the server may accept extensions. It returns the response, whose
// Sec-WebSocket-Extensions the caller is to judge.
func DialHeader(ctx context.Context, rawURL string, extra http.Header) (*Conn, *http.Response, error) {
	var key string
	c, resp, err := DialRequest(ctx, rawURL, func(uri, host, k string) string {
		key = k
		return UpgradeRequest(uri, host, k, extra)
	})
	if err != nil {
		return nil, nil, err
	}
	if err := CheckUpgrade(resp, key); err != nil {
		c.Close()
		return nil, resp, err
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		c.Close()
		return nil, resp, fmt.Errorf("rawws: unrequested subprotocol %q", p)
	}
	return c, resp, nil
}

// CheckUpgrade returns an error unless resp is a 101 that completes the
// handshake of key: Upgrade websocket, Connection with the upgrade token
// and the right Sec-WebSocket-Accept (RFC 6455, section 4.2.2).
func CheckUpgrade(resp *http.Response, key string) error {
	h := resp.Header
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fmt.Errorf("rawws: handshake got %q, want 101", resp.Status)
	case !strings.EqualFold(h.Get("Upgrade"), "websocket"):
		return fmt.Errorf("rawws: Upgrade %q, want websocket", h.Get("Upgrade"))
	case !hasToken(h.Values("Connection"), "upgrade"):
		return fmt.Errorf("rawws: Connection %q lacks upgrade", h.Values("Connection"))
	case len(h.Values("Sec-WebSocket-Accept")) != 1 || h.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return fmt.Errorf("rawws: Sec-WebSocket-Accept %q, want %q", h.Values("Sec-WebSocket-Accept"), acceptKey(key))
	}
	return nil
}

// ReadFrame reads the next frame of the server's byte stream, waiting at
// most timeout for all of it, and returns it with its bytes (the frame's
// Payload aliases them; its Offset is 0). It checks the frame as Parse
// checks each frame (an *Error for a masked frame, a reserved opcode, a
// fragmented or long control frame, a length not in its shortest form or
// with the top bit set), except that the RSV bits set in rsv (0b100 for
// RFC 7692's RSV1) are allowed; message-level rules are the caller's. A
// payload longer than MaxFrameLen is an error. The stream ending before
// a frame starts is io.EOF, inside one io.ErrUnexpectedEOF. Unlike
// ReadAll it answers nothing.
func (c *Conn) ReadFrame(timeout time.Duration, rsv byte) (Frame, []byte, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return Frame{}, nil, err
	}
	raw := make([]byte, 2, 14)
	if _, err := io.ReadFull(c.br, raw); err != nil {
		return Frame{}, raw[:0], err
	}
	check := func(b []byte) (Frame, error) {
		cp := slices.Clone(b)
		cp[0] &^= (rsv & 7) << 4
		f, err := parseFrame(cp)
		f.RSV = b[0] >> 4 & 7
		return f, err
	}
	if _, err := check(raw); err != nil {
		return Frame{}, raw, &Error{Msg: err.Error()}
	}
	hdr := 2
	switch raw[1] & 0x7F {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	raw = raw[:hdr]
	if _, err := io.ReadFull(c.br, raw[2:]); err != nil {
		return Frame{}, raw[:2], noEOF(err)
	}
	f, err := check(raw)
	if err != nil {
		return Frame{}, raw, &Error{Msg: err.Error()}
	}
	n := uint64(raw[1] & 0x7F)
	switch hdr {
	case 4:
		n = uint64(binary.BigEndian.Uint16(raw[2:]))
	case 10:
		n = binary.BigEndian.Uint64(raw[2:])
	}
	if n > MaxFrameLen {
		return Frame{}, raw, &Error{Msg: fmt.Sprintf("frame of %d bytes, more than rawws reads", n)}
	}
	raw = slices.Grow(raw, int(n))[:hdr+int(n)]
	if _, err := io.ReadFull(c.br, raw[hdr:]); err != nil {
		return Frame{}, raw[:hdr], noEOF(err)
	}
	f.Payload, f.Size, f.Truncated = raw[hdr:], len(raw), false
	return f, raw, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// SplitFrames splits a server's byte stream into frames, checking each
// one as ReadFrame does (RSV bits in rsv allowed), with their Offsets; a
// stream that ends inside a frame gives a last frame with Truncated set.
// It checks no message-level rule: Parse does, for a stream with no
// extension.
func SplitFrames(stream []byte, rsv byte) ([]Frame, error) {
	cp := slices.Clone(stream)
	var frames []Frame
	for off := 0; off < len(stream); {
		cp[off] &^= (rsv & 7) << 4
		f, err := parseFrame(cp[off:])
		f.Offset, f.RSV = off, stream[off]>>4&7
		if err != nil {
			return frames, &Error{Offset: off, Msg: err.Error()}
		}
		if f.Payload != nil { // alias the caller's stream, not the copy
			start := off + cap(cp[off:]) - cap(f.Payload)
			f.Payload = stream[start : start+len(f.Payload)]
		}
		frames = append(frames, f)
		off += f.Size
	}
	return frames, nil
}
