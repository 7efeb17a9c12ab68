package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"

	"github.com/lafgo/laf/internal/rawws"
)

// pipeConn returns a Conn reading what the returned function writes, as a
// client would: masked frames.
func newTestConn(t *testing.T, limit int64, defl bool, in []byte) (*Conn, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	c := newConn(server, in, Config{ReadLimit: limit}, "", defl)
	return c, client
}

// frame encodes a masked client frame; rsv is the RSV bits in place
// (0x40 for RSV1).
func frame(fin bool, rsv, op byte, payload []byte) []byte {
	return rawws.EncodeFrame(fin, rsv>>4, op, payload)
}

func deflate(t *testing.T, p []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(p)
	w.Flush()
	out := buf.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("no sync flush marker")
	}
	return out[:len(out)-4]
}

func TestUnmask(t *testing.T) {
	key := [4]byte{0xA1, 0x02, 0xF3, 0x44}
	buf := make([]byte, 100)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for start := range 9 {
		for n := 0; start+n <= len(buf); n++ {
			got := bytes.Clone(buf[start : start+n])
			Unmask(got, key)
			for i := range got {
				if want := buf[start+i] ^ key[i%4]; got[i] != want {
					t.Fatalf("start %d length %d byte %d: %#x, want %#x", start, n, i, got[i], want)
				}
			}
		}
	}
}

func read(t *testing.T, c *Conn) ([]byte, bool, error) {
	t.Helper()
	buf := make([]byte, 0, 16)
	return c.ReadMessage(&buf, nil)
}

func TestReadFragmentsAndCompressed(t *testing.T) {
	text := bytes.Repeat([]byte("hello wörld "), 50)
	z := deflate(t, text)
	var in []byte
	in = append(in, frame(false, 0, opText, text[:7])...) // cuts ö... no: "hello w" then
	in = append(in, frame(true, 0, opContinuation, text[7:])...)
	in = append(in, frame(false, 0x40, opBinary, z[:10])...)
	in = append(in, frame(false, 0, opContinuation, z[10:20])...)
	in = append(in, frame(true, 0, opContinuation, z[20:])...)
	c, _ := newTestConn(t, 1<<20, true, in)
	for i, wantBin := range []bool{false, true} {
		msg, bin, err := read(t, c)
		if err != nil || bin != wantBin || !bytes.Equal(msg, text) {
			t.Fatalf("message %d: %q %v %v", i, msg[:min(len(msg), 20)], bin, err)
		}
	}
}

func TestUTF8CutAcrossFragments(t *testing.T) {
	s := []byte("aé€😀")
	for cut := 1; cut < len(s); cut++ {
		in := append(frame(false, 0, opText, s[:cut]), frame(true, 0, opContinuation, s[cut:])...)
		c, _ := newTestConn(t, 1<<20, false, in)
		if msg, _, err := read(t, c); err != nil || !bytes.Equal(msg, s) {
			t.Fatalf("cut %d: %q %v", cut, msg, err)
		}
	}
	// A fragment that no continuation can mend fails at once.
	for _, bad := range [][]byte{{0xff}, {0xc0}, {0xed, 0xa0}, {0xf4, 0x90}, {'a', 0xe0, 0x80}} {
		c, _ := newTestConn(t, 1<<20, false, frame(false, 0, opText, bad))
		_, _, err := read(t, c)
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != 1007 {
			t.Fatalf("% x: %v, want 1007", bad, err)
		}
	}
}

func TestUTF8TailAgreesWithCompletion(t *testing.T) {
	// For every 1–3 byte prefix, utf8Tail says completable exactly when
	// some completion is valid UTF-8.
	for b0 := 0x80; b0 < 0x100; b0++ {
		for b1 := 0x7f; b1 < 0xc1; b1++ {
			for _, p := range [][]byte{{byte(b0)}, {byte(b0), byte(b1)}} {
				if utf8.FullRune(p) {
					continue
				}
				want := false
				for c1 := 0x80; c1 < 0xc0 && !want; c1++ {
					for c2 := 0x80; c2 < 0xc0 && !want; c2 += 0x3f {
						q := append(bytes.Clone(p), byte(c1), byte(c2), 0x80)
						q = q[:max(len(p), 1)+0]
						full := append(bytes.Clone(p), []byte{byte(c1), byte(c2), 0x80}[len(p)-1:]...)
						for l := len(p) + 1; l <= len(full); l++ {
							if utf8.FullRune(full[:l]) {
								want = utf8.Valid(full[:l])
								break
							}
						}
						_ = q
					}
				}
				got := utf8Tail(append([]byte("ok"), p...)) == 2
				if got != want {
					t.Fatalf("% x: utf8Tail says %v, want %v", p, got, want)
				}
			}
		}
	}
}

func TestInflateStrict(t *testing.T) {
	check := func(name string, z, want []byte, wantCode int) {
		t.Helper()
		zb := bytes.Clone(z)
		out, perr := inflate(nil, &zb, 1<<20)
		switch {
		case wantCode == 0 && (perr != nil || !bytes.Equal(out, want)):
			t.Errorf("%s: %q %v", name, out, perr)
		case wantCode != 0 && (perr == nil || perr.Code != wantCode):
			t.Errorf("%s: %q %v, want %d", name, out, perr, wantCode)
		}
	}
	// Huffman-coded: a cut anywhere but the end is no block boundary.
	text := bytes.Repeat([]byte("hello hello hello hello worldddddddd "), 20)
	z := deflate(t, text)
	check("huffman", z, text, 0)
	for cut := 1; cut < len(z); cut++ {
		check(fmt.Sprintf("huffman cut at %d", cut), z[:cut], nil, 1002)
	}
	// Stored (incompressible): a payload cut inside the block's data must
	// not take the 00 00 ff ff for the data it lacks.
	noise := make([]byte, 300)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	z = deflate(t, noise)
	check("stored", z, noise, 0)
	for cut := 2; cut < len(z); cut++ { // at 1, "00" is a whole empty message
		check(fmt.Sprintf("stored cut at %d", cut), z[:cut], nil, 1002)
	}
	// A message that really ends in 00 00 ff ff.
	ending := append([]byte("data"), 0, 0, 0xff, 0xff)
	check("ends in the marker", deflate(t, ending), ending, 0)
	// A final block, then a hidden frame.
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(text)
	w.Close()
	check("final block", buf.Bytes(), text, 0)
	check("final block and more", append(buf.Bytes(), frame(true, 0, opText, []byte("smuggled"))...), nil, 1002)
	check("RFC 7692 §7.2.3.3: a final block and a trimmed sync flush", []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, []byte("Hello"), 0)
	check("RFC 7692 §7.2.3.2: a sync flush", []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, []byte("Hello"), 0)
	check("a final block and two bytes more", []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00}, nil, 1002)
	check("empty", nil, nil, 0)
	check("empty, as RFC 7692 §7.2.3.6 sends it", []byte{0}, nil, 0)
	zb := deflate(t, text)
	if _, perr := inflate(nil, &zb, int64(len(text)-1)); perr == nil || perr.Code != 1009 {
		t.Errorf("over the limit: %v", perr)
	}
}

func TestHeaderOverLimitFailsAtOnce(t *testing.T) {
	for _, n := range []uint64{1 << 62, 1<<63 - 1, 1025} {
		b := []byte{0x82, 0x80 | 127}
		b = binary.BigEndian.AppendUint64(b, n)
		b = append(b, 1, 2, 3, 4, 'x', 'y')
		c, _ := newTestConn(t, 1024, false, b)
		_, _, err := read(t, c)
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != 1009 {
			t.Fatalf("length %d: %v, want 1009", n, err)
		}
	}
	b := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, 1<<63)
	c, _ := newTestConn(t, 1024, false, append(b, 1, 2, 3, 4))
	_, _, err := read(t, c)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != 1002 {
		t.Fatalf("length 2^63: %v, want 1002", err)
	}
}

func TestNegotiateDeflate(t *testing.T) {
	base := "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	for offer, want := range map[string]string{
		"permessage-deflate":                                                         base,
		"permessage-deflate; client_max_window_bits":                                 base,
		"permessage-deflate; client_max_window_bits=10":                              base,
		"permessage-deflate; server_max_window_bits=15":                              base + "; server_max_window_bits=15",
		`permessage-deflate; server_max_window_bits="15"`:                            base + "; server_max_window_bits=15",
		"permessage-deflate; server_max_window_bits=10":                              "",
		"permessage-deflate; server_max_window_bits":                                 "",
		"permessage-deflate; client_max_window_bits=abc":                             "",
		"permessage-deflate; client_max_window_bits=7":                               "",
		"permessage-deflate; client_max_window_bits=16":                              "",
		"permessage-deflate; client_max_window_bits=":                                "",
		"permessage-deflate; client_max_window_bits=08":                              "",
		"permessage-deflate; server_no_context_takeover=1":                           "",
		"permessage-deflate; client_no_context_takeover; client_no_context_takeover": "",
		"permessage-deflate; foo":                                                    "",
		"x-webkit-deflate-frame":                                                     "",
		"permessage-deflate; server_max_window_bits=10, permessage-deflate":          base,
	} {
		if got := negotiateDeflate([]string{offer}); got != want {
			t.Errorf("%q: %q, want %q", offer, got, want)
		}
	}
}

func TestPingAnsweredAfterOurClose(t *testing.T) {
	c, client := newTestConn(t, 1024, false, nil)
	go func() {
		_ = c.WriteClose(1000, "")
	}()
	hdr := make([]byte, 4)
	if _, err := client.Read(hdr); err != nil || hdr[0] != 0x88 {
		t.Fatalf("close frame: % x %v", hdr, err)
	}
	go client.Write(frame(true, 0, opPing, []byte("p")))
	errc := make(chan error, 1)
	go func() { _, _, err := read(t, c); errc <- err }()
	pong := make([]byte, 3)
	if _, err := client.Read(pong); err != nil || pong[0] != 0x8A || pong[2] != 'p' {
		t.Fatalf("pong: % x %v", pong, err)
	}
	go client.Write(frame(true, 0, opClose, []byte{0x03, 0xe8}))
	var ce *CloseError
	if err := <-errc; !errors.As(err, &ce) || ce.Code != 1000 {
		t.Fatalf("%v, want the peer's close", err)
	}
	if c.State() != Closed {
		t.Fatalf("state %v", c.State())
	}
}
