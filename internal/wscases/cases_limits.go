package wscases

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/lafgo/laf/internal/rawws"
)

// fragments splits p into frames of size bytes, the first with opcode op.
func fragments(op byte, rsv byte, p []byte, size int) [][]byte {
	var fs [][]byte
	for off := 0; ; off += size {
		end := min(off+size, len(p))
		o, r := op, rsv
		if off > 0 {
			o, r = opCont, 0
		}
		fs = append(fs, frame(end == len(p), r, o, p[off:end]))
		if end == len(p) {
			return fs
		}
	}
}

// sendAsync writes frames on another goroutine: for a message the server
// may refuse before reading all of it. Its error, if any, is ignored: the
// server's stream says what happened.
func (s *session) sendAsync(frames ...[]byte) {
	go s.c.WriteRaw(joinFrames(frames))
}

func joinFrames(frames [][]byte) []byte {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// needLimit skips a case for a target with no read limit, or one too
// large to send a message over it quickly.
func needLimit(tg Target) error {
	if tg.ReadLimit < 0 {
		return skipf("the target has no read limit")
	}
	if tg.ReadLimit > 16<<20 {
		return skipf("the read limit %d is too large to test quickly", tg.ReadLimit)
	}
	return nil
}

func limitCases() []Case {
	var cs []Case
	sizes := []int{64 << 10, 256 << 10, 1 << 20}
	kinds := []struct {
		op   byte
		name string
		gen  func(int) []byte
	}{{opText, "text", textPayload}, {opBinary, "binary", binaryPayload}}
	for g, frag := range []bool{false, true} {
		for k, kind := range kinds {
			for i, n := range sizes {
				how := "in one frame"
				if frag {
					how = "in 4 KiB fragments"
				}
				cs = append(cs, Case{
					ID:      fmt.Sprintf("9.%d.%d", 2*g+k+1, i+1),
					Section: "RFC 6455 §5.2, §5.4",
					Desc:    fmt.Sprintf("a %s message of %d KiB %s, within the read limit, is echoed whole", kind.name, n>>10, how),
					Run: func(ctx context.Context, tg Target) error {
						if overLimit(tg, n) {
							return skipf("%d bytes is above the read limit %d", n, tg.ReadLimit)
						}
						p := kind.gen(n)
						fs := [][]byte{frame(true, 0, kind.op, p)}
						if frag {
							fs = fragments(kind.op, 0, p, 4<<10)
						}
						return exchange(fs, []msg{{kind.op, p}})(ctx, tg)
					},
				})
			}
		}
	}
	atLimit := func(op byte, frag bool) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			if err := needLimit(tg); err != nil {
				return err
			}
			p := textPayload(int(tg.ReadLimit))
			if op == opBinary {
				p = binaryPayload(int(tg.ReadLimit))
			}
			fs := [][]byte{frame(true, 0, op, p)}
			if frag {
				fs = fragments(op, 0, p, 4<<10)
			}
			return exchange(fs, []msg{{op, p}})(ctx, tg)
		}
	}
	overLim := func(op byte, frag bool) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			if err := needLimit(tg); err != nil {
				return err
			}
			s, err := dial(ctx, tg)
			if err != nil {
				return err
			}
			defer s.Close()
			p := textPayload(int(tg.ReadLimit) + 1)
			fs := [][]byte{frame(true, 0, op, p)}
			if frag {
				fs = fragments(op, 0, p, 4<<10)
			}
			s.sendAsync(fs...)
			return s.expectClose(closeWait, 1009)
		}
	}
	cs = append(cs,
		Case{ID: "9.5.1", Section: "RFC 6455 §10.4", Desc: "a text message of exactly the read limit, in one frame, is echoed", Run: atLimit(opText, false)},
		Case{ID: "9.5.2", Section: "RFC 6455 §10.4", Desc: "a binary message of exactly the read limit, in 4 KiB fragments, is echoed", Run: atLimit(opBinary, true)},
		Case{ID: "9.6.1", Section: "RFC 6455 §7.4.1, §10.4", Desc: "a binary message of the read limit + 1 byte, in one frame, gets close 1009 and no echo", Run: overLim(opBinary, false)},
		Case{ID: "9.6.2", Section: "RFC 6455 §7.4.1, §10.4", Desc: "a text message of the read limit + 1 byte, in one frame, gets close 1009 and no echo", Run: overLim(opText, false)},
		Case{ID: "9.6.3", Section: "RFC 6455 §7.4.1, §10.4", Desc: "a binary message of the read limit + 1 byte, in 4 KiB fragments, gets close 1009 and no echo", Run: overLim(opBinary, true)},
	)
	return cs
}

// declaredFrame returns a masked, final client frame header with opcode
// op declaring a payload of n bytes in the 64-bit form (in the 16-bit
// form if n fits it), followed by only 10 bytes of that payload.
func declaredFrame(op byte, n uint64) []byte {
	b := []byte{0x80 | op}
	if n <= 0xFFFF && n > 125 {
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(n))
	} else {
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), n)
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range []byte("0123456789") {
		b = append(b, c^key[i%4])
	}
	return b
}

// findingLimitCases are X.4, X.5 and X.6: frame lengths and the limit.
func findingLimitCases() []Case {
	declared := func(op byte, n func(Target) uint64, code int) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			if code == 1009 {
				if err := needLimit(tg); err != nil {
					return err
				}
			}
			s, err := dial(ctx, tg)
			if err != nil {
				return err
			}
			defer s.Close()
			// The connection stays open with the frame unfinished: the
			// answer must not wait for the rest of it, nor for a ping.
			return s.run([][]byte{before, declaredFrame(op, n(tg))}, []msg{text("before")}, prompt, code)
		}
	}
	fixed := func(n uint64) func(Target) uint64 { return func(Target) uint64 { return n } }
	limit1 := func(tg Target) uint64 { return uint64(tg.ReadLimit) + 1 }
	return []Case{
		{ID: "X.4.1", Section: "RFC 6455 §7.4.1, §10.4",
			Desc: "a binary frame header declaring 2^62 bytes, with only 10 of them sent and the connection left open, gets close 1009 within 2 s (not after a ping or read timeout). The client's answering close frame is, to the server, part of that payload, so the server must close TCP itself (§7.1.7) within 3 s.",
			Run:  declared(opBinary, fixed(1<<62), 1009)},
		{ID: "X.4.2", Section: "RFC 6455 §7.4.1, §10.4",
			Desc: "a binary frame header declaring 2^63-1 bytes (the largest valid length), with only 10 sent, gets close 1009 within 2 s. The client's answering close frame is, to the server, part of that payload, so the server must close TCP itself (§7.1.7) within 3 s.",
			Run:  declared(opBinary, fixed(math.MaxInt64), 1009)},
		{ID: "X.4.3", Section: "RFC 6455 §7.4.1, §10.4",
			Desc: "a binary frame header declaring the read limit + 1 bytes, with only 10 sent, gets close 1009 within 2 s. The client's answering close frame is, to the server, part of that payload, so the server must close TCP itself (§7.1.7) within 3 s.",
			Run:  declared(opBinary, limit1, 1009)},
		{ID: "X.4.4", Section: "RFC 6455 §7.4.1, §10.4",
			Desc: "a text frame header declaring 2^62 bytes, with only 10 sent, gets close 1009 within 2 s. The client's answering close frame is, to the server, part of that payload, so the server must close TCP itself (§7.1.7) within 3 s.",
			Run:  declared(opText, fixed(1<<62), 1009)},
		{ID: "X.5.1", Section: "RFC 6455 §5.2",
			Desc: "a frame header whose 64-bit length has its most significant bit set (2^63), which the RFC forbids, gets close 1002 within 2 s. The client's answering close frame is, to the server, part of that payload, so the server must close TCP itself (§7.1.7) within 3 s.",
			Run:  declared(opBinary, fixed(1<<63), 1002)},
		{ID: "X.5.2", Section: "RFC 6455 §5.2",
			Desc: "a frame header with the 64-bit length 2^64-1 (most significant bit set) gets close 1002 within 2 s. The client's answering close frame is, to the server, part of that payload, so the server must close TCP itself (§7.1.7) within 3 s.",
			Run:  declared(opBinary, fixed(math.MaxUint64), 1002)},
		{ID: "X.6", Section: "RFC 6455 §5.5.2, §5.5.1, §7.1.7",
			Desc: "ping after the server's close: a binary message of the read limit + 1 bytes in 4 KiB fragments (so that framing stays intact) gets close 1009; " +
				"then, before the client's close frame, a ping. A server in its closing handshake must answer it with a pong (§5.5.2: unless it already received a Close), " +
				"then close TCP after the client's close frame, sending nothing else. A server that instead failed the connection (§7.1.7) may ignore the ping, " +
				"but then must close TCP within 2 s without waiting for the client's close frame; both pass",
			Run: pingAfterServerClose},
	}
}

// pingAfterServerClose is X.6.
func pingAfterServerClose(ctx context.Context, tg Target) error {
	if err := needLimit(tg); err != nil {
		return err
	}
	s, err := dial(ctx, tg)
	if err != nil {
		return err
	}
	defer s.Close()
	s.sendAsync(fragments(opBinary, 0, binaryPayload(int(tg.ReadLimit)+1), 4<<10)...)
	ev, err := s.awaitClose(closeWait, []int{1009})
	if err != nil {
		return err
	}
	if ev.closeCode() != 1009 {
		return fmt.Errorf("the server closed with %v; want 1009", ev)
	}
	closeAt := len(s.stream)
	s.c.WriteFrame(true, 0, opPing, []byte("after your close")) // a failure shows in the read
	ev, err = s.next(prompt)
	switch {
	case err == nil && ev.op == opPong && string(ev.data) == "after your close":
		// The closing handshake: now the client's close.
		s.c.WriteClose(1009, "")
		s.closeSent = true
		tail, err := s.c.ReadAll(tcpWait)
		s.stream = append(s.stream, tail...)
		if len(tail) > 0 {
			return fmt.Errorf("%d bytes followed the pong after the server's close frame", len(tail))
		}
		if frames, perr := splitAll(s); perr != nil {
			return perr
		} else if n := len(frames); n < 2 || frames[n-1].Opcode != opPong || frames[n-2].Opcode != opClose {
			return fmt.Errorf("the stream does not end with the close frame and the pong")
		}
		if err != nil && !isReset(err) {
			return fmt.Errorf("after the pong and the client's close frame, the server did not close TCP within %v: %w", tcpWait, err)
		}
		return nil
	case err == nil:
		return fmt.Errorf("after its close frame, got %v; want a pong \"after your close\" (RFC 6455 §5.5.2), or the TCP connection closed", ev)
	case errors.Is(err, io.EOF) || isReset(err):
		// The server failed the connection and dropped it: nothing may
		// have followed its close frame.
		if len(s.stream) != closeAt {
			return fmt.Errorf("bytes followed the server's close frame")
		}
		return s.checkStream()
	}
	return fmt.Errorf("after its close frame 1009, the server neither answered a ping (RFC 6455 §5.5.2) nor closed TCP within %v: %w", prompt, err)
}

// splitAll checks the session's whole stream frame by frame.
func splitAll(s *session) ([]rawws.Frame, error) {
	frames, err := rawws.SplitFrames(s.stream, s.rsv())
	if err != nil {
		return nil, fmt.Errorf("the server's stream is invalid: %w", err)
	}
	return frames, nil
}
