package wscases

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// textPayload returns n bytes of printable ASCII, the same for the same n.
func textPayload(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(' ' + r.IntN(95))
	}
	return b
}

// binaryPayload returns n bytes of every value, the same for the same n.
func binaryPayload(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// overLimit reports whether a message of n bytes is above tg's limit.
func overLimit(tg Target, n int) bool { return tg.ReadLimit >= 0 && int64(n) > tg.ReadLimit }

// msg is a message the server is expected to echo.
type msg struct {
	op   byte
	data []byte
}

func text(s string) msg { return msg{opText, []byte(s)} }

// exchange is the shape of most cases: open a session with no extension,
// send frames in one write, expect the echoes in order, then either a
// close frame with one of codes (and nothing else), or, with no codes, a
// clean closing handshake started by the client.
func exchange(send [][]byte, echoes []msg, codes ...int) func(context.Context, Target) error {
	return func(ctx context.Context, tg Target) error {
		s, err := dial(ctx, tg)
		if err != nil {
			return err
		}
		defer s.Close()
		return s.run(send, echoes, closeWait, codes...)
	}
}

// run is exchange's body on an open session: echo, then the close.
func (s *session) run(send [][]byte, echoes []msg, wait time.Duration, codes ...int) error {
	if err := s.echo(send, echoes); err != nil && (len(codes) == 0 || !errors.Is(err, errWrite)) {
		return err
	}
	if len(codes) == 0 {
		return s.closeClean()
	}
	return s.expectClose(wait, codes...)
}

// echo sends frames in one write and expects the echoes, in order. A
// write error is returned wrapping errWrite (after which a case expecting
// a close goes on to read it).
func (s *session) echo(send [][]byte, echoes []msg) error {
	if err := s.send(send...); err != nil {
		return err
	}
	for i, m := range echoes {
		if err := s.expectMessage(m.op, m.data); err != nil {
			return fmt.Errorf("echo %d of %d: %w", i+1, len(echoes), err)
		}
	}
	return nil
}

var errWrite = errors.New("writing to the server")

// closeClean starts the closing handshake with 1000: the server must
// answer with a close frame, 1000 or with no code (RFC 6455 §5.5.1: it
// typically echoes the code), send nothing after it, and close TCP.
func (s *session) closeClean() error {
	if err := s.send(closeFrame(1000)); err != nil {
		return err
	}
	if err := s.expectClose(closeWait, 1000, 1005); err != nil {
		return fmt.Errorf("closing handshake started by the client: %w", err)
	}
	return nil
}

// The frames and messages cases surround a bad frame with: an echo of
// before must come, one of after must not.
var (
	before = textFrame("before")
	after  = textFrame("after")
)

func framingCases() []Case {
	var cs []Case
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536, 128 << 10, 512 << 10}
	for i, n := range sizes {
		for j, k := range []struct {
			op   byte
			name string
			gen  func(int) []byte
		}{{opText, "text", textPayload}, {opBinary, "binary", binaryPayload}} {
			cs = append(cs, Case{
				ID:      fmt.Sprintf("1.%d.%d", j+1, i+1),
				Section: "RFC 6455 §5.2, §5.6",
				Desc: fmt.Sprintf("a %s message of %d bytes in one frame is echoed as one %s message with the same bytes "+
					"(the server may fragment it; its frames must be unmasked and use the shortest length form)", k.name, n, k.name),
				Run: func(ctx context.Context, tg Target) error {
					if overLimit(tg, n) {
						return skipf("%d bytes is above the read limit %d", n, tg.ReadLimit)
					}
					p := k.gen(n)
					return exchange([][]byte{frame(true, 0, k.op, p)}, []msg{{k.op, p}})(ctx, tg)
				},
			})
		}
	}
	// Put the binary cases after the text ones, as 1.1.x then 1.2.x.
	var ordered []Case
	for _, prefix := range []string{"1.1.", "1.2."} {
		for _, c := range cs {
			if strings.HasPrefix(c.ID, prefix) {
				ordered = append(ordered, c)
			}
		}
	}
	unmasked := []byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}
	ordered = append(ordered, Case{
		ID:      "1.3.1",
		Section: "RFC 6455 §5.1",
		Desc: "an unmasked text frame from the client is not echoed: the server must close the connection, and " +
			"may send a close frame 1002 first (both accepted)",
		Run: func(ctx context.Context, tg Target) error {
			s, err := dial(ctx, tg)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.send(before, unmasked, after); err != nil {
				return err
			}
			if err := s.expectMessage(opText, []byte("before")); err != nil {
				return err
			}
			return s.expectEnd(closeWait, 1002)
		},
	})
	return ordered
}

func pingCases() []Case {
	p125 := []byte(strings.Repeat("*", 125))
	bin125 := make([]byte, 125)
	for i := range bin125 {
		bin125[i] = byte(255 - 2*i)
	}
	pingPong := func(payload []byte) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			s, err := dial(ctx, tg)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.send(frame(true, 0, opPing, payload)); err != nil {
				return err
			}
			if err := s.expectPong(payload); err != nil {
				return err
			}
			return s.closeClean()
		}
	}
	tenPings := func(ctx context.Context, tg Target) error {
		s, err := dial(ctx, tg)
		if err != nil {
			return err
		}
		defer s.Close()
		var frames [][]byte
		for i := range 10 {
			frames = append(frames, pingFrame(fmt.Sprint("ping-", i)))
		}
		if err := s.send(frames...); err != nil {
			return err
		}
		next := 0
		for next < 10 {
			ev, err := s.next(echoWait)
			if err != nil {
				return fmt.Errorf("waiting for the pong to ping-9: %w", err)
			}
			if ev.op != opPong {
				return fmt.Errorf("got %v, want pongs", ev)
			}
			j := next
			for j < 10 && string(ev.data) != fmt.Sprint("ping-", j) {
				j++
			}
			if j == 10 {
				return fmt.Errorf("got %v, want a pong to ping-%d or a later ping, in order", ev, next)
			}
			next = j + 1
		}
		return s.run([][]byte{textFrame("after pings")}, []msg{text("after pings")}, closeWait)
	}
	tenPingsWaited := func(ctx context.Context, tg Target) error {
		s, err := dial(ctx, tg)
		if err != nil {
			return err
		}
		defer s.Close()
		for i := range 10 {
			p := fmt.Sprint("ping-", i)
			if err := s.send(pingFrame(p)); err != nil {
				return err
			}
			if err := s.expectPong([]byte(p)); err != nil {
				return fmt.Errorf("ping %d: %w", i, err)
			}
		}
		return s.closeClean()
	}
	pingInMessage := func(ctx context.Context, tg Target) error {
		s, err := dial(ctx, tg)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.send(frame(false, 0, opText, []byte("frag-one ")), pingFrame("between"), frame(true, 0, opCont, []byte("frag-two"))); err != nil {
			return err
		}
		var gotPong, gotMsg bool
		for !gotPong || !gotMsg {
			ev, err := s.next(echoWait)
			if err != nil {
				return fmt.Errorf("want a pong \"between\" and the message \"frag-one frag-two\": %w", err)
			}
			switch {
			case ev.op == opPong && string(ev.data) == "between" && !gotPong:
				gotPong = true
			case ev.op == opText && !gotMsg:
				if err := checkMessage(ev, opText, []byte("frag-one frag-two")); err != nil {
					return err
				}
				gotMsg = true
			default:
				return fmt.Errorf("got %v, want a pong \"between\" and the message \"frag-one frag-two\"", ev)
			}
		}
		return s.closeClean()
	}
	return []Case{
		{ID: "2.1", Section: "RFC 6455 §5.5.2, §5.5.3", Desc: "a ping with an empty payload gets a pong with an empty payload", Run: pingPong(nil)},
		{ID: "2.2", Section: "RFC 6455 §5.5.2, §5.5.3", Desc: "a ping with 125 bytes of text gets a pong with the same payload", Run: pingPong(p125)},
		{ID: "2.3", Section: "RFC 6455 §5.5.2, §5.5.3", Desc: "a ping with 125 binary bytes gets a pong with the same payload", Run: pingPong(bin125)},
		{ID: "2.4", Section: "RFC 6455 §5.5", Desc: "a ping with 126 bytes of payload (control frames carry at most 125) gets close 1002 and no pong; a text after it is not echoed",
			Run: exchange([][]byte{before, frame(true, 0, opPing, make([]byte, 126)), after}, []msg{text("before")}, 1002)},
		{ID: "2.5", Section: "RFC 6455 §5.5.3", Desc: "an unsolicited pong is ignored: no answer, and the text after it is echoed",
			Run: exchange([][]byte{frame(true, 0, opPong, []byte("unsolicited")), textFrame("after pong")}, []msg{text("after pong")})},
		{ID: "2.6", Section: "RFC 6455 §5.5.3", Desc: "an unsolicited pong with an empty payload is ignored",
			Run: exchange([][]byte{frame(true, 0, opPong, nil), textFrame("after pong")}, []msg{text("after pong")})},
		{ID: "2.7", Section: "RFC 6455 §5.5.2, §5.5.3", Desc: "ten pings in one write get their pongs, in order; a server may answer only the latest of pings it has not answered yet (§5.5.3), so any in-order subset ending with the pong to the tenth passes", Run: tenPings},
		{ID: "2.8", Section: "RFC 6455 §5.5.2", Desc: "ten pings, each sent after the pong to the one before, get ten pongs", Run: tenPingsWaited},
		{ID: "2.9", Section: "RFC 6455 §5.4, §5.5.2", Desc: "a ping between the two fragments of a text message gets its pong, and the message is echoed whole (the pong may come before or after the echo)", Run: pingInMessage},
		{ID: "2.10", Section: "RFC 6455 §5.5", Desc: "a pong with 126 bytes of payload gets close 1002; a text after it is not echoed",
			Run: exchange([][]byte{before, frame(true, 0, opPong, make([]byte, 126)), after}, []msg{text("before")}, 1002)},
	}
}

func rsvCases() []Case {
	type bad struct {
		what   string
		frames [][]byte
	}
	bads := []bad{
		{"a text frame with RSV1", [][]byte{frame(true, 4, opText, []byte("rsv1"))}},
		{"a text frame with RSV2", [][]byte{frame(true, 2, opText, []byte("rsv2"))}},
		{"a text frame with RSV3", [][]byte{frame(true, 1, opText, []byte("rsv3"))}},
		{"a text frame with RSV1, RSV2 and RSV3", [][]byte{frame(true, 7, opText, []byte("rsv7"))}},
		{"a binary frame with RSV1", [][]byte{frame(true, 4, opBinary, []byte{1, 2, 3})}},
		{"a binary frame with RSV2 and RSV3", [][]byte{frame(true, 3, opBinary, []byte{1, 2, 3})}},
		{"a ping with RSV1", [][]byte{frame(true, 4, opPing, []byte("rsv ping"))}},
		{"a ping with RSV3", [][]byte{frame(true, 1, opPing, []byte("rsv ping"))}},
		{"a pong with RSV2", [][]byte{frame(true, 2, opPong, []byte("rsv pong"))}},
		{"a close frame 1000 with RSV2", [][]byte{frame(true, 2, opClose, closePayload(1000, ""))}},
		{"a continuation frame with RSV2 (its first fragment has none)", [][]byte{frame(false, 0, opText, []byte("frag")), frame(true, 2, opCont, []byte("ment"))}},
	}
	var cs []Case
	for i, b := range bads {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("3.%d", i+1),
			Section: "RFC 6455 §5.2",
			Desc: fmt.Sprintf("with no extension negotiated, %s gets close 1002 and no answer: the text before it is echoed, "+
				"the text after it is not", b.what),
			Run: exchange(append(append([][]byte{before}, b.frames...), after), []msg{text("before")}, 1002),
		})
	}
	return cs
}

func opcodeCases() []Case {
	var cs []Case
	for i, op := range []byte{3, 4, 5, 6, 7} {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("4.1.%d", i+1),
			Section: "RFC 6455 §5.2",
			Desc:    fmt.Sprintf("a frame with the reserved non-control opcode %#x gets close 1002: the text before it is echoed, the text after it is not", op),
			Run:     exchange([][]byte{before, frame(true, 0, op, []byte("reserved")), after}, []msg{text("before")}, 1002),
		})
	}
	for i, op := range []byte{0xB, 0xC, 0xD, 0xE, 0xF} {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("4.2.%d", i+1),
			Section: "RFC 6455 §5.2",
			Desc:    fmt.Sprintf("a frame with the reserved control opcode %#x gets close 1002: the text before it is echoed, the text after it is not", op),
			Run:     exchange([][]byte{before, frame(true, 0, op, []byte("reserved")), after}, []msg{text("before")}, 1002),
		})
	}
	cs = append(cs, Case{
		ID:      "4.3.1",
		Section: "RFC 6455 §5.2, §5.4",
		Desc:    "a frame with the reserved opcode 5 between two fragments of a text message gets close 1002, and the message is not echoed",
		Run: exchange([][]byte{frame(false, 0, opText, []byte("frag")), frame(true, 0, 5, []byte("reserved")), frame(true, 0, opCont, []byte("ment"))},
			nil, 1002),
	})
	return cs
}

func fragmentCases() []Case {
	many := func(op byte, p []byte, size int) [][]byte {
		var fs [][]byte
		for off := 0; off < len(p) || off == 0; off += size {
			end := min(off+size, len(p))
			o := op
			if off > 0 {
				o = opCont
			}
			fs = append(fs, frame(end == len(p), 0, o, p[off:end]))
			if end == len(p) {
				break
			}
		}
		return fs
	}
	hundred := textPayload(300)
	binMany := binaryPayload(257)
	pingsBetween := func(ctx context.Context, tg Target) error {
		s, err := dial(ctx, tg)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.send(frame(false, 0, opText, []byte("one ")), pingFrame("ping-a"), frame(false, 0, opCont, []byte("two ")),
			pingFrame("ping-b"), frame(true, 0, opCont, []byte("three"))); err != nil {
			return err
		}
		pongs, gotMsg := 0, false // pongs: how many of ping-a, ping-b were answered in order
		for pongs < 2 || !gotMsg {
			ev, err := s.next(echoWait)
			if err != nil {
				return fmt.Errorf("want the pong to ping-b and the message \"one two three\": %w", err)
			}
			switch {
			case ev.op == opPong && pongs == 0 && string(ev.data) == "ping-a":
				pongs = 1
			case ev.op == opPong && pongs < 2 && string(ev.data) == "ping-b":
				pongs = 2
			case ev.op == opText && !gotMsg:
				if err := checkMessage(ev, opText, []byte("one two three")); err != nil {
					return err
				}
				gotMsg = true
			default:
				return fmt.Errorf("got %v, want pongs to ping-a (optional, §5.5.3) and ping-b, in order, and the message \"one two three\"", ev)
			}
		}
		return s.closeClean()
	}
	return []Case{
		{ID: "5.1", Section: "RFC 6455 §5.4", Desc: "a text message in two fragments is echoed whole",
			Run: exchange([][]byte{frame(false, 0, opText, []byte("Hello, ")), frame(true, 0, opCont, []byte("fragments"))}, []msg{text("Hello, fragments")})},
		{ID: "5.2", Section: "RFC 6455 §5.4", Desc: "a binary message in two fragments is echoed whole",
			Run: exchange([][]byte{frame(false, 0, opBinary, []byte{0, 1, 2}), frame(true, 0, opCont, []byte{253, 254, 255})}, []msg{{opBinary, []byte{0, 1, 2, 253, 254, 255}}})},
		{ID: "5.3", Section: "RFC 6455 §5.4", Desc: "a 300-byte text message in 100 fragments of 3 bytes is echoed whole",
			Run: exchange(many(opText, hundred, 3), []msg{{opText, hundred}})},
		{ID: "5.4", Section: "RFC 6455 §5.4", Desc: "a 257-byte binary message in 257 fragments of 1 byte is echoed whole",
			Run: exchange(many(opBinary, binMany, 1), []msg{{opBinary, binMany}})},
		{ID: "5.5", Section: "RFC 6455 §5.4", Desc: "a final continuation frame with no message to continue gets close 1002; the text before it is echoed, the text after it is not",
			Run: exchange([][]byte{before, frame(true, 0, opCont, []byte("orphan")), after}, []msg{text("before")}, 1002)},
		{ID: "5.6", Section: "RFC 6455 §5.4", Desc: "a non-final continuation frame with no message to continue gets close 1002 and no echo",
			Run: exchange([][]byte{before, frame(false, 0, opCont, []byte("orphan")), frame(true, 0, opCont, []byte("orphan end")), after}, []msg{text("before")}, 1002)},
		{ID: "5.7", Section: "RFC 6455 §5.4", Desc: "a new text frame while a fragmented text message is open gets close 1002, and neither is echoed",
			Run: exchange([][]byte{before, frame(false, 0, opText, []byte("one")), frame(true, 0, opText, []byte("two")), after}, []msg{text("before")}, 1002)},
		{ID: "5.8", Section: "RFC 6455 §5.4", Desc: "a new binary frame while a fragmented text message is open gets close 1002, and neither is echoed",
			Run: exchange([][]byte{before, frame(false, 0, opText, []byte("one")), frame(true, 0, opBinary, []byte("two")), after}, []msg{text("before")}, 1002)},
		{ID: "5.9", Section: "RFC 6455 §5.4, §5.5", Desc: "a fragmented ping (FIN clear, then a final continuation) gets close 1002 and no pong",
			Run: exchange([][]byte{before, frame(false, 0, opPing, []byte("frag")), frame(true, 0, opCont, []byte("ping")), after}, []msg{text("before")}, 1002)},
		{ID: "5.10", Section: "RFC 6455 §5.4, §5.5", Desc: "a fragmented pong gets close 1002",
			Run: exchange([][]byte{before, frame(false, 0, opPong, []byte("frag")), frame(true, 0, opCont, []byte("pong")), after}, []msg{text("before")}, 1002)},
		{ID: "5.11", Section: "RFC 6455 §5.4, §5.5", Desc: "a fragmented close frame gets close 1002 (not the close code it carries)",
			Run: exchange([][]byte{before, frame(false, 0, opClose, closePayload(1000, "")), frame(true, 0, opCont, []byte("close")), after}, []msg{text("before")}, 1002)},
		{ID: "5.12", Section: "RFC 6455 §5.4, §5.5.2", Desc: "pings between the three fragments of a text message are answered, and the message is echoed whole (the pongs may come before or after it; the first pong may be left out, §5.5.3)", Run: pingsBetween},
		{ID: "5.13", Section: "RFC 6455 §5.4", Desc: "a text message whose fragments are empty but one is echoed whole",
			Run: exchange([][]byte{frame(false, 0, opText, nil), frame(false, 0, opCont, []byte("middle")), frame(false, 0, opCont, nil), frame(true, 0, opCont, nil)}, []msg{text("middle")})},
		{ID: "5.14", Section: "RFC 6455 §5.4", Desc: "a text message of three empty fragments is echoed as an empty text message",
			Run: exchange([][]byte{frame(false, 0, opText, nil), frame(false, 0, opCont, nil), frame(true, 0, opCont, nil)}, []msg{text("")})},
		{ID: "5.15", Section: "RFC 6455 §5.4", Desc: "two fragmented messages in a row, text then binary, are echoed whole and in order",
			Run: exchange([][]byte{frame(false, 0, opText, []byte("first ")), frame(true, 0, opCont, []byte("message")),
				frame(false, 0, opBinary, []byte{9, 8}), frame(true, 0, opCont, []byte{7})},
				[]msg{text("first message"), {opBinary, []byte{9, 8, 7}}})},
	}
}
