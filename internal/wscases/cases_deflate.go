package wscases

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lafgo/laf/internal/rawws"
)

// plainOffer is the offer of the compressed echo cases: the extension
// with no parameters.
const plainOffer = "permessage-deflate"

// cframe is a compressed message in one frame (RSV1 set).
func cframe(op byte, p []byte) []byte { return frame(true, 4, op, compress(p)) }

// deflateExchange is exchange on a session that negotiated offer.
func deflateExchange(offer string, send [][]byte, echoes []msg, codes ...int) func(context.Context, Target) error {
	return func(ctx context.Context, tg Target) error {
		s, err := dialDeflate(ctx, tg, offer)
		if err != nil {
			return err
		}
		defer s.Close()
		return s.run(send, echoes, closeWait, codes...)
	}
}

// The RFC 7692 §7.2.3 examples: payloads of a message "Hello".
var (
	rfcHello        = []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}                                           // §7.2.3.1
	rfcHelloAgain   = []byte{0xf2, 0x00, 0x11, 0x00, 0x00}                                                       // §7.2.3.2, after rfcHello
	rfcHelloStored  = []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}                   // §7.2.3.3
	rfcHelloBFINAL  = []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}                                     // §7.2.3.4
	rfcHelloTwo     = []byte{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}       // §7.2.3.5
	bfinalHello     = []byte{0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}                                           // "hello" in one fixed-Huffman block with BFINAL set
	truncatedStream = []byte{0xca, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc0, 0x24, 0xcb, 0xf3, 0x8b, 0x72, 0x52, 0x90} // the first 14 of the 16 bytes of truncatedText
)

const truncatedText = "hello hello hello hello worlddddddddddddd"

func negotiationCases() []Case {
	accept := func(offer string) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			s, err := dialDeflate(ctx, tg, offer)
			if err != nil {
				return err
			}
			defer s.Close()
			p := textPayload(1000)
			return s.run([][]byte{cframe(opText, p)}, []msg{{opText, p}}, closeWait)
		}
	}
	decline := func(offer string) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			if !tg.Compression {
				return skipf("the target does not negotiate permessage-deflate")
			}
			c, resp, err := rawws.DialHeader(ctx, tg.URL, http.Header{"Sec-WebSocket-Extensions": {offer}})
			if err != nil {
				return fmt.Errorf("the server must decline the offer and go on with the handshake: %w", err)
			}
			s := newSession(ctx, c, nil)
			defer s.Close()
			if v := resp.Header.Values("Sec-WebSocket-Extensions"); len(v) > 0 {
				return fmt.Errorf("the server accepted the invalid offer %q: Sec-WebSocket-Extensions %q; it must decline it", offer, v)
			}
			// Uncompressed from now on: RSV1 from the server is an error.
			return s.run([][]byte{textFrame("declined")}, []msg{text("declined")}, closeWait)
		}
	}
	firstOf := func(offers string, want int) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			s, err := dialDeflate(ctx, tg, offers)
			if err != nil {
				return err
			}
			defer s.Close()
			if got := acceptedOffer(offers, s.ext); got != want {
				return fmt.Errorf("the response %q answers offer %d of %q, not offer %d, the first acceptable one", s.ext.String(), got+1, offers, want+1)
			}
			p := textPayload(1000)
			return s.run([][]byte{cframe(opText, p)}, []msg{{opText, p}}, closeWait)
		}
	}
	cs := []Case{
		{ID: "12.1.1", Section: "RFC 7692 §5, §7.1", Desc: "the offer \"permessage-deflate\" is accepted with a valid response, and a compressed text is echoed", Run: accept("permessage-deflate")},
		{ID: "12.1.2", Section: "RFC 7692 §7.1.2.1",
			Desc: "the offer \"permessage-deflate; server_max_window_bits=15\" is accepted, and the response includes server_max_window_bits with 15 or less (a MUST). " +
				"(The RFC lets a server decline any offer; a server that compresses declining the default window is counted as failing here.)",
			Run: accept("permessage-deflate; server_max_window_bits=15")},
		{ID: "12.1.3", Section: "RFC 7692 §7.1.2.2", Desc: "the offer \"permessage-deflate; client_max_window_bits\" is accepted (the response may set client_max_window_bits to 8..15)", Run: accept("permessage-deflate; client_max_window_bits")},
		{ID: "12.1.4", Section: "RFC 7692 §7.1.2.2", Desc: "the offer \"permessage-deflate; client_max_window_bits=15\" is accepted", Run: accept("permessage-deflate; client_max_window_bits=15")},
		{ID: "12.1.5", Section: "RFC 7692 §7.1.1.1", Desc: "the offer \"permessage-deflate; server_no_context_takeover\" is accepted, and the response includes server_no_context_takeover (a MUST)", Run: accept("permessage-deflate; server_no_context_takeover")},
		{ID: "12.1.6", Section: "RFC 7692 §7.1.1", Desc: "the offer \"permessage-deflate; server_no_context_takeover; client_no_context_takeover\" is accepted", Run: accept("permessage-deflate; server_no_context_takeover; client_no_context_takeover")},
	}
	invalid := []struct{ offer, why string }{
		{"permessage-deflate; client_max_window_bits=abc", "a value that is not a number"},
		{"permessage-deflate; client_max_window_bits=7", "a window below 8"},
		{"permessage-deflate; client_max_window_bits=16", "a window above 15"},
		{"permessage-deflate; server_max_window_bits", "server_max_window_bits with no value"},
		{"permessage-deflate; server_max_window_bits=7", "a window below 8"},
		{"permessage-deflate; server_max_window_bits=16", "a window above 15"},
		{"permessage-deflate; server_max_window_bits=09", "a leading zero"},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", "a duplicated parameter"},
		{"permessage-deflate; client_max_window_bits=10; client_max_window_bits=10", "a duplicated parameter with a value"},
		{"permessage-deflate; foo=bar", "an unknown parameter"},
		{"permessage-deflate; x-unknown", "an unknown parameter with no value"},
		{"permessage-deflate; client_no_context_takeover=1", "a value on a parameter that takes none"},
	}
	for i, v := range invalid {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("12.2.%d", i+1),
			Section: "RFC 7692 §5.1, §7.1",
			Desc: fmt.Sprintf("the offer %q has %s: the server must decline it, answering 101 with no permessage-deflate in Sec-WebSocket-Extensions, "+
				"and then echo uncompressed", v.offer, v.why),
			Run: decline(v.offer),
		})
	}
	cs = append(cs,
		Case{ID: "12.3.1", Section: "RFC 7692 §5, §5.1",
			Desc: "of the offers \"permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits\" the first is invalid: the server accepts the second",
			Run:  firstOf("permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits", 1)},
		Case{ID: "12.3.2", Section: "RFC 7692 §5, §5.1",
			Desc: "of the offers \"permessage-deflate; foo, permessage-deflate\" the first has an unknown parameter: the server accepts the second",
			Run:  firstOf("permessage-deflate; foo, permessage-deflate", 1)},
		Case{ID: "12.3.3", Section: "RFC 7692 §5",
			Desc: "of the offers \"permessage-deflate, permessage-deflate; client_max_window_bits\" the first is acceptable: the server's response answers it (it has no client_max_window_bits)",
			Run:  firstOf("permessage-deflate, permessage-deflate; client_max_window_bits", 0)},
		Case{ID: "12.3.4", Section: "RFC 6455 §9.1; RFC 7692 §5",
			Desc: "an unknown extension offered first, \"x-webkit-deflate-frame, permessage-deflate\", is left out of the response and permessage-deflate accepted",
			Run:  firstOf("x-webkit-deflate-frame, permessage-deflate", 1)},
		Case{ID: "12.4.1", Section: "RFC 7692 §7.1.1.2, §7.2.1",
			Desc: "a client offering \"permessage-deflate; client_max_window_bits\" (no client_no_context_takeover) connects; unless the response has client_no_context_takeover, " +
				"which the client then honours, the client keeps its LZ77 window across three messages and the server must inflate them",
			Run: takeover("permessage-deflate; client_max_window_bits")},
		Case{ID: "12.4.2", Section: "RFC 7692 §7.1.1.2, §7.2.1",
			Desc: "the same with the plain offer \"permessage-deflate\": context takeover by the client unless the server forbade it",
			Run:  takeover("permessage-deflate")},
		Case{ID: "12.4.3", Section: "RFC 7692 §7.2.3.2",
			Desc: "the example of §7.2.3.2: \"Hello\" as f2 48 cd c9 c9 07 00, then again as f2 00 11 00 00, which refers to the first; both echoed as \"Hello\" " +
				"(skipped if the server answered client_no_context_takeover)",
			Run: rfcSharedWindow},
	)
	return cs
}

// takeover is 12.4.1 and 12.4.2.
func takeover(offer string) func(context.Context, Target) error {
	return func(ctx context.Context, tg Target) error {
		s, err := dialDeflate(ctx, tg, offer)
		if err != nil {
			return err
		}
		defer s.Close()
		keep := !s.ext.has("client_no_context_takeover")
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
		// 3 x 60 bytes: within the smallest window a response may set.
		for i := range 3 {
			m := []byte(fmt.Sprintf("%-60s", fmt.Sprint("context takeover, message ", i%2)))
			if !keep {
				w.Reset(&buf)
			}
			buf.Reset()
			w.Write(m)
			w.Flush()
			p := bytes.TrimSuffix(buf.Bytes(), deflateTail)
			if err := s.echo([][]byte{frame(true, 4, opText, p)}, []msg{{opText, m}}); err != nil {
				return fmt.Errorf("message %d (client context takeover: %v): %w", i, keep, err)
			}
		}
		return s.closeClean()
	}
}

// rfcSharedWindow is 12.4.3.
func rfcSharedWindow(ctx context.Context, tg Target) error {
	s, err := dialDeflate(ctx, tg, plainOffer)
	if err != nil {
		return err
	}
	defer s.Close()
	if s.ext.has("client_no_context_takeover") {
		return skipf("the server answered client_no_context_takeover")
	}
	return s.run([][]byte{frame(true, 4, opText, rfcHello), frame(true, 4, opText, rfcHelloAgain)}, []msg{text("Hello"), text("Hello")}, closeWait)
}

func compressedCases() []Case {
	var cs []Case
	sizes := []int{16, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10}
	for k, kind := range []struct {
		op   byte
		name string
		gen  func(int) []byte
	}{{opText, "text", textPayload}, {opBinary, "binary", binaryPayload}} {
		for i, n := range sizes {
			cs = append(cs, Case{
				ID:      fmt.Sprintf("13.%d.%d", k+1, i+1),
				Section: "RFC 7692 §6, §7.2",
				Desc: fmt.Sprintf("a compressed %s message of %d bytes (raw deflate, sync flush, 00 00 ff ff removed, no context takeover) is echoed; "+
					"the echo may be compressed or not", kind.name, n),
				Run: func(ctx context.Context, tg Target) error {
					if overLimit(tg, n) {
						return skipf("%d bytes is above the read limit %d", n, tg.ReadLimit)
					}
					p := kind.gen(n)
					return deflateExchange(plainOffer, [][]byte{cframe(kind.op, p)}, []msg{{kind.op, p}})(ctx, tg)
				},
			})
		}
	}
	for i, n := range []int{1 << 10, 16 << 10, 64 << 10} {
		cs = append(cs, Case{
			ID:      fmt.Sprintf("13.3.%d", i+1),
			Section: "RFC 7692 §6, §6.1",
			Desc:    fmt.Sprintf("a compressed text message of %d bytes whose compressed payload is split in three fragments (RSV1 on the first only) is echoed whole", n),
			Run: func(ctx context.Context, tg Target) error {
				if overLimit(tg, n) {
					return skipf("%d bytes is above the read limit %d", n, tg.ReadLimit)
				}
				p := textPayload(n)
				z := compress(p)
				a, b := len(z)/3, 2*len(z)/3
				fs := [][]byte{frame(false, 4, opText, z[:a]), frame(false, 0, opCont, z[a:b]), frame(true, 0, opCont, z[b:])}
				return deflateExchange(plainOffer, fs, []msg{{opText, p}})(ctx, tg)
			},
		})
	}
	var ten [][]byte
	var tenEchoes []msg
	for i := range 10 {
		m := fmt.Sprintf("compressed message %d of ten", i)
		ten = append(ten, cframe(opText, []byte(m)))
		tenEchoes = append(tenEchoes, text(m))
	}
	cs = append(cs,
		Case{ID: "13.4.1", Section: "RFC 7692 §6", Desc: "an uncompressed text message (RSV1 clear) on a connection with permessage-deflate is echoed",
			Run: deflateExchange(plainOffer, [][]byte{textFrame("not compressed")}, []msg{text("not compressed")})},
		Case{ID: "13.4.2", Section: "RFC 7692 §7.2.1, §7.2.2", Desc: "an empty compressed text message (payload 00: the header bits of the flush's empty stored block) is echoed as an empty text message",
			Run: deflateExchange(plainOffer, [][]byte{frame(true, 4, opText, []byte{0x00})}, []msg{text("")})},
		Case{ID: "13.4.3", Section: "RFC 7692 §6, §7.2", Desc: "ten compressed text messages in one write are echoed in order",
			Run: deflateExchange(plainOffer, ten, tenEchoes)},
		Case{ID: "13.5.1", Section: "RFC 7692 §7.2.3.1", Desc: "the RFC's example payload f2 48 cd c9 c9 07 00 is echoed as \"Hello\"",
			Run: deflateExchange(plainOffer, [][]byte{frame(true, 4, opText, rfcHello)}, []msg{text("Hello")})},
		Case{ID: "13.5.2", Section: "RFC 7692 §7.2.3.3", Desc: "the RFC's example with a stored (uncompressed) DEFLATE block, 00 05 00 fa ff 48 65 6c 6c 6f 00, is echoed as \"Hello\"",
			Run: deflateExchange(plainOffer, [][]byte{frame(true, 4, opText, rfcHelloStored)}, []msg{text("Hello")})},
		Case{ID: "13.5.3", Section: "RFC 7692 §7.2.3.4", Desc: "the RFC's example with a DEFLATE block with BFINAL set, f3 48 cd c9 c9 07 00 00, is echoed as \"Hello\"",
			Run: deflateExchange(plainOffer, [][]byte{frame(true, 4, opText, rfcHelloBFINAL)}, []msg{text("Hello")})},
		Case{ID: "13.5.4", Section: "RFC 7692 §7.2.3.5", Desc: "the RFC's example of two DEFLATE blocks in one message, f2 48 05 00 00 00 ff ff ca c9 c9 07 00, is echoed as \"Hello\"",
			Run: deflateExchange(plainOffer, [][]byte{frame(true, 4, opText, rfcHelloTwo)}, []msg{text("Hello")})},
		Case{ID: "13.6.1", Section: "RFC 7692 §6; RFC 6455 §5.2", Desc: "RSV1 on the continuation frame of a compressed message (only the first frame may carry it) gets close 1002 and no echo",
			Run: func(ctx context.Context, tg Target) error {
				z := compress([]byte("rsv1 on the continuation"))
				return deflateExchange(plainOffer, [][]byte{before, frame(false, 4, opText, z[:4]), frame(true, 4, opCont, z[4:]), after}, []msg{text("before")}, 1002)(ctx, tg)
			}},
		Case{ID: "13.6.2", Section: "RFC 7692 §6; RFC 6455 §5.2", Desc: "RSV1 on the continuation frame of an uncompressed message gets close 1002 and no echo",
			Run: deflateExchange(plainOffer, [][]byte{before, frame(false, 0, opText, []byte("frag")), frame(true, 4, opCont, []byte("ment")), after}, []msg{text("before")}, 1002)},
		Case{ID: "13.6.3", Section: "RFC 7692 §6; RFC 6455 §5.2", Desc: "RSV1 on a ping (permessage-deflate defines it for data messages only) gets close 1002 and no pong",
			Run: deflateExchange(plainOffer, [][]byte{before, frame(true, 4, opPing, []byte("rsv1 ping")), after}, []msg{text("before")}, 1002)},
		Case{ID: "13.6.4", Section: "RFC 7692 §6; RFC 6455 §5.2", Desc: "RSV1 on a close frame gets close 1002",
			Run: deflateExchange(plainOffer, [][]byte{before, frame(true, 4, opClose, closePayload(1000, "")), after}, []msg{text("before")}, 1002)},
		Case{ID: "13.6.5", Section: "RFC 6455 §5.2", Desc: "RSV2 on a text frame, which permessage-deflate does not define, gets close 1002",
			Run: deflateExchange(plainOffer, [][]byte{before, frame(true, 2, opText, []byte("rsv2")), after}, []msg{text("before")}, 1002)},
		Case{ID: "13.7.1", Section: "RFC 7692 §7.2.2; RFC 6455 §10.4", Desc: "a compressed text message that inflates to exactly the read limit is echoed (the limit is on the inflated size)",
			Run: func(ctx context.Context, tg Target) error {
				if err := needLimit(tg); err != nil {
					return err
				}
				p := []byte(strings.Repeat("limit ", int(tg.ReadLimit)/6+1)[:tg.ReadLimit])
				return deflateExchange(plainOffer, [][]byte{cframe(opText, p)}, []msg{{opText, p}})(ctx, tg)
			}},
		Case{ID: "13.7.2", Section: "RFC 7692 §7.2.2; RFC 6455 §7.4.1, §10.4", Desc: "a compressed binary message of a few KiB that inflates to the read limit + 1 byte gets close 1009 and no echo",
			Run: inflateOver(1, 1)},
		Case{ID: "13.7.3", Section: "RFC 7692 §7.2.2; RFC 6455 §7.4.1, §10.4", Desc: "a compressed binary message that inflates to 16 times the read limit (a deflate bomb) gets close 1009 and no echo",
			Run: inflateOver(16, 1)},
		Case{ID: "13.7.4", Section: "RFC 7692 §7.2.2; RFC 6455 §7.4.1, §10.4", Desc: "the same bomb with its compressed payload in three fragments gets close 1009 and no echo",
			Run: inflateOver(16, 3)},
		Case{ID: "13.8.1", Section: "RFC 6455 §8.1; RFC 7692 §7.2.2", Desc: "a compressed text message that inflates to invalid UTF-8 (a surrogate) gets close 1007 and no echo",
			Run: deflateExchange(plainOffer, [][]byte{before, cframe(opText, []byte("inflated \xed\xa0\x80 surrogate")), after}, []msg{text("before")}, 1007)},
	)
	return cs
}

// inflateOver sends a binary message of zeros that inflates to times the
// read limit plus one byte, its compressed payload in parts fragments.
func inflateOver(times, parts int) func(context.Context, Target) error {
	return func(ctx context.Context, tg Target) error {
		if err := needLimit(tg); err != nil {
			return err
		}
		// Sync-flushed chunks from fresh compressors concatenate into one
		// stream, so the bomb is one compressed chunk repeated.
		chunk := append(compress(make([]byte, tg.ReadLimit)), deflateTail...)
		z := bytes.Repeat(chunk, times)
		z = append(z, append(compress([]byte{0}), deflateTail...)...)
		z = z[:len(z)-4]
		var fs [][]byte
		for i := range parts {
			a, b := i*len(z)/parts, (i+1)*len(z)/parts
			op, rsv := byte(opCont), byte(0)
			if i == 0 {
				op, rsv = opBinary, 4
			}
			fs = append(fs, frame(i == parts-1, rsv, op, z[a:b]))
		}
		s, err := dialDeflate(ctx, tg, plainOffer)
		if err != nil {
			return err
		}
		defer s.Close()
		s.sendAsync(fs...)
		return s.expectClose(closeWait, 1009)
	}
}

// findingDeflateCases are X.1 to X.3.
func findingDeflateCases() []Case {
	var cs []Case
	for i, at := range []int{0, 4096, 32768} {
		where := "right after the deflate stream"
		if at > 0 {
			where = fmt.Sprintf("at byte %d of the payload, after zero padding", at)
		}
		cs = append(cs, Case{
			ID:      fmt.Sprintf("X.1.%d", i+1),
			Section: "RFC 7692 §7.2.2, §7.2.3.4; RFC 6455 §5.2",
			Desc: "smuggling: one compressed text frame whose payload is a deflate stream of \"hello\" ending in a block with BFINAL set, then, " + where +
				", the bytes of a masked text frame \"smuggled\" and a masked close frame 4000, then a ping \"probe\" as a real frame. " +
				"What follows the final block is no valid DEFLATE data: the server must fail the connection with 1002, never echo \"smuggled\" " +
				"(nor \"hello\"), never obey the hidden close, and not answer the probe",
			Run: smuggle(at),
		})
	}
	cs = append(cs,
		Case{ID: "X.2.1", Section: "RFC 7692 §7.2.2",
			Desc: fmt.Sprintf("a compressed text frame holding only the first 14 of the 16 bytes of the deflate stream of %q (it inflates, leniently, to that text "+
				"one d short) gets close 1002 and no echo; a ping \"probe\" after it is not answered", truncatedText),
			Run: deflateExchange(plainOffer, [][]byte{frame(true, 4, opText, truncatedStream), pingFrame("probe")}, nil, 1002)},
		Case{ID: "X.2.2", Section: "RFC 7692 §7.2.2",
			Desc: "200 cuts (deterministic) of the compressed payload of a 3000-byte text, each on a connection of its own, followed by a ping \"probe\": " +
				"none may be echoed as a message other than the original; each gets close 1002 with nothing before it, or (only where the cut removed nothing the " +
				"message needs, as one byte of the final empty block) the original echoed whole",
			Run: randomCuts},
		Case{ID: "X.3.1", Section: "RFC 7692 §7.2.2, §7.2.3.4",
			Desc: "a compressed text frame whose payload is a deflate stream of \"hello\" ending with BFINAL set, followed by de ad be ef, which is no DEFLATE " +
				"block (its first bits say BTYPE 11, reserved) gets close 1002 and no echo; a probe ping after it is not answered. " +
				"(Data after a BFINAL block is not always an error: 13.5.3 is the RFC's valid example.)",
			Run: deflateExchange(plainOffer, [][]byte{frame(true, 4, opText, append(slicesClone(bfinalHello), 0xde, 0xad, 0xbe, 0xef)), pingFrame("probe")}, nil, 1002)},
	)
	return cs
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// smuggle is X.1.n: the hidden frames start at payload offset at (or
// right after the deflate stream, for 0).
func smuggle(at int) func(context.Context, Target) error {
	return func(ctx context.Context, tg Target) error {
		p := slicesClone(bfinalHello)
		if at > len(p) {
			p = append(p, make([]byte, at-len(p))...)
		}
		p = append(p, textFrame("smuggled")...)
		p = append(p, frame(true, 0, opClose, closePayload(4000, "hidden"))...)
		s, err := dialDeflate(ctx, tg, plainOffer)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.send(frame(true, 4, opText, p), pingFrame("probe")); err != nil {
			return err
		}
		err = s.expectClose(closeWait, 1002)
		if err == nil {
			return nil
		}
		// Say what happened in the words of the finding.
		var evs []string
		for {
			ev, rerr := s.next(quietWait)
			if rerr != nil {
				break
			}
			evs = append(evs, ev.String())
		}
		all := strings.Join(evs, "; ")
		switch {
		case strings.Contains(err.Error()+all, `"smuggled"`):
			return fmt.Errorf("SMUGGLED: the server echoed the text frame hidden in a compressed payload: %w (then: %s)", err, all)
		case strings.Contains(err.Error()+all, "4000"):
			return fmt.Errorf("SMUGGLED: the server obeyed the close frame hidden in a compressed payload: %w (then: %s)", err, all)
		}
		if all != "" {
			return fmt.Errorf("%w (then: %s)", err, all)
		}
		return err
	}
}

// randomCuts is X.2.2.
func randomCuts(ctx context.Context, tg Target) error {
	if !tg.Compression {
		return skipf("the target does not negotiate permessage-deflate")
	}
	words := strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards box jolly quartz nymphs and vex every judge")
	r := rand.New(rand.NewPCG(2026, 7692))
	var sb strings.Builder
	for sb.Len() < 3000 {
		sb.WriteString(words[r.IntN(len(words))] + " ")
	}
	orig := []byte(sb.String()[:3000])
	z := compress(orig)
	cuts := make([]int, 200)
	for i := range cuts {
		cuts[i] = 1 + r.IntN(len(z)-1)
	}
	var (
		mu       sync.Mutex
		failures []string
		failed   atomic.Int32
		wg       sync.WaitGroup
		next     atomic.Int32
	)
	one := func(cut int) error {
		s, err := dialDeflate(ctx, tg, plainOffer)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.send(frame(true, 4, opText, z[:cut]), pingFrame("probe")); err != nil {
			return err
		}
		echoed := false
		for {
			ev, err := s.next(closeWait)
			switch {
			case err != nil:
				return err
			case ev.op == opClose:
				if echoed {
					return fmt.Errorf("%v after echoing the original", ev)
				}
				if ev.closeCode() != 1002 {
					return fmt.Errorf("%v; want close 1002", ev)
				}
				return nil
			case ev.op == opText && !echoed:
				if !bytes.Equal(ev.data, orig) {
					return fmt.Errorf("the server echoed %v, not the %d-byte original", ev, len(orig))
				}
				echoed = true
			case ev.op == opPong && string(ev.data) == "probe":
				if !echoed {
					return errors.New("the server answered the probe but neither echoed the message nor closed")
				}
				return nil
			default:
				return fmt.Errorf("got %v", ev)
			}
		}
	}
	for range 6 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cuts) || failed.Load() >= 3 || ctx.Err() != nil {
					return
				}
				if err := one(cuts[i]); err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("cut at byte %d of %d: %v", cuts[i], len(z), err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		return fmt.Errorf("%d cut(s) failed (stopped after 3): %s", len(failures), strings.Join(failures, "; "))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}
