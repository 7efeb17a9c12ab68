package wscases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lafgo/laf/internal/rawws"
)

// Timeouts. A case waits closeWait for a close frame it expects (prompt,
// where the case says the close must be prompt), echoWait for a message
// or pong, and tcpWait after the closing handshake for the server to
// close the TCP connection.
const (
	closeWait  = 5 * time.Second
	prompt     = 2 * time.Second
	echoWait   = 15 * time.Second // generous: a loaded machine under -race is slow, and a case that passes never waits it out
	tcpWait    = 3 * time.Second
	quietWait  = 200 * time.Millisecond // only where a case must see that nothing comes
	maxMessage = 64 << 20               // the largest message the client assembles
)

// Short names for the opcodes.
const (
	opCont   = rawws.OpContinuation
	opText   = rawws.OpText
	opBinary = rawws.OpBinary
	opClose  = rawws.OpClose
	opPing   = rawws.OpPing
	opPong   = rawws.OpPong
)

// session is a client connection to the server under test, reading its
// frames one at a time and keeping every byte of its stream.
type session struct {
	c         *rawws.Conn
	deflate   bool   // permessage-deflate is in use
	ext       params // the agreed permessage-deflate parameters
	asm       assembler
	stream    []byte // every byte the server sent, so far as read
	closeSent bool   // the client wrote a close frame
	stop      func() bool
}

// dial opens a session with no extension.
func dial(ctx context.Context, tg Target) (*session, error) {
	c, err := rawws.Dial(ctx, tg.URL)
	if err != nil {
		return nil, fmt.Errorf("opening handshake: %w", err)
	}
	return newSession(ctx, c, nil), nil
}

// dialDeflate opens a session offering offer as its
// Sec-WebSocket-Extensions; the server must accept permessage-deflate
// with a response valid for one of the offers.
func dialDeflate(ctx context.Context, tg Target, offer string) (*session, error) {
	if !tg.Compression {
		return nil, skipf("the target does not negotiate permessage-deflate")
	}
	c, resp, err := rawws.DialHeader(ctx, tg.URL, http.Header{"Sec-WebSocket-Extensions": {offer}})
	if err != nil {
		return nil, fmt.Errorf("opening handshake offering %q: %w", offer, err)
	}
	agreed, err := negotiated(offer, resp.Header.Values("Sec-WebSocket-Extensions"))
	if err == nil && agreed == nil {
		err = fmt.Errorf("the server declined the offer %q (no permessage-deflate in its response)", offer)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return newSession(ctx, c, agreed), nil
}

func newSession(ctx context.Context, c *rawws.Conn, agreed params) *session {
	s := &session{c: c, deflate: agreed != nil, ext: agreed}
	s.asm.deflate = s.deflate
	s.asm.takeover = s.deflate && !agreed.has("server_no_context_takeover")
	s.stop = context.AfterFunc(ctx, func() { c.Close() })
	return s
}

// Close closes the TCP connection.
func (s *session) Close() {
	s.stop()
	s.c.Close()
}

// rsv is the RSV bits a server frame may have set.
func (s *session) rsv() byte {
	if s.deflate {
		return 0b100
	}
	return 0
}

// frame returns a masked client frame.
func frame(fin bool, rsv, op byte, payload []byte) []byte {
	return rawws.EncodeFrame(fin, rsv, op, payload)
}

func textFrame(s string) []byte   { return frame(true, 0, opText, []byte(s)) }
func binaryFrame(b []byte) []byte { return frame(true, 0, opBinary, b) }
func pingFrame(p string) []byte   { return frame(true, 0, opPing, []byte(p)) }
func closeFrame(code int) []byte  { return frame(true, 0, opClose, closePayload(code, "")) }
func closePayload(code int, reason string) []byte {
	if code < 0 {
		return nil
	}
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// send writes frames in a single write, so that the server reads them
// together.
func (s *session) send(frames ...[]byte) error {
	b := bytes.Join(frames, nil)
	for off := 0; off < len(b); {
		if b[off]&0xF == opClose {
			s.closeSent = true
		}
		n := frameLen(b[off:])
		if n <= 0 {
			break
		}
		off += n
	}
	if err := s.c.WriteRaw(b); err != nil {
		return fmt.Errorf("%w: %v", errWrite, err)
	}
	return nil
}

// frameLen returns the length of the client frame b starts with, or 0.
func frameLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	n, hdr := int(b[1]&0x7F), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0
		}
		n, hdr = int(b[2])<<8|int(b[3]), 4
	case 127:
		if len(b) < 10 {
			return 0
		}
		var v uint64
		for _, c := range b[2:10] {
			v = v<<8 | uint64(c)
		}
		if v > 1<<40 {
			return 0
		}
		n, hdr = int(v), 10
	}
	if b[1]&0x80 != 0 {
		hdr += 4
	}
	return hdr + n
}

// event is a message, or a control frame, from the server.
type event struct {
	op         byte   // opText or opBinary for a message, else the control opcode
	data       []byte // the message (inflated) or the control frame's payload
	compressed bool   // the message had RSV1 set
	frames     int    // how many frames the message came in
}

func (e event) String() string {
	switch e.op {
	case opText, opBinary:
		kind := map[byte]string{opText: "text", opBinary: "binary"}[e.op]
		how := ""
		if e.frames > 1 {
			how = fmt.Sprintf(" in %d frames", e.frames)
		}
		if e.compressed {
			how += ", compressed"
		}
		return fmt.Sprintf("a %s message of %d bytes%s: %s", kind, len(e.data), how, preview(e.data))
	case opClose:
		code, reason, err := rawws.Frame{Opcode: opClose, Payload: e.data}.CloseStatus()
		if err != nil {
			return fmt.Sprintf("a close frame with an invalid payload %s (%v)", preview(e.data), err)
		}
		if code == 1005 {
			return "a close frame with no status code"
		}
		return fmt.Sprintf("a close frame %d %q", code, reason)
	case opPing:
		return "a ping " + preview(e.data)
	case opPong:
		return "a pong " + preview(e.data)
	}
	return fmt.Sprintf("a frame with opcode %#x", e.op)
}

// preview quotes the start of b.
func preview(b []byte) string {
	if len(b) > 48 {
		return fmt.Sprintf("%q…", b[:48])
	}
	return fmt.Sprintf("%q", b)
}

// closeCode is the status code of a close event (1005 for none), or -1
// if its payload is invalid.
func (e event) closeCode() int {
	code, _, err := rawws.Frame{Opcode: opClose, Payload: e.data}.CloseStatus()
	if err != nil {
		return -1
	}
	return code
}

// next returns the server's next message or control frame, waiting at
// most timeout for it. It answers the server's pings with pongs, as a
// client must, and does not return them. Callers stop at the server's
// close frame.
func (s *session) next(timeout time.Duration) (event, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, raw, err := s.c.ReadFrame(max(time.Until(deadline), time.Millisecond), s.rsv())
		s.stream = append(s.stream, raw...)
		if err != nil {
			return event{}, s.readErr(err, timeout)
		}
		ev, done, err := s.asm.add(f)
		if err != nil {
			return event{}, fmt.Errorf("the server broke the protocol at byte %d of its stream: %w", len(s.stream)-len(raw), err)
		}
		if !done {
			continue
		}
		if ev.op == opPing { // answered until the server's close frame (RFC 6455 §5.5.2)
			s.c.WriteFrame(true, 0, opPong, ev.data) // a failure shows in the next read
			continue
		}
		return ev, nil
	}
}

// errTimeout is what next returns when nothing came in time.
var errTimeout = errors.New("timeout")

// readErr describes an error of ReadFrame.
func (s *session) readErr(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: nothing (more) from the server within %v", errTimeout, timeout)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("the server closed the TCP connection (%d bytes received): %w", len(s.stream), err)
	case isReset(err):
		return fmt.Errorf("the server reset the TCP connection (%d bytes received): %w", len(s.stream), err)
	}
	var pe *rawws.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("the server sent an invalid frame at byte %d of its stream: %s", len(s.stream)-2, pe.Msg)
	}
	return err
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// expectMessage reads the next event, which must be a message of type op
// holding want.
func (s *session) expectMessage(op byte, want []byte) error {
	ev, err := s.next(echoWait)
	if err != nil {
		return fmt.Errorf("waiting for the echo of %d bytes: %w", len(want), err)
	}
	return checkMessage(ev, op, want)
}

func checkMessage(ev event, op byte, want []byte) error {
	kind := map[byte]string{opText: "text", opBinary: "binary"}[op]
	if ev.op != op {
		return fmt.Errorf("got %v, want the echo: a %s message of %d bytes %s", ev, kind, len(want), preview(want))
	}
	if !bytes.Equal(ev.data, want) {
		i := 0
		for i < len(ev.data) && i < len(want) && ev.data[i] == want[i] {
			i++
		}
		return fmt.Errorf("the echo differs from the %d bytes sent at byte %d: got %v", len(want), i, ev)
	}
	return nil
}

// expectPong reads the next event, which must be a pong with payload.
func (s *session) expectPong(payload []byte) error {
	ev, err := s.next(echoWait)
	if err != nil {
		return fmt.Errorf("waiting for a pong %s: %w", preview(payload), err)
	}
	if ev.op != opPong || !bytes.Equal(ev.data, payload) {
		return fmt.Errorf("got %v, want a pong %s", ev, preview(payload))
	}
	return nil
}

// expectClose expects the server's close frame, within wait, with one of
// codes (1005 for a close frame with no payload), and nothing before it
// but pings: no message, no pong. It then completes the closing
// handshake and checks the end of the stream (see finish).
func (s *session) expectClose(wait time.Duration, codes ...int) error {
	ev, err := s.awaitClose(wait, codes)
	if err != nil {
		return err
	}
	if c := ev.closeCode(); !slices.Contains(codes, c) {
		return fmt.Errorf("the server closed with %v; want %s", ev, codeList(codes))
	}
	return s.finish(ev)
}

// awaitClose reads up to the server's close frame; anything else before
// it fails.
func (s *session) awaitClose(wait time.Duration, codes []int) (event, error) {
	start := time.Now()
	ev, err := s.next(wait)
	if err != nil {
		return ev, fmt.Errorf("want %s: %w", codeList(codes), err)
	}
	if ev.op != opClose {
		return ev, fmt.Errorf("got %v after %v; want %s and nothing before it", ev, time.Since(start).Round(time.Millisecond), codeList(codes))
	}
	return ev, nil
}

func codeList(codes []int) string {
	var s []string
	for _, c := range codes {
		if c == 1005 {
			s = append(s, "a close frame with no status code")
		} else {
			s = append(s, fmt.Sprint(c))
		}
	}
	if len(s) == 1 && codes[0] != 1005 {
		return "a close frame with code " + s[0]
	}
	return "a close frame with one of: " + strings.Join(s, ", ")
}

// finish completes the closing handshake after the server's close frame
// ev: unless the client sent a close frame already, it answers with one
// carrying the same code (RFC 6455, section 5.5.1); then it reads until
// the server closes the TCP connection, which it must within tcpWait
// (section 7.1.1; a reset counts as closing it), and checks that nothing
// at all followed the server's close frame, and, with rawws.Parse and
// rawws.CheckClosed, the whole stream.
func (s *session) finish(ev event) error {
	clientFirst := s.closeSent
	if !s.closeSent {
		switch code := ev.closeCode(); code {
		case 1005:
			s.c.WriteClose(0, "")
		case -1:
			s.c.WriteClose(1002, "")
		default:
			s.c.WriteClose(uint16(code), "")
		}
		s.closeSent = true
	}
	return s.drain(clientFirst)
}

// drain reads the rest of the stream after the server's close frame and
// checks it, as finish says; clientFirst is set if the client's close
// frame (valid or not) went before the server's.
func (s *session) drain(clientFirst bool) error {
	closeAt := len(s.stream)
	tail, err := s.c.ReadAll(tcpWait)
	s.stream = append(s.stream, tail...)
	if len(tail) > 0 {
		return fmt.Errorf("%d bytes followed the server's close frame (RFC 6455 §5.5.1; §7.1.7 when failing)%s:\n%s",
			len(tail), describe(tail, s.rsv()), rawws.Dump(s.stream, closeAt, closeAt+64))
	}
	if err := s.checkStream(); err != nil {
		return err
	}
	switch {
	case err == nil, isReset(err):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if clientFirst {
			return fmt.Errorf("the server did not close the TCP connection within %v of its close frame, though the client's close frame came first "+
				"(RFC 6455 §5.5.1, §7.1.1; a server failing the connection must not wait for another close frame, §7.1.7)", tcpWait)
		}
		return fmt.Errorf("the server did not close the TCP connection within %v of the client's answering close frame "+
			"(RFC 6455 §7.1.1; a server failing the connection must not wait for it at all, §7.1.7)", tcpWait)
	}
	return fmt.Errorf("reading after the close frame: %w", err)
}

// checkStream checks the whole stream read so far with rawws: its frames
// (and, with no extension, its messages) and that nothing follows the
// first close frame.
func (s *session) checkStream() error {
	frames, err := rawws.SplitFrames(s.stream, s.rsv())
	if err == nil && !s.deflate {
		frames, err = rawws.Parse(s.stream)
	}
	if err == nil {
		err = rawws.CheckClosed(frames)
	}
	if err != nil {
		return fmt.Errorf("the server's stream is invalid: %w", err)
	}
	return nil
}

// expectEnd expects the server to send nothing more and close the TCP
// connection within wait, with or without a close frame (for cases where
// the RFC lets it drop the connection); a close frame must carry one of
// codes.
func (s *session) expectEnd(wait time.Duration, codes ...int) error {
	ev, err := s.next(wait)
	switch {
	case err == nil && ev.op == opClose:
		if c := ev.closeCode(); !slices.Contains(codes, c) {
			return fmt.Errorf("the server closed with %v; want %s, or no close frame", ev, codeList(codes))
		}
		return s.finish(ev)
	case err == nil:
		return fmt.Errorf("got %v; want %s, or the TCP connection closed", ev, codeList(codes))
	case errors.Is(err, io.EOF), isReset(err):
		return s.checkStream()
	}
	return fmt.Errorf("want %s, or the TCP connection closed: %w", codeList(codes), err)
}

// describe names the frames of b, a piece of a server's stream, as
// ", starting with a pong \"probe\"", or "" if it has none.
func describe(b []byte, rsv byte) string {
	frames, _ := rawws.SplitFrames(b, rsv)
	if len(frames) == 0 {
		return ""
	}
	f := frames[0]
	ev := event{op: f.Opcode, data: f.Payload, frames: 1, compressed: f.RSV != 0}
	what := ev.String()
	if f.Truncated {
		what = fmt.Sprintf("a truncated frame with opcode %#x", f.Opcode)
	}
	return fmt.Sprintf(", %d frame(s) starting with %s", len(frames), what)
}
