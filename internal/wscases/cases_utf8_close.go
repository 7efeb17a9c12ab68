package wscases

import (
	"context"
	"fmt"
	"strings"
)

func utf8Cases() []Case {
	var cs []Case
	valid := []struct{ what, s string }{
		{"Latin-1 and ASCII (Autobahn's Hello-µ@ßöäüàá-UTF-8!!)", "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"},
		{"Greek (κόσμε)", "\u03ba\u1f79\u03c3\u03bc\u03b5"},
		{"four-byte sequences (U+1D11E, U+1F600)", "\U0001D11E music \U0001F600"},
		{"the first and last code points of each length: U+0000, U+007F, U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF",
			"\x00\x7f\u0080\u07ff\u0800\uffff\U00010000\U0010FFFF"},
		{"the code points around the surrogates: U+D7FF, U+E000, U+FFFD", "\ud7ff\ue000\ufffd"},
		{"noncharacters U+FFFE, U+FDD0, U+1FFFF (valid UTF-8)", "\ufffe\ufdd0\U0001FFFF"},
	}
	for i, v := range valid {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("6.1.%d", i+1),
			Section: "RFC 6455 §5.6, §8.1; RFC 3629",
			Desc:    "a text message of valid UTF-8, " + v.what + ", is echoed",
			Run:     exchange([][]byte{textFrame(v.s)}, []msg{text(v.s)}),
		})
	}
	// Split inside code points.
	split := func(s string, sizes ...int) [][]byte {
		var fs [][]byte
		b := []byte(s)
		for i, off := 0, 0; off < len(b); i++ {
			n := len(b) - off
			if i < len(sizes) {
				n = sizes[i]
			}
			op := byte(opCont)
			if off == 0 {
				op = opText
			}
			fs = append(fs, frame(off+n == len(b), 0, op, b[off:off+n]))
			off += n
		}
		return fs
	}
	kosme := "\u03ba\u1f79\u03c3\u03bc\u03b5"
	hello := "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"
	ones := func(s string) []int {
		n := make([]int, len(s))
		for i := range n {
			n[i] = 1
		}
		return n
	}
	splits := []struct {
		what   string
		s      string
		frames [][]byte
	}{
		{"κόσμε in fragments of one byte", kosme, split(kosme, ones(kosme)...)},
		{"Autobahn's Hello-µ@ßöäüàá-UTF-8!! in fragments of one byte", hello, split(hello, ones(hello)...)},
		{"U+1D11E split 1+3 bytes", "\U0001D11E", split("\U0001D11E", 1, 3)},
		{"U+1D11E split 2+2 bytes", "\U0001D11E", split("\U0001D11E", 2, 2)},
		{"U+1D11E split 3+1 bytes", "\U0001D11E", split("\U0001D11E", 3, 1)},
		{"ab€cd with the euro sign split 1+2 bytes across fragments", "ab\u20accd", split("ab\u20accd", 3, 2)},
	}
	for i, v := range splits {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("6.2.%d", i+1),
			Section: "RFC 6455 §5.4, §5.6, §8.1",
			Desc:    "a fragmented text message that is valid UTF-8 only as a whole, " + v.what + ", is echoed whole",
			Run:     exchange(v.frames, []msg{text(v.s)}),
		})
	}
	invalid := []struct{ what, bad string }{
		{"overlong '/' in two bytes (C0 AF)", "\xc0\xaf"},
		{"overlong '/' in three bytes (E0 80 AF)", "\xe0\x80\xaf"},
		{"overlong '/' in four bytes (F0 80 80 AF)", "\xf0\x80\x80\xaf"},
		{"overlong NUL (C0 80)", "\xc0\x80"},
		{"the largest overlong two-byte sequence (C1 BF)", "\xc1\xbf"},
		{"the surrogate U+D800 (ED A0 80)", "\xed\xa0\x80"},
		{"the surrogate U+DFFF (ED BF BF)", "\xed\xbf\xbf"},
		{"a surrogate pair U+D800 U+DC00 (ED A0 80 ED B0 80)", "\xed\xa0\x80\xed\xb0\x80"},
		{"U+110000, above U+10FFFF (F4 90 80 80)", "\xf4\x90\x80\x80"},
		{"a sequence with the lead byte F5", "\xf5\x80\x80\x80"},
		{"the five-byte form (F8 88 80 80 80)", "\xf8\x88\x80\x80\x80"},
		{"the byte FE", "\xfe"},
		{"the byte FF", "\xff"},
		{"FE FE FF FF", "\xfe\xfe\xff\xff"},
		{"a lone continuation byte (80)", "\x80"},
		{"a lead byte followed by ASCII (CE 41)", "\xceA"},
	}
	for i, v := range invalid {
		p := kosme + v.bad + "edited"
		cs = append(cs, Case{
			ID:      fmt.Sprintf("6.3.%d", i+1),
			Section: "RFC 6455 §8.1, §7.4.1; RFC 3629",
			Desc:    "a text message holding " + v.what + " is not UTF-8: close 1007, and no echo; the text before it is echoed, the text after it is not",
			Run:     exchange([][]byte{before, textFrame(p), after}, []msg{text("before")}, 1007),
		})
	}
	n := len(invalid)
	cs = append(cs,
		Case{
			ID: fmt.Sprintf("6.3.%d", n+1), Section: "RFC 6455 §8.1; RFC 3629",
			Desc: "a text message that ends inside a code point (κόσμ then CE) gets close 1007 and no echo",
			Run:  exchange([][]byte{before, textFrame("\u03ba\u1f79\u03c3\u03bc\xce"), after}, []msg{text("before")}, 1007),
		},
		Case{
			ID: fmt.Sprintf("6.3.%d", n+2), Section: "RFC 6455 §8.1; RFC 3629",
			Desc: "a text message that ends after 3 bytes of a 4-byte code point (F0 9D 84) gets close 1007 and no echo",
			Run:  exchange([][]byte{before, textFrame(kosme + "\xf0\x9d\x84"), after}, []msg{text("before")}, 1007),
		},
		Case{
			ID: fmt.Sprintf("6.3.%d", n+3), Section: "RFC 6455 §5.4, §8.1",
			Desc: "a fragmented text message whose last fragment ends inside a code point (κόσμε CE, then an empty final fragment) gets close 1007 and no echo",
			Run:  exchange([][]byte{before, frame(false, 0, opText, []byte(kosme+"\xce")), frame(true, 0, opCont, nil), after}, []msg{text("before")}, 1007),
		},
	)
	failFast := []struct {
		what   string
		frames [][]byte
	}{
		{"its first fragment holds the surrogate ED A0 80", [][]byte{frame(false, 0, opText, []byte(kosme+"\xed\xa0\x80edited"))}},
		{"its first fragment holds the byte FF", [][]byte{frame(false, 0, opText, []byte(kosme+"\xffedited"))}},
		{"its first fragment is valid and its second holds U+110000 (F4 90 80 80)", [][]byte{frame(false, 0, opText, []byte(kosme)), frame(false, 0, opCont, []byte("\xf4\x90\x80\x80edited"))}},
	}
	for i, v := range failFast {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("6.4.%d", i+1),
			Section: "RFC 6455 §8.1",
			Desc: "fail-fast: a fragmented text message in which " + v.what + ", with no final fragment sent, gets close 1007 within 2 s. " +
				"(The RFC requires failing but not when; like Autobahn's strict grade, this case wants it as soon as the bad bytes arrive.)",
			Run: func(ctx context.Context, tg Target) error {
				s, err := dial(ctx, tg)
				if err != nil {
					return err
				}
				defer s.Close()
				return s.run(v.frames, nil, prompt, 1007)
			},
		})
	}
	cs = append(cs, Case{
		ID: "6.5.1", Section: "RFC 6455 §5.6",
		Desc: "a binary message need not be UTF-8: FF FE ED A0 80 C0 AF is echoed",
		Run:  exchange([][]byte{binaryFrame([]byte("\xff\xfe\xed\xa0\x80\xc0\xaf"))}, []msg{{opBinary, []byte("\xff\xfe\xed\xa0\x80\xc0\xaf")}}),
	})
	return cs
}

func closeCases() []Case {
	var cs []Case
	// A peer's valid close: the server answers with a close frame, and
	// "typically echos the status code it received" (§5.5.1), so the same
	// code, 1000, or no code pass.
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("7.1.%d", i+1),
			Section: "RFC 6455 §5.5.1, §7.1.1, §7.4",
			Desc: fmt.Sprintf("a close frame with the valid code %d and reason \"bye\" is answered with a close frame (code %d, 1000 or none: "+
				"the RFC says a server typically echoes the code) and then the server closes TCP, sending nothing after its close frame", code, code),
			Run: exchange([][]byte{frame(true, 0, opClose, closePayload(code, "bye"))}, nil, code, 1000, 1005),
		})
	}
	invalid := []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	for i, code := range invalid {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("7.2.%d", i+1),
			Section: "RFC 6455 §7.4.1, §7.4.2",
			Desc:    fmt.Sprintf("a close frame with the code %d, which may not be sent, gets close 1002", code),
			Run:     exchange([][]byte{frame(true, 0, opClose, closePayload(code, ""))}, nil, 1002),
		})
	}
	reason123 := strings.Repeat("r", 123)
	cs = append(cs,
		Case{ID: "7.3.1", Section: "RFC 6455 §5.5.1",
			Desc: "a close frame with an empty payload is answered with a close frame (no code, or 1000) and then the server closes TCP",
			Run:  exchange([][]byte{frame(true, 0, opClose, nil)}, nil, 1005, 1000)},
		Case{ID: "7.3.2", Section: "RFC 6455 §5.5.1",
			Desc: "a close frame whose payload is 1 byte (a code needs 2) gets close 1002",
			Run:  exchange([][]byte{frame(true, 0, opClose, []byte{0x03})}, nil, 1002)},
		Case{ID: "7.3.3", Section: "RFC 6455 §5.5.1, §8.1",
			Desc: "a close frame 1000 whose reason is not UTF-8 (FF FE) fails the connection: close 1007, or 1002 (the RFC names no code for a close reason, so both pass)",
			Run:  exchange([][]byte{frame(true, 0, opClose, closePayload(1000, "ok\xff\xfe"))}, nil, 1007, 1002)},
		Case{ID: "7.3.4", Section: "RFC 6455 §5.5, §5.5.1",
			Desc: "a close frame 1000 with a 123-byte reason (125 bytes in all, the most a control frame holds) is answered with a close frame",
			Run:  exchange([][]byte{frame(true, 0, opClose, closePayload(1000, reason123))}, nil, 1000, 1005)},
		Case{ID: "7.3.5", Section: "RFC 6455 §5.5",
			Desc: "a close frame 1000 with a 124-byte reason (126 bytes, too long for a control frame) gets close 1002",
			Run:  exchange([][]byte{frame(true, 0, opClose, closePayload(1000, reason123+"r"))}, nil, 1002)},
		Case{ID: "7.3.6", Section: "RFC 6455 §5.5.1",
			Desc: "a close frame 1000 with a UTF-8 reason of multi-byte characters (κόσμε) is answered with a close frame",
			Run:  exchange([][]byte{frame(true, 0, opClose, closePayload(1000, "\u03ba\u1f79\u03c3\u03bc\u03b5"))}, nil, 1000, 1005)},
		Case{ID: "7.4.1", Section: "RFC 6455 §1.4, §5.5.1",
			Desc: "data after the peer's close frame is ignored: a close 1000 followed in the same write by a text and a ping gets a close frame (1000 or none) and no echo and no pong",
			Run:  exchange([][]byte{closeFrame(1000), textFrame("after close"), pingFrame("after close")}, nil, 1000, 1005)},
		Case{ID: "7.4.2", Section: "RFC 6455 §5.4, §5.5.1",
			Desc: "a close frame in the middle of a fragmented text message is answered with a close frame (1000 or none) and the partial message is not echoed",
			Run:  exchange([][]byte{frame(false, 0, opText, []byte("partial")), closeFrame(1000)}, nil, 1000, 1005)},
		Case{ID: "7.4.3", Section: "RFC 6455 §5.5.1",
			Desc: "ten texts then a close 1000 in one write: the echoes of some first of them (in order; the rest may be dropped) then a close frame, and nothing at all after it",
			Run:  closeAfterTexts},
	)
	return cs
}

// closeAfterTexts is 7.4.3.
func closeAfterTexts(ctx context.Context, tg Target) error {
	s, err := dial(ctx, tg)
	if err != nil {
		return err
	}
	defer s.Close()
	var frames [][]byte
	for i := range 10 {
		frames = append(frames, textFrame(fmt.Sprint("message-", i)))
	}
	if err := s.send(append(frames, closeFrame(1000))...); err != nil {
		return err
	}
	for i := 0; ; i++ {
		ev, err := s.next(closeWait)
		if err != nil {
			return fmt.Errorf("after %d echoes, want the next echo or a close frame: %w", i, err)
		}
		if ev.op == opClose {
			if c := ev.closeCode(); c != 1000 && c != 1005 {
				return fmt.Errorf("the server closed with %v; want 1000 or no code", ev)
			}
			return s.finish(ev)
		}
		if i == 10 {
			return fmt.Errorf("got %v after the ten echoes; want a close frame", ev)
		}
		if err := checkMessage(ev, opText, fmt.Appendf(nil, "message-%d", i)); err != nil {
			return err
		}
	}
}
