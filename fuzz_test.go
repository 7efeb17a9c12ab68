package laf_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	kflate "github.com/klauspost/compress/flate"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/internal/rawws"
	"go.uber.org/goleak"
)

const (
	// fuzzReadLimit is the fuzzed endpoint's read limit.
	fuzzReadLimit = 1024
	// fuzzTimeout bounds one input: the server must have closed or
	// dropped the connection, and fired the close event, within it.
	fuzzTimeout = 10 * time.Second
)

// FuzzSocketBytes writes arbitrary bytes to a live socket just after the
// opening handshake, then half-closes the connection, and checks what the
// server did. With deflate, the handshake negotiates permessage-deflate
// (WithCompression), so that frames with RSV1 set are compressed messages
// that the server inflates.
//
//   - The server never panics, and the Func (which echoes and never
//     fails) sees no panic or error of its own: Stats.Panics and
//     HandlerErrors stay 0.
//   - The socket's events keep their order: one connection event first,
//     no event after the one close event.
//   - The server answers with valid frames only, and nothing after its
//     close frame (parsed with internal/rawws), and ends the connection,
//     by a close frame or a drop, within fuzzTimeout: it never hangs.
//   - The close has the cause and code the bytes call for, and the Func
//     got exactly the messages that the bytes complete before it, in
//     order and byte for byte, as a strict reading of RFC 6455 and RFC
//     7692 says (fuzzPredict): a frame header that takes a message past
//     the read limit gets CauseReadLimit and 1009 at once, whatever follows
//     it, and so does a compressed message that inflates past the limit;
//     a protocol error gets CauseProtocol and 1002, or 1007 for invalid
//     UTF-8 (text checked after each frame); a close frame from the peer
//     CausePeer and its code; bytes that end inside a header or a payload,
//     or between frames, CauseAbnormal and no close frame. The server's
//     close frame, if one gets through, has the close event's code.
//   - Memory stays bounded by the read limit: what the process allocates
//     while serving the input is at most fuzzAllocBound(len(input)), which
//     grows neither with the lengths that frame headers claim nor with how
//     far a compressed message would inflate.
//
// The seed corpus, testdata/fuzz/FuzzSocketBytes, holds the inputs of
// fuzzSeeds (valid, fragmented and interleaved frames, reserved opcodes and
// bits, huge and non-minimal lengths, lengths over the limit with few bytes
// behind them, bytes that end in a header or a payload, bad UTF-8 whole and
// cut between fragments, ping floods, close frames with bad payloads,
// compressed messages, RFC 7692's examples, a deflate bomb, corrupt,
// truncated and cut-short deflate data, bytes after a final block, a
// message and a close frame hidden in a compressed payload);
// TestFuzzSocketBytesSeeds keeps the files in step with it, and
// TestFuzzPredict says how each must close. The regress-* files are inputs
// the fuzzer found, which once failed. Run the
// fuzzer with
//
//	go test -run '^$' -fuzz FuzzSocketBytes -fuzztime 5m .
func FuzzSocketBytes(f *testing.F) {
	leaks := goleak.IgnoreCurrent()
	plain, deflate := newFuzzServer(f, false), newFuzzServer(f, true)
	f.Cleanup(func() {
		plain.close()
		deflate.close()
		goleak.VerifyNone(f, leaks)
	})
	f.Fuzz(func(t *testing.T, compress bool, in []byte) {
		if compress {
			deflate.check(t, in)
		} else {
			plain.check(t, in)
		}
	})
}

// fuzzServer is an Endpoint whose Func echoes every message and records
// what it saw of each socket, by the client's address.
type fuzzServer struct {
	ep      *laf.Endpoint
	srv     *httptest.Server
	deflate bool // negotiate permessage-deflate

	mu    sync.Mutex
	socks map[string]*fuzzSock
}

type fuzzSock struct {
	connected, closed bool
	faults            []string // events out of order
	cause             laf.CloseCause
	code              int
	errs              []error  // error events' errors
	msgs              [][]byte // message events' payloads
	done              chan struct{}
}

func newFuzzServer(tb testing.TB, deflate bool) *fuzzServer {
	fs := &fuzzServer{socks: make(map[string]*fuzzSock), deflate: deflate}
	opts := []laf.Option{laf.WithReadLimit(fuzzReadLimit), laf.WithCloseTimeout(2 * time.Second)}
	if deflate {
		// Inflate what comes in, and compress nothing that goes out, so
		// that rawws, which negotiates no extension, can parse it.
		opts = append(opts, laf.WithCompression(1<<30))
	}
	fs.ep = laf.Handler(fs.fn, opts...)
	fs.srv = httptest.NewServer(fs.ep)
	return fs
}

func (fs *fuzzServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = fs.ep.Shutdown(ctx)
	fs.srv.Close()
}

// sock returns the record of the socket dialled from addr, making it if
// need be: the Func or the test may get there first.
func (fs *fuzzServer) sock(addr string) *fuzzSock {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	s := fs.socks[addr]
	if s == nil {
		s = &fuzzSock{done: make(chan struct{})}
		fs.socks[addr] = s
	}
	return s
}

func (fs *fuzzServer) forget(addr string) {
	fs.mu.Lock()
	delete(fs.socks, addr)
	fs.mu.Unlock()
}

func (fs *fuzzServer) fn(ctx *laf.FunctionContext) error {
	s := fs.sock(ctx.Request.RemoteAddr)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if s.closed {
		s.faults = append(s.faults, ctx.Method+" after the close event")
		return nil
	}
	if !s.connected && ctx.Method != laf.MethodConnection {
		s.faults = append(s.faults, ctx.Method+" before the connection event")
	}
	switch ctx.Method {
	case laf.MethodConnection:
		if s.connected {
			s.faults = append(s.faults, "connection event twice")
		}
		s.connected = true
	case laf.MethodMessage:
		s.msgs = append(s.msgs, bytes.Clone(ctx.Params.Data))
		// Errors are the socket closing: not the Func's fault.
		_ = ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
	case laf.MethodError:
		s.errs = append(s.errs, ctx.Params.Err)
	case laf.MethodClose:
		s.closed = true
		s.cause, s.code = ctx.Params.Cause, ctx.Params.Code
		close(s.done)
	}
	return nil
}

// check runs one input.
func (fs *fuzzServer) check(t *testing.T, in []byte) {
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	deadline := time.Now().Add(fuzzTimeout)

	conn, br := fuzzDial(t, fs.srv.Listener.Addr().String(), fs.deflate)
	defer conn.Close()
	addr := conn.LocalAddr().String()
	defer fs.forget(addr)
	s := fs.sock(addr)
	_ = conn.SetDeadline(deadline)

	// Write and read at once: a server that answers as it reads (pongs,
	// echoes) must not wait on a client that is still writing.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = conn.Write(in) // fails once the server has dropped the connection
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	stream, err := io.ReadAll(br)
	<-wrote
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server neither closed nor dropped the connection within %v; it sent %d bytes:\n%s",
			fuzzTimeout, len(stream), rawws.Dump(stream, max(0, len(stream)-256), len(stream)))
	}
	// io.ReadAll ends at EOF (the server closed), or with a reset (it
	// closed with input unread): both are drops.

	select {
	case <-s.done:
	case <-time.After(time.Until(deadline)):
		t.Fatalf("no close event within %v", fuzzTimeout)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	fs.mu.Lock()
	faults, cause, code, errs, msgs := s.faults, s.cause, s.code, s.errs, s.msgs
	fs.mu.Unlock()
	if len(faults) > 0 {
		t.Fatalf("events out of order: %v", faults)
	}
	if st := fs.ep.Stats(); st.Panics != 0 || st.HandlerErrors != 0 {
		t.Fatalf("Stats.Panics %d, HandlerErrors %d: the Func neither panics nor fails", st.Panics, st.HandlerErrors)
	}

	frames, perr := rawws.Parse(stream)
	if perr != nil {
		t.Fatalf("the server sent an invalid frame: %v\n%s", perr, rawws.Dump(stream, 0, 512))
	}
	if err := rawws.CheckClosed(frames); err != nil {
		t.Fatalf("after its close frame: %v", err)
	}
	serverCode := 0 // no close frame
	if i := rawws.FirstClose(frames); i >= 0 && !frames[i].Truncated {
		serverCode, _, _ = frames[i].CloseStatus()
	}

	want := fuzzPredict(in, fuzzReadLimit, fs.deflate)
	if cause != want.cause || code != want.code {
		t.Fatalf("close cause %v and code %d (errors %v), want %v and %d: %s", cause, code, errs, want.cause, want.code, want.why)
	}
	if !fuzzSameMessages(msgs, want.msgs) {
		got := "none"
		if len(msgs) > 0 {
			last := msgs[len(msgs)-1]
			got = fmt.Sprintf("the last %q", last[:min(64, len(last))])
		}
		t.Fatalf("the Func got %d messages (%s), not the %d that the bytes complete before the close (%s)", len(msgs), got, len(want.msgs), want.why)
	}
	if serverCode != 0 && serverCode != code {
		t.Fatalf("the close event has cause %v and code %d, but the server's close frame has %d", cause, code, serverCode)
	}
	switch cause {
	case laf.CauseReadLimit:
		if code != 1009 {
			t.Fatalf("read limit: the close event has code %d, want 1009", code)
		}
	case laf.CauseProtocol:
		if code != 1002 && code != 1007 {
			t.Fatalf("protocol error: the close event has code %d, want 1002 or 1007", code)
		}
	case laf.CauseAbnormal:
		if serverCode != 0 {
			t.Fatalf("the connection dropped, yet the server sent a close frame (%d)", serverCode)
		}
	case laf.CausePeer:
	default:
		t.Fatalf("close cause %v (code %d): bytes from the peer cannot cause it", cause, code)
	}

	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > fuzzAllocBound(len(in)) {
		t.Fatalf("serving %d bytes allocated %d bytes, over the bound of %d", len(in), alloc, fuzzAllocBound(len(in)))
	}
}

// fuzzAllocBound is the most that serving an input of n bytes may
// allocate, in the whole process (the test's client included): a fixed cost
// per connection, and a cost per input byte. The costliest bytes are small
// frames: an echoed empty message of 6 bytes costs about 530 bytes (1.5 KB
// under -race, whose sync.Pool drops a quarter of what it is given), a
// ping about 320. Nothing in the bound grows with the lengths that frame
// headers claim, nor with how far a message would inflate: the read limit
// bounds those. (Under -race, an input of hundreds of small compressed
// messages would pass the bound: each inflater the pool drops costs its
// 32 KiB window again. No seed is such an input, and the fuzzer runs
// without -race.)
func fuzzAllocBound(n int) uint64 {
	return 1<<20 + 4*fuzzReadLimit + 512*uint64(n)
}

// fuzzDial connects to addr (the httptest server, on loopback) and does
// the opening handshake by hand, offering permessage-deflate if deflate is
// set, and leaves the connection to write raw bytes on. br holds what the
// server sent after its 101 response.
func fuzzDial(t *testing.T, addr string, deflate bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	// Each input leaves a connection in TIME_WAIT for a minute: spread
	// them over many loopback source addresses, so that thousands of
	// inputs a second neither run out of ports nor slow connect down.
	src := &net.TCPAddr{IP: net.IPv4(127, 91, 0, byte(1+fuzzSources.Add(1)%254))}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: src}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if deflate {
		req += "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		t.Fatalf("handshake: %s", resp.Status)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); deflate != strings.HasPrefix(ext, "permessage-deflate") {
		conn.Close()
		t.Fatalf("handshake: Sec-WebSocket-Extensions %q, deflate offered: %v", ext, deflate)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br
}

// fuzzSources counts the connections fuzzDial made, to pick their source
// address.
var fuzzSources atomic.Uint32

// fuzzWant is the close an input calls for.
type fuzzWant struct {
	cause laf.CloseCause
	code  int // the close event's: 1006 for a drop, the peer's for its close
	why   string
	// msgs are the messages the Func must get, in order, before the close
	// event: those that the bytes complete before the close, and no other.
	msgs [][]byte
}

// fuzzPredict reads in as a strict RFC 6455 and RFC 7692 server with read
// limit limit reads a client's bytes, frame by frame, and says how the
// socket must close, and which messages the Func gets before it. The first
// of these ends the reading:
//
//   - The bytes end (the peer half-closed): CauseAbnormal, with no close
//     frame. A frame is judged only once its header has arrived whole, mask
//     key included, and acted on only once its payload has: bytes that end
//     inside a header or a payload end the reading there.
//   - A fault in a header (a 64-bit length with its top bit set, RSV2 or
//     RSV3, RSV1 anywhere but on the first frame of a text or binary
//     message with deflate, a reserved opcode, an unmasked frame, a
//     fragmented control frame or one over 125 bytes, a continuation with
//     no message, a new message inside a fragmented one), a close frame
//     whose payload is 1 byte or whose code may not be sent, deflate data
//     that does not inflate, or does not end where its payload does:
//     CauseProtocol and 1002.
//   - Invalid UTF-8: a close frame's reason, a compressed text message once
//     inflated, or an uncompressed text message as far as it has come after
//     each of its frames (a character cut at the end of a fragment, that the
//     next could complete, waits for it): CauseProtocol and 1007.
//   - A data frame whose header claims a length that takes its message past
//     the limit (uncompressed), or past the most compressed bytes a message
//     within the limit may take, 2*limit+1024 (compressed), however few
//     bytes follow; or a compressed message that inflates past the limit:
//     CauseReadLimit and 1009.
//   - A valid close frame: CausePeer, with its code (1005 if it has none).
//
// Control frames may come between the frames of a message, compressed or
// not. A compressed message is inflated once its final frame has arrived,
// as fuzzInflate says.
func fuzzPredict(in []byte, limit int, deflate bool) fuzzWant {
	var (
		inMsg, text, compressed bool
		msg                     []byte   // the current message's payload: unmasked, still compressed if compressed
		msgs                    [][]byte // the messages completed, as the Func must get them
	)
	end := func(cause laf.CloseCause, code int, why string) fuzzWant {
		return fuzzWant{cause: cause, code: code, why: why, msgs: msgs}
	}
	ended := func(why string) fuzzWant {
		if inMsg {
			why += ", inside a message"
		}
		return end(laf.CauseAbnormal, 1006, why)
	}
	fault := func(why string) fuzzWant { return end(laf.CauseProtocol, 1002, why) }
	badUTF8 := func(why string) fuzzWant { return end(laf.CauseProtocol, 1007, why) }
	tooBig := func(why string) fuzzWant { return end(laf.CauseReadLimit, 1009, why) }
	for p := 0; ; {
		if p == len(in) {
			return ended("the bytes end between frames")
		}
		// The header: 2 bytes, a 16- or 64-bit length, the mask key.
		size := 2
		if len(in)-p >= 2 {
			switch in[p+1] & 0x7f {
			case 126:
				size += 2
			case 127:
				size += 8
			}
			if in[p+1]&0x80 != 0 {
				size += 4
			}
		}
		if len(in)-p < size {
			return ended("the bytes end in a frame header")
		}
		h := in[p : p+size]
		p += size
		fin, rsv1, rsv23, op := h[0]&0x80 != 0, h[0]&0x40 != 0, h[0]&0x30, h[0]&0x0f
		masked, n := h[1]&0x80 != 0, uint64(h[1]&0x7f)
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(h[2:]))
		case 127:
			n = binary.BigEndian.Uint64(h[2:])
		}
		var key []byte
		if masked {
			key = h[size-4:]
		}
		control := op&0x8 != 0
		switch {
		case n>>63 != 0:
			return fault("a 64-bit length with its top bit set")
		case rsv23 != 0:
			return fault("RSV2 or RSV3 set")
		case op > rawws.OpBinary && op < rawws.OpClose || op > rawws.OpPong:
			return fault("reserved opcode " + strconv.Itoa(int(op)))
		case !masked:
			return fault("an unmasked frame from the client")
		case control && rsv1:
			return fault("RSV1 on a control frame")
		case control && !fin:
			return fault("a fragmented control frame")
		case control && n > 125:
			return fault("a control frame over 125 bytes")
		case op == rawws.OpContinuation && !inMsg:
			return fault("a continuation frame with no message to continue")
		case op == rawws.OpContinuation && rsv1:
			return fault("RSV1 on a continuation frame")
		case !control && op != rawws.OpContinuation && inMsg:
			return fault("a new message inside a fragmented one")
		case !control && rsv1 && !deflate:
			return fault("RSV1 without permessage-deflate")
		}

		if control {
			if uint64(len(in)-p) < n {
				return ended("the bytes end in a control frame's payload")
			}
			payload := unmask(in[p:p+int(n)], key)
			p += int(n)
			if op != rawws.OpClose {
				continue
			}
			switch {
			case len(payload) == 0:
				return end(laf.CausePeer, 1005, "a close frame with no payload")
			case len(payload) == 1:
				return fault("a close frame of 1 byte")
			}
			code := int(binary.BigEndian.Uint16(payload))
			switch {
			case !fuzzValidCloseCode(code):
				return fault("a close frame with a code that may not be sent")
			case !utf8.Valid(payload[2:]):
				return badUTF8("a close frame whose reason is not UTF-8")
			}
			return end(laf.CausePeer, code, "a valid close frame")
		}

		if op != rawws.OpContinuation {
			inMsg, text, compressed, msg = true, op == rawws.OpText, rsv1, nil
		}
		if most := fuzzMaxPayload(limit, compressed); uint64(len(msg))+n > uint64(most) {
			what := "message"
			if compressed {
				what = "compressed message"
			}
			return tooBig(fmt.Sprintf("a frame header that takes a %s to %d bytes, past %d", what, uint64(len(msg))+n, most))
		}
		if uint64(len(in)-p) < n {
			return ended("the bytes end in a data frame's payload")
		}
		msg = append(msg, unmask(in[p:p+int(n)], key)...)
		p += int(n)
		if text && !compressed && !fuzzTextSoFar(msg, fin) {
			return badUTF8("a text message that is not UTF-8")
		}
		if !fin {
			continue
		}
		inMsg = false
		if compressed {
			out, err := fuzzInflate(msg, limit)
			switch {
			case errors.Is(err, errFuzzTooBig):
				return tooBig(fmt.Sprintf("a compressed message that inflates past %d bytes", limit))
			case err != nil:
				return fault("deflate data that does not inflate as a message: " + err.Error())
			case text && !utf8.Valid(out):
				return badUTF8("a compressed text message that is not UTF-8")
			}
			msg = out
		}
		msgs = append(msgs, msg)
	}
}

// fuzzMaxPayload is the most payload a message may take: limit, or, if it
// is compressed, twice the limit and 1 KiB, which leaves deflate room for
// any sensible encoding of a message within the limit.
func fuzzMaxPayload(limit int, compressed bool) int {
	if compressed {
		return 2*limit + 1024
	}
	return limit
}

// fuzzTextSoFar reports whether msg, a text message as far as it has come,
// may go on: it is valid UTF-8, or, if more fragments follow (not fin),
// valid but for a character cut at its end that they could complete.
func fuzzTextSoFar(msg []byte, fin bool) bool {
	if utf8.Valid(msg) {
		return true
	}
	if fin {
		return false
	}
	for i := max(0, len(msg)-(utf8.UTFMax-1)); i < len(msg); i++ {
		if fuzzCutRunes()[string(msg[i:])] && utf8.Valid(msg[:i]) {
			return true
		}
	}
	return false
}

// fuzzCutRunes holds every proper prefix of the UTF-8 encoding of every
// character: the ways a character can be cut.
var fuzzCutRunes = sync.OnceValue(func() map[string]bool {
	cut := make(map[string]bool)
	var b []byte
	for r := rune(0x80); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue // a surrogate
		}
		b = utf8.AppendRune(b[:0], r)
		for n := 1; n < len(b); n++ {
			cut[string(b[:n])] = true
		}
	}
	return cut
})

// errFuzzTooBig is fuzzInflate's error for a message that inflates past the
// limit.
var errFuzzTooBig = errors.New("inflates past the limit")

// fuzzInflate inflates a whole compressed message's payload z as RFC 7692
// says, with no context takeover, and as laf does: with
// klauspost/compress's flate, from a bytes.Reader (a ByteReader, so that
// flate reads no further than it must), RFC 7692's 00 00 ff ff appended,
// and an empty final block after it. An empty payload is an empty message.
// It fails with errFuzzTooBig once more than limit bytes come out; with
// the decoder's error for data that is not deflate, or that ends before
// its end (io.ErrUnexpectedEOF); and for data that does not end exactly
// where the payload does, where the sender ended it: with a final block
// (and perhaps the one 00 byte a trimmed sync flush leaves after it),
// or with the header of the empty stored block of a sync flush, whose LEN
// and NLEN are the 00 00 ff ff the sender took off. Data that ends before
// would leave bytes after the message, a message hidden in another; data
// that ends after, inside a block, would be a message cut short.
func fuzzInflate(z []byte, limit int) ([]byte, error) {
	if len(z) == 0 {
		return nil, nil
	}
	out, used, err := fuzzInflateAll(append(z[:len(z):len(z)], 0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff), limit)
	switch {
	case err != nil:
		return nil, err
	case used == len(z):
		return out, nil // a final block ends the payload
	case used == len(z)-1 && z[len(z)-1] == 0:
		// A final block, then what a sync flush leaves once its 00 00 ff
		// ff is taken off: the header byte of an empty stored block (RFC
		// 7692 §7.2.3.3 gives f3 48 cd c9 c9 07 00 00 for "Hello").
		return out, nil
	case used != len(z)+9:
		return nil, fmt.Errorf("the deflate data ends after %d of the payload's %d bytes", used, len(z))
	}
	// The 00 00 ff ff must be the LEN and NLEN of the empty stored block
	// whose header ends the payload, not the data of a stored block that
	// the payload cut short. Then a stored block of one byte in place of
	// the empty one inflates to the same, and that byte.
	alt, altUsed, err := fuzzInflateAll(append(z[:len(z):len(z)], 0x01, 0x00, 0xfe, 0xff, '!', 0x01, 0x00, 0x00, 0xff, 0xff), limit+1)
	if err != nil || altUsed != len(z)+10 || !bytes.Equal(alt, append(out[:len(out):len(out)], '!')) {
		return nil, errors.New("the deflate data is cut short: the payload ends inside a block")
	}
	return out, nil
}

// fuzzInflateAll inflates src, a whole deflate stream, and returns what it
// inflates to and how many bytes of src it took, or errFuzzTooBig once
// more than limit bytes come out.
func fuzzInflateAll(src []byte, limit int) (out []byte, used int, err error) {
	in := bytes.NewReader(src)
	r := kflate.NewReader(in)
	defer r.Close()
	out, err = io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case len(out) > limit:
		return nil, 0, errFuzzTooBig
	case err != nil:
		return nil, 0, err
	}
	return out, len(src) - in.Len(), nil
}

func fuzzSameMessages(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func unmask(b, key []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[i] ^ key[i%4]
	}
	return out
}

// fuzzValidCloseCode says whether a close frame may carry code (RFC 6455
// §7.4): 1000–1003, 1007–1014 (RFC 6455 and the IANA registry) and
// 3000–4999. 1004–1006 and 1015 are reserved, never sent; 0–999 are not
// used, and 2000–2999 are for extensions, none of which is negotiated.
func fuzzValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// fuzzSeeds are the inputs of the seed corpus, by file name.
func fuzzSeeds() map[string]fuzzSeed {
	f := func(fin bool, rsv, op byte, payload []byte) []byte { return fuzzFrame(fin, rsv, op, true, payload) }
	text := func(s string) []byte { return f(true, 0, rawws.OpText, []byte(s)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	closeFrame := func(code int, reason string) []byte {
		return f(true, 0, rawws.OpClose, append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...))
	}
	pings := func(n int) []byte {
		var b []byte
		for i := range n {
			b = append(b, f(true, 0, rawws.OpPing, []byte(strconv.Itoa(i)))...)
		}
		return b
	}
	// header writes a frame header claiming length n, with a mask key,
	// and no payload.
	header := func(op byte, n uint64) []byte {
		b := []byte{0x80 | op, 0x80 | 127}
		b = binary.BigEndian.AppendUint64(b, n)
		return append(b, 1, 2, 3, 4)
	}
	// header16 writes a frame header claiming length n < 65536 in 16 bits,
	// with a mask key, and no payload.
	header16 := func(op byte, n int) []byte {
		b := []byte{0x80 | op, 0x80 | 126}
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		return append(b, 1, 2, 3, 4)
	}
	plain := map[string][]byte{
		"seed-empty":                          nil,
		"seed-text":                           text("hello"),
		"seed-binary":                         f(true, 0, rawws.OpBinary, []byte{0, 1, 2, 0xff}),
		"seed-text-then-close-1000":           cat(text("hi"), closeFrame(1000, "bye")),
		"seed-close-empty":                    f(true, 0, rawws.OpClose, nil),
		"seed-close-4000-reason":              closeFrame(4000, "done"),
		"seed-close-1-byte":                   f(true, 0, rawws.OpClose, []byte{3}),
		"seed-close-code-1005":                closeFrame(1005, ""),
		"seed-close-code-999":                 closeFrame(999, ""),
		"seed-close-code-2000":                closeFrame(2000, ""),
		"seed-close-reason-bad-utf8":          closeFrame(1000, "\xff\xfe"),
		"seed-close-125-bytes":                closeFrame(1000, strings.Repeat("r", 123)),
		"seed-close-126-bytes":                closeFrame(1000, strings.Repeat("r", 124)),
		"seed-fragmented-text":                cat(f(false, 0, rawws.OpText, []byte("hel")), f(false, 0, rawws.OpContinuation, []byte("l")), f(true, 0, rawws.OpContinuation, []byte("o"))),
		"seed-fragmented-ping-between":        cat(f(false, 0, rawws.OpBinary, []byte("ab")), f(true, 0, rawws.OpPing, []byte("p")), f(true, 0, rawws.OpContinuation, []byte("cd"))),
		"seed-fragmented-utf8-split":          cat(f(false, 0, rawws.OpText, []byte("\xe2\x82")), f(true, 0, rawws.OpContinuation, []byte("\xac"))),
		"seed-continuation-first":             f(true, 0, rawws.OpContinuation, []byte("x")),
		"seed-new-message-in-fragmented":      cat(f(false, 0, rawws.OpText, []byte("a")), text("b")),
		"seed-reserved-opcode-3":              f(true, 0, 3, []byte("x")),
		"seed-reserved-opcode-11":             f(true, 0, 11, nil),
		"seed-rsv1":                           f(true, 4, rawws.OpText, []byte("x")),
		"seed-rsv3-on-ping":                   f(true, 1, rawws.OpPing, nil),
		"seed-unmasked-text":                  fuzzFrame(true, 0, rawws.OpText, false, []byte("hi")),
		"seed-ping-fragmented":                f(false, 0, rawws.OpPing, []byte("p")),
		"seed-ping-126-bytes":                 f(true, 0, rawws.OpPing, bytes.Repeat([]byte("p"), 126)),
		"seed-ping-flood-500":                 pings(500),
		"seed-pong-unsolicited":               f(true, 0, rawws.OpPong, []byte("x")),
		"seed-text-bad-utf8":                  text("\xff\xfe\xfd"),
		"seed-text-overlong-utf8":             text("\xc0\xaf"),
		"seed-text-surrogate-utf8":            text("\xed\xa0\x80"),
		"seed-binary-bad-utf8-is-fine":        f(true, 0, rawws.OpBinary, []byte("\xff\xfe")),
		"seed-exactly-the-limit":              f(true, 0, rawws.OpBinary, bytes.Repeat([]byte("x"), fuzzReadLimit)),
		"seed-one-over-the-limit":             f(true, 0, rawws.OpBinary, bytes.Repeat([]byte("x"), fuzzReadLimit+1)),
		"seed-over-the-limit-fragmented":      cat(f(false, 0, rawws.OpText, bytes.Repeat([]byte("x"), 600)), f(true, 0, rawws.OpContinuation, bytes.Repeat([]byte("y"), 600))),
		"seed-huge-length-short-payload":      append(header(rawws.OpBinary, 1<<40), "only a few bytes"...),
		"seed-huge-length-2000-bytes":         append(header(rawws.OpBinary, 1<<40), bytes.Repeat([]byte("z"), 2000)...),
		"seed-length-top-bit-set":             header(rawws.OpText, 1<<63|5),
		"seed-length-max-uint63":              append(header(rawws.OpBinary, 1<<63-1), "abc"...),
		"seed-length-16bit-nonminimal":        cat([]byte{0x81, 0x80 | 126, 0, 2, 0, 0, 0, 0}, []byte("hi")),
		"seed-length-64bit-nonminimal":        cat([]byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, []byte("x")),
		"seed-truncated-header":               []byte{0x81},
		"seed-truncated-mask":                 []byte{0x81, 0x85, 1, 2},
		"seed-truncated-payload":              text("hello")[:8],
		"seed-many-small-messages":            bytes.Repeat(text("m"), 300),
		"seed-data-after-close":               cat(closeFrame(1000, ""), text("late")),
		"seed-http-request-again":             []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"seed-zero-bytes":                     make([]byte, 64),
		"seed-all-ones":                       bytes.Repeat([]byte{0xff}, 64),
		"seed-empty-text-frames-fragmented":   cat(f(false, 0, rawws.OpText, nil), f(false, 0, rawws.OpContinuation, nil), f(true, 0, rawws.OpContinuation, nil)),
		"seed-limit-plus-one-declared":        append(header16(rawws.OpBinary, fuzzReadLimit+1), "abc"...),
		"seed-limit-declared-short":           append(header16(rawws.OpBinary, fuzzReadLimit), "abc"...),
		"seed-length-2-62-10-bytes":           append(header(rawws.OpBinary, 1<<62), "0123456789"...),
		"seed-length-max-uint63-10-bytes":     append(header(rawws.OpText, 1<<63-1), "0123456789"...),
		"seed-over-the-limit-at-header":       cat(f(false, 0, rawws.OpBinary, bytes.Repeat([]byte("x"), 1000)), []byte{0x80, 0x80 | 25, 1, 2, 3, 4}, []byte("ab")),
		"seed-truncated-64bit-length":         []byte{0x82, 127, 0, 0, 0},
		"seed-truncated-64bit-length-mask":    header(rawws.OpText, 5)[:12],
		"seed-unmasked-header-only":           []byte{0x81, 0x05},
		"seed-truncated-ping":                 f(true, 0, rawws.OpPing, []byte("ping"))[:8],
		"seed-truncated-close":                closeFrame(1000, "bye")[:9],
		"seed-truncated-fragment":             cat(f(false, 0, rawws.OpText, []byte("hel")), f(true, 0, rawws.OpContinuation, []byte("lo"))[:7]),
		"seed-fragmented-utf8-cut-then-end":   f(false, 0, rawws.OpText, []byte("ab\xe2\x82")),
		"seed-fragmented-utf8-cut-4-byte":     cat(f(false, 0, rawws.OpText, []byte("\xf0")), f(false, 0, rawws.OpContinuation, []byte("\x9f\x98")), f(true, 0, rawws.OpContinuation, []byte("\x80!"))),
		"seed-fragmented-utf8-uncompletable":  f(false, 0, rawws.OpText, []byte("a\xe0\x80")),
		"seed-fragmented-bad-utf8-fails-fast": cat(text("ok"), f(false, 0, rawws.OpText, []byte("a\xffb"))),
		"seed-fragmented-utf8-cut-at-fin":     cat(f(false, 0, rawws.OpText, []byte("a\xe2")), f(true, 0, rawws.OpContinuation, []byte("\x82"))),
		"seed-text-cut-at-end":                text("a\xe2\x82"),
		"seed-close-between-fragments":        cat(f(false, 0, rawws.OpText, []byte("a")), closeFrame(1001, "away")),
	}
	// z compresses b as a message of RFC 7692: sync-flushed without the
	// flush's 00 00 ff ff, or ended by a final block.
	z := func(b []byte, final bool) []byte {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestSpeed)
		_, _ = w.Write(b)
		if final {
			_ = w.Close()
			return buf.Bytes()
		}
		_ = w.Flush()
		return buf.Bytes()[:buf.Len()-4]
	}
	zf := func(fin bool, op byte, payload []byte) []byte { return f(fin, 4, op, payload) } // RSV1: compressed
	// zheader writes the header of a compressed frame claiming length n,
	// with a mask key, and no payload.
	zheader := func(op byte, n uint64) []byte {
		b := header(op, n)
		b[0] |= 0x40
		return b
	}
	// stored writes b as a stored deflate block, not final. A message of
	// them ends with the header of the empty one, a 0 byte, that the 00 00
	// ff ff the receiver appends completes.
	stored := func(b []byte) []byte {
		n := uint16(len(b))
		return append([]byte{0, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)}, b...)
	}
	const quick = "The quick brown fox jumps over the lazy dog, then naps."
	hello := z([]byte("hello, hello, hello, hello"), false)
	long := z(bytes.Repeat([]byte("0123456789"), 60), false)
	deflated := map[string][]byte{
		"seed-deflate-text":                    zf(true, rawws.OpText, hello),
		"seed-deflate-binary":                  zf(true, rawws.OpBinary, z([]byte{0, 1, 2, 3, 0, 1, 2, 3}, false)),
		"seed-deflate-final-block":             zf(true, rawws.OpText, z([]byte("final"), true)),
		"seed-deflate-empty":                   zf(true, rawws.OpBinary, nil),
		"seed-deflate-stored-block":            zf(true, rawws.OpBinary, append([]byte{0x01, 5, 0, 0xfa, 0xff}, "store"...)),
		"seed-deflate-fragmented":              cat(zf(false, rawws.OpText, long[:10]), f(false, 0, rawws.OpContinuation, long[10:20]), f(true, 0, rawws.OpContinuation, long[20:])),
		"seed-deflate-ping-between":            cat(zf(false, rawws.OpText, hello[:4]), f(true, 0, rawws.OpPing, []byte("p")), f(true, 0, rawws.OpContinuation, hello[4:])),
		"seed-deflate-then-plain-then-close":   cat(zf(true, rawws.OpText, hello), text("plain"), closeFrame(1000, "")),
		"seed-deflate-bomb-1MiB":               zf(true, rawws.OpBinary, z(make([]byte, 1<<20), false)),
		"seed-deflate-bomb-fragmented":         cat(zf(false, rawws.OpBinary, z(make([]byte, 1<<20), false)[:20]), f(true, 0, rawws.OpContinuation, z(make([]byte, 1<<20), false)[20:])),
		"seed-deflate-exactly-the-limit":       zf(true, rawws.OpBinary, z(bytes.Repeat([]byte("x"), fuzzReadLimit), false)),
		"seed-deflate-one-over-the-limit-sync": zf(true, rawws.OpBinary, z(bytes.Repeat([]byte("x"), fuzzReadLimit+1), false)),
		"seed-deflate-corrupt":                 zf(true, rawws.OpBinary, []byte{0xff, 0xff, 0xff, 0xff}),
		"seed-deflate-bad-utf8":                zf(true, rawws.OpText, z([]byte("\xff\xfe\xfd"), false)),
		"seed-deflate-truncated":               zf(true, rawws.OpText, hello)[:8],
		"seed-deflate-rsv1-on-continuation":    cat(f(false, 0, rawws.OpText, []byte("a")), f(true, 4, rawws.OpContinuation, []byte("b"))),
		"seed-deflate-rsv1-on-ping":            f(true, 4, rawws.OpPing, nil),
		"seed-deflate-rsv2":                    f(true, 2, rawws.OpBinary, []byte("x")),
		"seed-deflate-uncompressed-text":       text("not compressed"),
		"seed-deflate-uncompressed-bad-utf8":   text("\xc3\x28"),
		// A final block, then padding and two whole frames: a message and
		// a close frame hidden in the payload of another.
		"seed-deflate-smuggled-frames":          zf(true, rawws.OpText, cat(z([]byte("hello"), true), make([]byte, 16), text("smuggled"), closeFrame(1000, ""))),
		"seed-deflate-truncated-stream":         zf(true, rawws.OpText, z([]byte(quick), false)[:14]),
		"seed-deflate-bytes-after-final-block":  zf(true, rawws.OpText, append(z([]byte("final"), true), "xyz"...)),
		"seed-deflate-flush-not-stripped":       zf(true, rawws.OpText, append(z([]byte("flushed"), false), 0, 0, 0xff, 0xff)),
		"seed-deflate-empty-fragments":          cat(zf(false, rawws.OpBinary, nil), f(true, 0, rawws.OpContinuation, nil)),
		"seed-deflate-exactly-the-limit-final":  zf(true, rawws.OpBinary, z(bytes.Repeat([]byte("x"), fuzzReadLimit), true)),
		"seed-deflate-one-over-the-limit-final": zf(true, rawws.OpBinary, z(bytes.Repeat([]byte("x"), fuzzReadLimit+1), true)),
		"seed-deflate-huge-length":              append(zheader(rawws.OpBinary, 1<<62), "0123456789"...),
		"seed-deflate-zlimit-declared-short":    append(zheader(rawws.OpBinary, 2*fuzzReadLimit+1024), "abc"...),
		"seed-deflate-zlimit-plus-one-declared": append(zheader(rawws.OpBinary, 2*fuzzReadLimit+1025), "abc"...),
		"seed-deflate-close-between-fragments":  cat(zf(false, rawws.OpText, hello[:4]), closeFrame(1000, "")),
		"seed-deflate-two-flushes":              zf(true, rawws.OpText, append(z([]byte("flushed"), false), 0, 0, 0xff, 0xff, 0)),
		"seed-deflate-data-ends-in-marker":      zf(true, rawws.OpBinary, z([]byte("ab\x00\x00\xff\xff"), false)),
		"seed-deflate-stored-ends-in-marker":    zf(true, rawws.OpBinary, cat(stored([]byte("ab\x00\x00\xff\xff")), []byte{0})),
		// Stored blocks cut short: the 00 00 ff ff the receiver appends,
		// or all of what it appends, would be read as their data.
		"seed-deflate-stored-cut-4-short": zf(true, rawws.OpBinary, cat(stored([]byte("hello\x00\x00\xff\xff")), []byte{0})[:5+5]),
		"seed-deflate-stored-cut-9-short": zf(true, rawws.OpBinary, cat(stored([]byte("hello\x00\x00\xff\xff\x01\x00\x00\xff\xff")), []byte{0})[:5+5]),
		// The examples of RFC 7692 §7.2.3.1, 7.2.3.3 and 7.2.3.5: "Hello".
		"seed-deflate-rfc7692-hello":             zf(true, rawws.OpText, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}),
		"seed-deflate-rfc7692-stored":            zf(true, rawws.OpText, []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}),
		"seed-deflate-rfc7692-two-blocks":        zf(true, rawws.OpText, []byte{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}),
		"seed-deflate-stored-over-the-limit":     zf(true, rawws.OpBinary, cat(stored(bytes.Repeat([]byte("s"), fuzzReadLimit+1)), []byte{0})),
		"seed-deflate-stored-cut-utf8-fragments": cat(zf(false, rawws.OpText, stored([]byte("\xe2\x82"))), f(true, 0, rawws.OpContinuation, cat(stored([]byte("\xac")), []byte{0}))),
	}
	seeds := make(map[string]fuzzSeed)
	for name, in := range plain {
		seeds[name] = fuzzSeed{false, in}
	}
	for name, in := range deflated {
		seeds[name] = fuzzSeed{true, in}
	}
	return seeds
}

// fuzzSeed is one input of FuzzSocketBytes.
type fuzzSeed struct {
	deflate bool
	in      []byte
}

// fuzzFrame encodes a client frame in the shortest length form, masked
// with a fixed key when masked is set.
func fuzzFrame(fin bool, rsv, op byte, masked bool, payload []byte) []byte {
	b0 := rsv<<4 | op
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := []byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key...)
	for i, x := range payload {
		b = append(b, x^key[i%4])
	}
	return b
}

// TestFuzzSocketBytesSeeds keeps testdata/fuzz/FuzzSocketBytes in step
// with fuzzSeeds: every seed has its file, as go test -fuzz writes them.
// LAF_WRITE_FUZZ_SEEDS=1 writes them.
func TestFuzzSocketBytesSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzSocketBytes")
	write := os.Getenv("LAF_WRITE_FUZZ_SEEDS") == "1"
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, seed := range fuzzSeeds() {
		want := fmt.Sprintf("go test fuzz v1\nbool(%v)\n[]byte(%q)\n", seed.deflate, seed.in)
		path := filepath.Join(dir, name)
		if write {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or out of date (LAF_WRITE_FUZZ_SEEDS=1 go test -run TestFuzzSocketBytesSeeds . writes it): %v", path, err)
		}
	}
}

// TestFuzzPredict checks the predictor on every seed, whose close and
// messages are known.
func TestFuzzPredict(t *testing.T) {
	const (
		abnormal  = laf.CauseAbnormal
		peer      = laf.CausePeer
		protocol  = laf.CauseProtocol
		readLimit = laf.CauseReadLimit
	)
	type end struct {
		cause laf.CloseCause
		code  int
		msgs  int // how many messages the Func gets
	}
	want := map[string]end{
		"seed-all-ones":                       {protocol, 1002, 0},
		"seed-binary":                         {abnormal, 1006, 1},
		"seed-binary-bad-utf8-is-fine":        {abnormal, 1006, 1},
		"seed-close-1-byte":                   {protocol, 1002, 0},
		"seed-close-125-bytes":                {peer, 1000, 0},
		"seed-close-126-bytes":                {protocol, 1002, 0},
		"seed-close-4000-reason":              {peer, 4000, 0},
		"seed-close-between-fragments":        {peer, 1001, 0},
		"seed-close-code-1005":                {protocol, 1002, 0},
		"seed-close-code-2000":                {protocol, 1002, 0},
		"seed-close-code-999":                 {protocol, 1002, 0},
		"seed-close-empty":                    {peer, 1005, 0},
		"seed-close-reason-bad-utf8":          {protocol, 1007, 0},
		"seed-continuation-first":             {protocol, 1002, 0},
		"seed-data-after-close":               {peer, 1000, 0},
		"seed-empty":                          {abnormal, 1006, 0},
		"seed-empty-text-frames-fragmented":   {abnormal, 1006, 1},
		"seed-exactly-the-limit":              {abnormal, 1006, 1},
		"seed-fragmented-bad-utf8-fails-fast": {protocol, 1007, 1},
		"seed-fragmented-ping-between":        {abnormal, 1006, 1},
		"seed-fragmented-text":                {abnormal, 1006, 1},
		"seed-fragmented-utf8-cut-4-byte":     {abnormal, 1006, 1},
		"seed-fragmented-utf8-cut-at-fin":     {protocol, 1007, 0},
		"seed-fragmented-utf8-cut-then-end":   {abnormal, 1006, 0},
		"seed-fragmented-utf8-split":          {abnormal, 1006, 1},
		"seed-fragmented-utf8-uncompletable":  {protocol, 1007, 0},
		"seed-http-request-again":             {protocol, 1002, 0},
		"seed-huge-length-2000-bytes":         {readLimit, 1009, 0},
		"seed-huge-length-short-payload":      {readLimit, 1009, 0},
		"seed-length-16bit-nonminimal":        {abnormal, 1006, 1},
		"seed-length-2-62-10-bytes":           {readLimit, 1009, 0},
		"seed-length-64bit-nonminimal":        {abnormal, 1006, 1},
		"seed-length-max-uint63":              {readLimit, 1009, 0},
		"seed-length-max-uint63-10-bytes":     {readLimit, 1009, 0},
		"seed-length-top-bit-set":             {protocol, 1002, 0},
		"seed-limit-declared-short":           {abnormal, 1006, 0},
		"seed-limit-plus-one-declared":        {readLimit, 1009, 0},
		"seed-many-small-messages":            {abnormal, 1006, 300},
		"seed-new-message-in-fragmented":      {protocol, 1002, 0},
		"seed-one-over-the-limit":             {readLimit, 1009, 0},
		"seed-over-the-limit-at-header":       {readLimit, 1009, 0},
		"seed-over-the-limit-fragmented":      {readLimit, 1009, 0},
		"seed-ping-126-bytes":                 {protocol, 1002, 0},
		"seed-ping-flood-500":                 {abnormal, 1006, 0},
		"seed-ping-fragmented":                {protocol, 1002, 0},
		"seed-pong-unsolicited":               {abnormal, 1006, 0},
		"seed-reserved-opcode-11":             {protocol, 1002, 0},
		"seed-reserved-opcode-3":              {protocol, 1002, 0},
		"seed-rsv1":                           {protocol, 1002, 0},
		"seed-rsv3-on-ping":                   {protocol, 1002, 0},
		"seed-text":                           {abnormal, 1006, 1},
		"seed-text-bad-utf8":                  {protocol, 1007, 0},
		"seed-text-cut-at-end":                {protocol, 1007, 0},
		"seed-text-overlong-utf8":             {protocol, 1007, 0},
		"seed-text-surrogate-utf8":            {protocol, 1007, 0},
		"seed-text-then-close-1000":           {peer, 1000, 1},
		"seed-truncated-64bit-length":         {abnormal, 1006, 0},
		"seed-truncated-64bit-length-mask":    {abnormal, 1006, 0},
		"seed-truncated-close":                {abnormal, 1006, 0},
		"seed-truncated-fragment":             {abnormal, 1006, 0},
		"seed-truncated-header":               {abnormal, 1006, 0},
		"seed-truncated-mask":                 {abnormal, 1006, 0},
		"seed-truncated-payload":              {abnormal, 1006, 0},
		"seed-truncated-ping":                 {abnormal, 1006, 0},
		"seed-unmasked-header-only":           {protocol, 1002, 0},
		"seed-unmasked-text":                  {protocol, 1002, 0},
		"seed-zero-bytes":                     {protocol, 1002, 0},

		"seed-deflate-bad-utf8":                  {protocol, 1007, 0},
		"seed-deflate-binary":                    {abnormal, 1006, 1},
		"seed-deflate-bomb-1MiB":                 {readLimit, 1009, 0},
		"seed-deflate-bomb-fragmented":           {readLimit, 1009, 0},
		"seed-deflate-bytes-after-final-block":   {protocol, 1002, 0},
		"seed-deflate-close-between-fragments":   {peer, 1000, 0},
		"seed-deflate-corrupt":                   {protocol, 1002, 0},
		"seed-deflate-empty":                     {abnormal, 1006, 1},
		"seed-deflate-empty-fragments":           {abnormal, 1006, 1},
		"seed-deflate-exactly-the-limit":         {abnormal, 1006, 1},
		"seed-deflate-exactly-the-limit-final":   {abnormal, 1006, 1},
		"seed-deflate-final-block":               {abnormal, 1006, 1},
		"seed-deflate-flush-not-stripped":        {protocol, 1002, 0},
		"seed-deflate-fragmented":                {abnormal, 1006, 1},
		"seed-deflate-huge-length":               {readLimit, 1009, 0},
		"seed-deflate-one-over-the-limit-final":  {readLimit, 1009, 0},
		"seed-deflate-one-over-the-limit-sync":   {readLimit, 1009, 0},
		"seed-deflate-ping-between":              {abnormal, 1006, 1},
		"seed-deflate-rsv1-on-continuation":      {protocol, 1002, 0},
		"seed-deflate-rsv1-on-ping":              {protocol, 1002, 0},
		"seed-deflate-rsv2":                      {protocol, 1002, 0},
		"seed-deflate-smuggled-frames":           {protocol, 1002, 0},
		"seed-deflate-stored-block":              {abnormal, 1006, 1},
		"seed-deflate-stored-cut-utf8-fragments": {abnormal, 1006, 1},
		"seed-deflate-stored-over-the-limit":     {readLimit, 1009, 0},
		"seed-deflate-text":                      {abnormal, 1006, 1},
		"seed-deflate-then-plain-then-close":     {peer, 1000, 2},
		"seed-deflate-truncated":                 {abnormal, 1006, 0},
		"seed-deflate-truncated-stream":          {protocol, 1002, 0},
		"seed-deflate-two-flushes":               {abnormal, 1006, 1},
		"seed-deflate-data-ends-in-marker":       {abnormal, 1006, 1},
		"seed-deflate-stored-ends-in-marker":     {abnormal, 1006, 1},
		"seed-deflate-stored-cut-4-short":        {protocol, 1002, 0},
		"seed-deflate-stored-cut-9-short":        {protocol, 1002, 0},
		"seed-deflate-rfc7692-hello":             {abnormal, 1006, 1},
		"seed-deflate-rfc7692-stored":            {abnormal, 1006, 1},
		"seed-deflate-rfc7692-two-blocks":        {abnormal, 1006, 1},
		"seed-deflate-uncompressed-bad-utf8":     {protocol, 1007, 0},
		"seed-deflate-uncompressed-text":         {abnormal, 1006, 1},
		"seed-deflate-zlimit-declared-short":     {abnormal, 1006, 0},
		"seed-deflate-zlimit-plus-one-declared":  {readLimit, 1009, 0},
	}
	seeds := fuzzSeeds()
	for name := range want {
		if _, ok := seeds[name]; !ok {
			t.Errorf("no seed %s", name)
		}
	}
	for name, seed := range seeds {
		w, ok := want[name]
		if !ok {
			t.Errorf("seed %s: no close known", name)
			continue
		}
		got := fuzzPredict(seed.in, fuzzReadLimit, seed.deflate)
		if got.cause != w.cause || got.code != w.code || len(got.msgs) != w.msgs {
			t.Errorf("%s: predicted %v, %d, %d messages (%s), want %v, %d, %d messages",
				name, got.cause, got.code, len(got.msgs), got.why, w.cause, w.code, w.msgs)
		}
	}

	// The messages, byte for byte.
	msgs := map[string]string{
		"seed-text":                              "hello",
		"seed-fragmented-text":                   "hello",
		"seed-fragmented-utf8-split":             "€",
		"seed-fragmented-utf8-cut-4-byte":        "😀!",
		"seed-fragmented-bad-utf8-fails-fast":    "ok",
		"seed-deflate-text":                      "hello, hello, hello, hello",
		"seed-deflate-final-block":               "final",
		"seed-deflate-stored-block":              "store",
		"seed-deflate-two-flushes":               "flushed",
		"seed-deflate-data-ends-in-marker":       "ab\x00\x00\xff\xff",
		"seed-deflate-stored-ends-in-marker":     "ab\x00\x00\xff\xff",
		"seed-deflate-rfc7692-hello":             "Hello",
		"seed-deflate-rfc7692-stored":            "Hello",
		"seed-deflate-rfc7692-two-blocks":        "Hello",
		"seed-deflate-stored-cut-utf8-fragments": "€",
		"seed-deflate-empty":                     "",
		"seed-deflate-fragmented":                strings.Repeat("0123456789", 60),
		"seed-deflate-exactly-the-limit-final":   strings.Repeat("x", fuzzReadLimit),
	}
	for name, m := range msgs {
		seed := seeds[name]
		got := fuzzPredict(seed.in, fuzzReadLimit, seed.deflate)
		if len(got.msgs) != 1 || string(got.msgs[0]) != m {
			t.Errorf("%s: predicted messages %q, want %q", name, got.msgs, m)
		}
	}

	// The same bytes, with and without deflate: RSV1 is a fault only
	// without it.
	in := fuzzFrame(true, 4, rawws.OpText, true, []byte{0x4b, 0x04, 0x00}) // "a" deflated
	if got := fuzzPredict(in, fuzzReadLimit, false); got.cause != laf.CauseProtocol {
		t.Errorf("RSV1 without deflate: %v (%s)", got.cause, got.why)
	}
	if got := fuzzPredict(in, fuzzReadLimit, true); got.cause != laf.CauseAbnormal || len(got.msgs) != 1 || string(got.msgs[0]) != "a" {
		t.Errorf("RSV1 with deflate: %v, messages %q (%s)", got.cause, got.msgs, got.why)
	}

	// A character cut at the end of a fragment waits for the next only if
	// one could complete it.
	for _, c := range []struct {
		text string
		ok   bool
	}{
		{"a\xc3", true}, {"a\xe2\x82", true}, {"\xf0\x9f\x98", true}, {"\xf4\x8f", true}, {"\xed\x9f", true},
		{"a\xc0", false}, {"a\xc1", false}, {"\xe0\x80", false}, {"\xed\xa0", false}, {"\xf4\x90", false},
		{"\xf5", false}, {"\xff", false}, {"\x80", false}, {"\xf0\x9f\x98\x80\x80", false}, {"\xc3\xa9\xe2", true},
		{"\xff\xe2\x82", false},
	} {
		if got := fuzzTextSoFar([]byte(c.text), false); got != c.ok {
			t.Errorf("fuzzTextSoFar(%q, not final) = %v, want %v", c.text, got, c.ok)
		}
		if fuzzTextSoFar([]byte(c.text), true) {
			t.Errorf("fuzzTextSoFar(%q, final) = true", c.text)
		}
	}
}
