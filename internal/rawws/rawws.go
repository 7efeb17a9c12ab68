// Package rawws is a strict RFC 6455 client for tests: it speaks to a
// WebSocket server over raw TCP, so that a test can send any frame,
// including malformed ones, and see every byte the server sends, including
// any it should not have sent after its close frame.
//
// Dial does the HTTP/1.1 upgrade by hand and checks the 101 response. The
// Write methods send masked client frames, and WriteFrame sends any
// header bits a test asks for. ReadAll collects the server's byte stream
// until the server closes the connection; Parse splits it into frames and
// rejects what a server must never send; CheckClosed fails if anything
// follows the first close frame or a close frame's payload is invalid.
//
// The client negotiates no extension and no subprotocol, and dials only
// loopback addresses.
package rawws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
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
	"sync"
	"time"
	"unicode/utf8"
)

// The opcodes RFC 6455 defines. The others (3–7, 0xB–0xF) are reserved.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Frame is one frame of a server's byte stream.
type Frame struct {
	Fin     bool
	RSV     byte // the RSV1–RSV3 bits, as 0b100, 0b010, 0b001
	Opcode  byte
	Payload []byte // aliases the stream; what arrived of it if Truncated
	// Offset is where the frame's header starts in the stream, and Size
	// how many bytes of the stream the frame takes.
	Offset, Size int
	// Truncated is set on a final frame that the stream ends inside, as
	// when the connection is reset. Its header fields are valid only as
	// far as its bytes arrived (Fin, RSV and Opcode always are).
	Truncated bool
}

// IsControl reports whether f is a control frame (close, ping, pong).
func (f Frame) IsControl() bool { return f.Opcode&0x8 != 0 }

// CloseStatus returns the code and reason of a close frame's payload:
// 1005 (no status) and "" for an empty payload, or an error if the
// payload is one byte long, its code may not be sent on the wire, or its
// reason is not UTF-8.
func (f Frame) CloseStatus() (code int, reason string, err error) {
	switch p := f.Payload; {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", errors.New("close payload of 1 byte")
	default:
		code, reason = int(binary.BigEndian.Uint16(p)), string(p[2:])
	}
	if !ValidCloseCode(code) {
		return code, reason, fmt.Errorf("close code %d may not be sent", code)
	}
	if !utf8.ValidString(reason) {
		return code, reason, fmt.Errorf("close reason %q is not UTF-8", reason)
	}
	return code, reason, nil
}

// ValidCloseCode reports whether code may appear in a close frame:
// 1000–1003 and 1007–1014 (RFC 6455 and the IANA registry), or 3000–4999.
func ValidCloseCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 ||
		code >= 3000 && code <= 4999
}

// Error is a fault in a server's byte stream, found by Parse or
// CheckClosed.
type Error struct {
	Offset int // where the offending frame starts in the stream
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("rawws: at byte %d: %s", e.Offset, e.Msg) }

// Parse splits a server's byte stream into frames. It returns the frames
// up to the first malformed one, and an *Error for it: a masked frame, set
// RSV bits (no extension is negotiated), a reserved opcode, a control
// frame that is fragmented or longer than 125 bytes, a length not in its
// shortest form or with the top bit of the 64-bit form set, a continuation
// frame with no message to continue, a new message inside a fragmented
// one, or a text message that is not UTF-8. A stream that ends inside a
// frame is not an error: the last frame has Truncated set. Close payloads
// are CheckClosed's to judge.
func Parse(stream []byte) ([]Frame, error) {
	var frames []Frame
	inMessage, text := false, false
	var textBuf []byte // a fragmented text message, to check its UTF-8
	for off := 0; off < len(stream); {
		f, err := parseFrame(stream[off:])
		f.Offset = off
		if err != nil {
			return frames, &Error{Offset: off, Msg: err.Error()}
		}
		switch f.Opcode {
		case OpText, OpBinary:
			if inMessage {
				return frames, &Error{Offset: off, Msg: "new data frame inside a fragmented message"}
			}
			inMessage, text, textBuf = !f.Fin, f.Opcode == OpText, textBuf[:0]
		case OpContinuation:
			if !inMessage {
				return frames, &Error{Offset: off, Msg: "continuation frame with no message to continue"}
			}
			inMessage = !f.Fin
		}
		if text && !f.IsControl() && !f.Truncated {
			if !inMessage && len(textBuf) == 0 {
				if !utf8.Valid(f.Payload) {
					return frames, &Error{Offset: off, Msg: "text message is not UTF-8"}
				}
			} else if textBuf = append(textBuf, f.Payload...); !inMessage && !utf8.Valid(textBuf) {
				return frames, &Error{Offset: off, Msg: "fragmented text message is not UTF-8"}
			}
		}
		frames = append(frames, f)
		off += f.Size
	}
	return frames, nil
}

// parseFrame parses the frame b starts with (len(b) > 0), all but its
// Offset. A frame b ends inside comes back Truncated, with Size len(b).
func parseFrame(b []byte) (Frame, error) {
	f := Frame{Fin: b[0]&0x80 != 0, RSV: b[0] >> 4 & 0x7, Opcode: b[0] & 0xF}
	switch {
	case f.RSV != 0:
		return f, fmt.Errorf("RSV bits %03b set, but no extension was negotiated", f.RSV)
	case f.Opcode > OpBinary && f.Opcode < OpClose || f.Opcode > OpPong:
		return f, fmt.Errorf("reserved opcode %#x", f.Opcode)
	case f.IsControl() && !f.Fin:
		return f, fmt.Errorf("fragmented control frame, opcode %#x", f.Opcode)
	}
	truncated := func() (Frame, error) {
		f.Truncated, f.Size = true, len(b)
		return f, nil
	}
	if len(b) < 2 {
		return truncated()
	}
	if b[1]&0x80 != 0 {
		return f, errors.New("masked frame from the server")
	}
	n, hdr := uint64(b[1]&0x7F), 2
	if f.IsControl() && n > 125 {
		return f, fmt.Errorf("control frame, opcode %#x, with a length code of %d", f.Opcode, n)
	}
	switch n {
	case 126:
		if hdr = 4; len(b) < hdr {
			return truncated()
		}
		if n = uint64(binary.BigEndian.Uint16(b[2:])); n < 126 {
			return f, fmt.Errorf("length %d in the 16-bit form", n)
		}
	case 127:
		if hdr = 10; len(b) < hdr {
			return truncated()
		}
		switch n = binary.BigEndian.Uint64(b[2:]); {
		case n>>63 != 0:
			return f, fmt.Errorf("64-bit length %#x has its top bit set", n)
		case n <= 0xFFFF:
			return f, fmt.Errorf("length %d in the 64-bit form", n)
		}
	}
	if uint64(len(b)-hdr) < n {
		f.Payload = b[hdr:]
		return truncated()
	}
	f.Payload, f.Size = b[hdr:hdr+int(n)], hdr+int(n)
	return f, nil
}

// FirstClose returns the index of the first close frame, or -1.
func FirstClose(frames []Frame) int {
	return slices.IndexFunc(frames, func(f Frame) bool { return f.Opcode == OpClose })
}

// CheckClosed returns an *Error if any frame, of any kind, even a
// truncated one, follows the first close frame, or if that close frame's
// payload is invalid (see Frame.CloseStatus). A stream with no close
// frame passes: whether one was due is the caller's to say.
func CheckClosed(frames []Frame) error {
	i := FirstClose(frames)
	if i < 0 {
		return nil
	}
	if c := frames[i]; !c.Truncated {
		if _, _, err := c.CloseStatus(); err != nil {
			return &Error{Offset: c.Offset, Msg: err.Error()}
		}
	}
	if i+1 < len(frames) {
		f := frames[i+1]
		what := fmt.Sprintf("a frame with opcode %#x and %d payload bytes", f.Opcode, len(f.Payload))
		if f.Truncated {
			what = fmt.Sprintf("a truncated frame with opcode %#x (%d bytes arrived)", f.Opcode, f.Size)
		}
		return &Error{Offset: f.Offset, Msg: fmt.Sprintf("%s follows the close frame at byte %d (%d frames and %d bytes follow it)",
			what, frames[i].Offset, len(frames)-i-1, frames[len(frames)-1].Offset+frames[len(frames)-1].Size-f.Offset)}
	}
	return nil
}

// Dump returns a hex dump of stream[from:to] (clamped to the stream),
// in lines of 16 bytes labelled with their offsets in the stream.
func Dump(stream []byte, from, to int) string {
	from = max(0, min(from, len(stream)))
	to = max(from, min(to, len(stream)))
	if from == to {
		return ""
	}
	var sb strings.Builder
	for line := from &^ 15; line < to; line += 16 {
		fmt.Fprintf(&sb, "%08x ", line)
		var ascii [16]byte
		for j := line; j < line+16; j++ {
			if j == line+8 {
				sb.WriteByte(' ')
			}
			ascii[j-line] = ' '
			if j < from || j >= to {
				sb.WriteString("   ")
				continue
			}
			fmt.Fprintf(&sb, " %02x", stream[j])
			ascii[j-line] = '.'
			if c := stream[j]; c >= 0x20 && c < 0x7F {
				ascii[j-line] = c
			}
		}
		fmt.Fprintf(&sb, "  |%s|\n", ascii[:])
	}
	return sb.String()
}

// Conn is a client connection. Its Write methods may be called from any
// goroutine, also while ReadAll runs.
type Conn struct {
	nc net.Conn
	br *bufio.Reader // holds what the server sent after its 101 response

	wmu       sync.Mutex
	closeSent bool // a close frame was written
}

// Dial connects to rawURL, ws://host:port/path with a loopback host, and
// does the opening handshake: it writes the upgrade request, and fails
// unless the response is 101 with the right Upgrade, Connection and
// Sec-WebSocket-Accept and no extension or subprotocol. ctx bounds the
// dial and the handshake.
func Dial(ctx context.Context, rawURL string) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("rawws: scheme %q, want ws", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("rawws: host %q is not a loopback address", host)
	}
	if port == "" {
		port = "80"
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	c, err := handshake(ctx, nc, u)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func handshake(ctx context.Context, nc net.Conn, u *url.URL) (*Conn, error) {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		return nil, fmt.Errorf("rawws: %v is not a loopback address", nc.RemoteAddr())
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}

	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close() // a 101 has none
	h := resp.Header
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return nil, fmt.Errorf("rawws: handshake got %q, want 101", resp.Status)
	case !strings.EqualFold(h.Get("Upgrade"), "websocket"):
		return nil, fmt.Errorf("rawws: Upgrade %q, want websocket", h.Get("Upgrade"))
	case !hasToken(h.Values("Connection"), "upgrade"):
		return nil, fmt.Errorf("rawws: Connection %q lacks upgrade", h.Values("Connection"))
	case h.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return nil, fmt.Errorf("rawws: Sec-WebSocket-Accept %q, want %q", h.Get("Sec-WebSocket-Accept"), acceptKey(key))
	case h.Get("Sec-WebSocket-Extensions") != "":
		return nil, fmt.Errorf("rawws: unrequested extensions %q", h.Get("Sec-WebSocket-Extensions"))
	case h.Get("Sec-WebSocket-Protocol") != "":
		return nil, fmt.Errorf("rawws: unrequested subprotocol %q", h.Get("Sec-WebSocket-Protocol"))
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if ctx.Err() != nil { // the deadline may have been set just after the clear
		return nil, ctx.Err()
	}
	return &Conn{nc: nc, br: br}, nil
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey is the Sec-WebSocket-Accept for key (RFC 6455, section 4.2.2).
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// WriteFrame writes one frame, masked with a fresh random key, in a single
// Write: fin, the RSV bits rsv (0–7), any opcode (0–15, the reserved ones
// too) and payload, which it does not modify. It checks nothing else, so a
// test can break the protocol on purpose.
func (c *Conn) WriteFrame(fin bool, rsv, opcode byte, payload []byte) error {
	if rsv > 7 || opcode > 15 {
		return fmt.Errorf("rawws: rsv %d or opcode %d out of range", rsv, opcode)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeFrame(fin, rsv, opcode, payload)
}

// WriteRaw writes b as it is: a test's own bytes, such as a frame cut
// short.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// WriteFramePaused writes a frame as WriteFrame does, but in two writes:
// its first at bytes, then, after pause, the rest. It lets a test hold a
// server in the middle of a frame header or payload.
func (c *Conn) WriteFramePaused(at int, pause time.Duration, fin bool, rsv, opcode byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := encodeFrame(fin, rsv, opcode, payload)
	if at <= 0 || at >= len(b) {
		return fmt.Errorf("rawws: split at %d of a %d-byte frame", at, len(b))
	}
	if _, err := c.nc.Write(b[:at]); err != nil {
		return err
	}
	time.Sleep(pause)
	_, err := c.nc.Write(b[at:])
	return err
}

// writeFrame is WriteFrame with c.wmu held.
func (c *Conn) writeFrame(fin bool, rsv, opcode byte, payload []byte) error {
	b := encodeFrame(fin, rsv, opcode, payload)
	if opcode == OpClose {
		c.closeSent = true
	}
	_, err := c.nc.Write(b)
	return err
}

// encodeFrame returns a client frame, masked with a fresh random key.
func encodeFrame(fin bool, rsv, opcode byte, payload []byte) []byte {
	b0 := rsv<<4 | opcode
	if fin {
		b0 |= 0x80
	}
	b := make([]byte, 0, 14+len(payload))
	b = append(b, b0)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	keys := bytes.Repeat(key[:], (len(payload)+3)/4) // XORBytes is fast even under -race
	b = b[:len(b)+len(payload)]
	subtle.XORBytes(b[len(b)-len(payload):], payload, keys)
	return b
}

// WriteText writes s as one final text frame.
func (c *Conn) WriteText(s string) error { return c.WriteFrame(true, 0, OpText, []byte(s)) }

// WriteBinary writes b as one final binary frame.
func (c *Conn) WriteBinary(b []byte) error { return c.WriteFrame(true, 0, OpBinary, b) }

// WriteClose writes a close frame with code and reason, or with an empty
// payload if code is 0. It checks neither.
func (c *Conn) WriteClose(code uint16, reason string) error {
	return c.WriteFrame(true, 0, OpClose, closePayload(code, reason))
}

func closePayload(code uint16, reason string) []byte {
	if code == 0 {
		return nil
	}
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// ReadAll reads the server's byte stream, from just after its 101
// response, until the server closes the connection (then err is nil), the
// read fails (a reset, say), or timeout passes; it returns every byte
// read either way. As an RFC 6455 client must, it answers the server's
// pings with pongs, and the server's first close frame with a close frame
// carrying the same code, unless a close frame was written already; it
// stops answering at the first malformed frame. ReadAll does not close
// the connection.
func (c *Conn) ReadAll(timeout time.Duration) ([]byte, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var stream []byte
	done := 0 // bytes of stream answered
	answering := true
	for {
		stream = slices.Grow(stream, 32<<10)
		n, err := c.br.Read(stream[len(stream):cap(stream)])
		stream = stream[:len(stream)+n]
		for answering && done < len(stream) {
			f, perr := parseFrame(stream[done:])
			if perr != nil || f.Truncated {
				answering = perr == nil
				break
			}
			done += f.Size
			answering = c.answer(f)
		}
		if err == io.EOF {
			return stream, nil
		}
		if err != nil {
			return stream, err
		}
	}
}

// answer answers a ping or close frame, and reports whether to go on.
func (c *Conn) answer(f Frame) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.closeSent:
		return false
	case f.Opcode == OpPing:
		c.writeFrame(true, 0, OpPong, f.Payload) // a failure shows in the read
	case f.Opcode == OpClose:
		code, _, err := f.CloseStatus()
		switch {
		case err != nil:
			code = 1002
		case code == 1005:
			code = 0
		}
		c.writeFrame(true, 0, OpClose, closePayload(uint16(code), ""))
		return false
	}
	return true
}

// Close closes the TCP connection.
func (c *Conn) Close() error { return c.nc.Close() }
