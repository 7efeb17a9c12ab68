package rawws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cat joins hand-built byte strings into one stream.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// server builds an unmasked server frame: b0 is the first header byte.
func server(b0 byte, payload []byte) []byte {
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
	return append(b, payload...)
}

func TestParseValid(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, 126)
	huge := bytes.Repeat([]byte{'y'}, 65536)
	stream := cat(
		[]byte{0x81, 0x02, 'h', 'i'},
		[]byte{0x82, 0x00},
		[]byte{0x89, 0x01, 'p'},
		[]byte{0x8A, 0x00},
		[]byte{0x01, 0x03, 'a', 'b', 0xC3}, // "abé" cut inside the é
		[]byte{0x89, 0x00},                 // a ping between fragments
		[]byte{0x80, 0x02, 0xA9, 'd'},
		append([]byte{0x82, 0x7E, 0x00, 0x7E}, long...),
		append([]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}, huge...),
		[]byte{0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'},
	)
	frames, err := Parse(stream)
	require.NoError(t, err)
	want := []Frame{
		{Fin: true, Opcode: OpText, Payload: []byte("hi"), Offset: 0, Size: 4},
		{Fin: true, Opcode: OpBinary, Payload: []byte{}, Offset: 4, Size: 2},
		{Fin: true, Opcode: OpPing, Payload: []byte("p"), Offset: 6, Size: 3},
		{Fin: true, Opcode: OpPong, Payload: []byte{}, Offset: 9, Size: 2},
		{Fin: false, Opcode: OpText, Payload: []byte{'a', 'b', 0xC3}, Offset: 11, Size: 5},
		{Fin: true, Opcode: OpPing, Payload: []byte{}, Offset: 16, Size: 2},
		{Fin: true, Opcode: OpContinuation, Payload: []byte{0xA9, 'd'}, Offset: 18, Size: 4},
		{Fin: true, Opcode: OpBinary, Payload: long, Offset: 22, Size: 130},
		{Fin: true, Opcode: OpBinary, Payload: huge, Offset: 152, Size: 65546},
		{Fin: true, Opcode: OpClose, Payload: []byte{0x03, 0xE8, 'b', 'y', 'e'}, Offset: 65698, Size: 7},
	}
	require.Equal(t, want, frames)
	require.NoError(t, CheckClosed(frames))
	code, reason, err := frames[9].CloseStatus()
	require.NoError(t, err)
	assert.Equal(t, 1000, code)
	assert.Equal(t, "bye", reason)
	assert.Equal(t, 9, FirstClose(frames))
	assert.True(t, frames[2].IsControl())
	assert.False(t, frames[6].IsControl())

	frames, err = Parse(nil)
	assert.NoError(t, err)
	assert.Empty(t, frames)
}

func TestParseRejects(t *testing.T) {
	text := []byte{0x81, 0x01, 'a'} // a good frame first, so offsets show
	for name, tc := range map[string]struct {
		b   []byte
		msg string
	}{
		"masked":                {cat(text, []byte{0x81, 0x81, 1, 2, 3, 4, 'a' ^ 1}), "masked"},
		"masked, header only":   {cat(text, []byte{0x82, 0x80}), "masked"},
		"rsv1":                  {cat(text, []byte{0xC1, 0x00}), "RSV bits 100"},
		"rsv3":                  {cat(text, []byte{0x91, 0x00}), "RSV bits 001"},
		"opcode 3":              {cat(text, []byte{0x83, 0x00}), "reserved opcode 0x3"},
		"opcode 5":              {cat(text, []byte{0x85, 0x00}), "reserved opcode 0x5"},
		"opcode 7":              {cat(text, []byte{0x87, 0x00}), "reserved opcode 0x7"},
		"opcode 0xB":            {cat(text, []byte{0x8B, 0x00}), "reserved opcode 0xb"},
		"opcode 0xF, 1 byte":    {cat(text, []byte{0x8F}), "reserved opcode 0xf"},
		"fragmented ping":       {cat(text, []byte{0x09, 0x00}), "fragmented control"},
		"fragmented close":      {cat(text, []byte{0x08, 0x02, 0x03, 0xE8}), "fragmented control"},
		"ping of 126":           {cat(text, server(0x89, make([]byte, 126))), "control frame"},
		"close of 127 code":     {cat(text, []byte{0x88, 0x7F}), "control frame"},
		"16-bit form for 125":   {cat(text, []byte{0x82, 0x7E, 0x00, 0x7D}, make([]byte, 125)), "16-bit form"},
		"64-bit form for 65535": {cat(text, []byte{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}), "64-bit form"},
		"64-bit top bit":        {cat(text, []byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 1, 0, 0}), "top bit"},
		"64-bit all ones":       {cat(text, []byte{0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), "top bit"},
		"lone continuation":     {cat(text, []byte{0x80, 0x01, 'a'}), "no message to continue"},
		"message in message":    {cat(text, []byte{0x01, 0x01, 'a'}, []byte{0x82, 0x00}), "inside a fragmented"},
		"invalid UTF-8":         {cat(text, []byte{0x81, 0x02, 0xC3, 0x28}), "not UTF-8"},
		"invalid fragmented":    {cat(text, []byte{0x01, 0x01, 0xC3}, []byte{0x80, 0x01, 0x28}), "not UTF-8"},
		"unfinished UTF-8":      {cat(text, []byte{0x01, 0x01, 'a'}, []byte{0x80, 0x01, 0xC3}), "not UTF-8"},
	} {
		t.Run(name, func(t *testing.T) {
			frames, err := Parse(tc.b)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, e.Msg, tc.msg)
			assert.GreaterOrEqual(t, e.Offset, 3)
			end := 0
			for _, f := range frames {
				end = f.Offset + f.Size
			}
			assert.Equal(t, e.Offset, end, "the frames before the fault come back")
		})
	}
}

// Every prefix of a good stream parses, its last frame Truncated unless the
// cut falls between frames: a reset can cut the stream anywhere.
func TestParseTruncated(t *testing.T) {
	parts := [][]byte{
		{0x81, 0x02, 'h', 'i'},
		server(0x82, bytes.Repeat([]byte{1}, 300)),
		{0x89, 0x00},
		server(0x82, bytes.Repeat([]byte{2}, 70000)),
		{0x88, 0x02, 0x03, 0xE8},
	}
	stream := cat(parts...)
	bounds := []int{0} // where each frame starts, and the end
	for _, p := range parts {
		bounds = append(bounds, bounds[len(bounds)-1]+len(p))
	}
	for cut := 0; cut <= len(stream); cut++ {
		i := 0 // the frame the cut falls in, or len(parts)
		for i < len(parts) && bounds[i+1] <= cut {
			i++
		}
		if i < len(parts) && cut-bounds[i] > 20 && bounds[i+1]-cut > 20 && cut%997 != 0 {
			continue // the middle of a long payload: a sample will do
		}
		frames, err := Parse(stream[:cut])
		require.NoError(t, err, "cut at %d", cut)
		if cut == bounds[i] {
			require.Len(t, frames, i, "cut at %d", cut)
			for _, f := range frames {
				require.False(t, f.Truncated)
			}
			continue
		}
		require.Len(t, frames, i+1, "cut at %d", cut)
		last := frames[i]
		require.True(t, last.Truncated, "cut at %d", cut)
		require.Equal(t, bounds[i], last.Offset)
		require.Equal(t, cut-bounds[i], last.Size)
		require.Equal(t, parts[i][0]&0xF, last.Opcode)
		require.True(t, bytes.HasSuffix(stream[:cut], last.Payload))
	}
}

func TestCheckClosed(t *testing.T) {
	closeFrame := []byte{0x88, 0x02, 0x03, 0xE8}
	for name, tc := range map[string]struct {
		b   []byte
		msg string // "" if it passes
	}{
		"no close":               {[]byte{0x81, 0x00, 0x89, 0x00}, ""},
		"close last":             {cat([]byte{0x81, 0x00}, closeFrame), ""},
		"empty close":            {[]byte{0x88, 0x00}, ""},
		"truncated close":        {cat([]byte{0x81, 0x00}, closeFrame[:3]), ""},
		"truncated data":         {[]byte{0x81, 0x05, 'a'}, ""},
		"code 1014":              {[]byte{0x88, 0x02, 0x03, 0xF6}, ""},
		"code 3000":              {[]byte{0x88, 0x02, 0x0B, 0xB8}, ""},
		"code 4999 with reason":  {[]byte{0x88, 0x04, 0x13, 0x87, 0xC3, 0xA9}, ""},
		"text after close":       {cat(closeFrame, []byte{0x81, 0x01, 'a'}), "opcode 0x1 and 1 payload bytes follows the close frame at byte 0"},
		"empty binary after":     {cat(closeFrame, []byte{0x82, 0x00}), "follows the close"},
		"ping after close":       {cat(closeFrame, []byte{0x89, 0x00}), "opcode 0x9"},
		"second close":           {cat(closeFrame, closeFrame), "opcode 0x8"},
		"truncated after close":  {cat(closeFrame, []byte{0x82, 0x7E, 0x01}), "truncated frame with opcode 0x2 (3 bytes arrived)"},
		"one byte after close":   {cat(closeFrame, []byte{0x81}), "truncated"},
		"payload of 1":           {[]byte{0x88, 0x01, 0x03}, "1 byte"},
		"code 999":               {[]byte{0x88, 0x02, 0x03, 0xE7}, "close code 999"},
		"code 1004":              {[]byte{0x88, 0x02, 0x03, 0xEC}, "close code 1004"},
		"code 1005":              {[]byte{0x88, 0x02, 0x03, 0xED}, "close code 1005"},
		"code 1006":              {[]byte{0x88, 0x02, 0x03, 0xEE}, "close code 1006"},
		"code 1015":              {[]byte{0x88, 0x02, 0x03, 0xF7}, "close code 1015"},
		"code 2999":              {[]byte{0x88, 0x02, 0x0B, 0xB7}, "close code 2999"},
		"code 5000":              {[]byte{0x88, 0x02, 0x13, 0x88}, "close code 5000"},
		"reason not UTF-8":       {[]byte{0x88, 0x03, 0x03, 0xE8, 0xFF}, "not UTF-8"},
		"bad close, then a text": {cat([]byte{0x88, 0x01, 0x03}, []byte{0x81, 0x00}), "1 byte"},
	} {
		t.Run(name, func(t *testing.T) {
			frames, err := Parse(tc.b)
			require.NoError(t, err)
			err = CheckClosed(frames)
			if tc.msg == "" {
				assert.NoError(t, err)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, e.Msg, tc.msg)
		})
	}

	frames, err := Parse(cat([]byte{0x81, 0x00}, closeFrame, []byte{0x81, 0x01, 'a'}, []byte{0x82, 0x02}))
	require.NoError(t, err)
	err = CheckClosed(frames)
	assert.Equal(t, &Error{Offset: 6, Msg: "a frame with opcode 0x1 and 1 payload bytes follows the close frame at byte 2 (2 frames and 5 bytes follow it)"}, err)
	assert.EqualError(t, err, "rawws: at byte 6: a frame with opcode 0x1 and 1 payload bytes follows the close frame at byte 2 (2 frames and 5 bytes follow it)")
}

func TestDump(t *testing.T) {
	b := []byte("0123456789abcdefABCDEFGHIJKLMNOP\x00\xff")
	assert.Equal(t, ""+
		"00000000"+strings.Repeat(" ", 27)+"38 39 61 62 63 64 65 66  |        89abcdef|\n"+
		"00000010  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|\n"+
		"00000020  00 ff                                             |..              |\n",
		Dump(b, 8, 100))
	assert.Equal(t, "", Dump(b, 50, 60))
	assert.Equal(t, "00000000  30                                                |0               |\n", Dump(b, -5, 1))
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455, section 1.3.
	assert.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", acceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
}

// fakeServer accepts one connection on loopback, reads the upgrade request
// and hands both to serve. It returns the ws:// URL to dial.
func fakeServer(t *testing.T, serve func(nc net.Conn, br *bufio.Reader, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		serve(nc, br, req)
	}()
	return "ws://" + ln.Addr().String() + "/path?q=1"
}

func switching(req *http.Request) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
}

type clientFrame struct {
	b0      byte
	payload []byte
}

// readClientFrame reads one client frame and unmasks it; it fails unless
// the frame is masked and its length in the shortest form.
func readClientFrame(br *bufio.Reader) (clientFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return clientFrame{}, err
	}
	if h[1]&0x80 == 0 {
		return clientFrame{}, io.ErrUnexpectedEOF
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var x [2]byte
		io.ReadFull(br, x[:])
		if n = uint64(binary.BigEndian.Uint16(x[:])); n < 126 {
			return clientFrame{}, io.ErrUnexpectedEOF
		}
	case 127:
		var x [8]byte
		io.ReadFull(br, x[:])
		if n = binary.BigEndian.Uint64(x[:]); n <= 0xFFFF {
			return clientFrame{}, io.ErrUnexpectedEOF
		}
	}
	var key [4]byte
	io.ReadFull(br, key[:])
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return clientFrame{}, err
	}
	for i := range p {
		p[i] ^= key[i&3]
	}
	return clientFrame{h[0], p}, nil
}

func TestDialWriteAndReadAll(t *testing.T) {
	big := bytes.Repeat([]byte("z"), 70000)
	got := make(chan clientFrame, 10)
	var reqSeen *http.Request
	url := fakeServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		reqSeen = req
		// The first frame comes in the same write as the response.
		io.WriteString(nc, switching(req)+"\x81\x05hello")
		for range 5 {
			f, err := readClientFrame(br)
			if err != nil {
				close(got)
				return
			}
			got <- f
		}
		nc.Write([]byte{0x89, 0x01, 'p'}) // a pong must answer
		if f, err := readClientFrame(br); err == nil {
			got <- f
		}
		nc.Write([]byte{0x88, 0x05, 0x0F, 0xA0, 'b', 'y', 'e'}) // and a close, with 4000
		if f, err := readClientFrame(br); err == nil {
			got <- f
		}
		close(got)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url)
	require.NoError(t, err)
	defer c.Close()
	type result struct {
		stream []byte
		err    error
	}
	read := make(chan result, 1)
	go func() {
		s, err := c.ReadAll(5 * time.Second)
		read <- result{s, err}
	}()
	require.NoError(t, c.WriteText("abc"))
	require.NoError(t, c.WriteBinary(bytes.Repeat([]byte("y"), 126)))
	require.NoError(t, c.WriteBinary(big))
	require.NoError(t, c.WriteFrame(false, 5, 5, []byte("x")))
	require.NoError(t, c.WriteFrame(true, 7, 15, nil))
	assert.Error(t, c.WriteFrame(true, 8, 1, nil))
	assert.Error(t, c.WriteFrame(true, 0, 16, nil))

	var frames []clientFrame
	for f := range got {
		frames = append(frames, f)
	}
	require.Len(t, frames, 7)
	assert.Equal(t, clientFrame{0x81, []byte("abc")}, frames[0])
	assert.Equal(t, clientFrame{0x82, bytes.Repeat([]byte("y"), 126)}, frames[1])
	assert.Equal(t, clientFrame{0x82, big}, frames[2])
	assert.Equal(t, clientFrame{0x55, []byte("x")}, frames[3])
	assert.Equal(t, clientFrame{0xFF, []byte{}}, frames[4])
	assert.Equal(t, clientFrame{0x8A, []byte("p")}, frames[5])
	assert.Equal(t, clientFrame{0x88, []byte{0x0F, 0xA0}}, frames[6])

	r := <-read
	require.NoError(t, r.err)
	sf, err := Parse(r.stream)
	require.NoError(t, err)
	require.NoError(t, CheckClosed(sf))
	require.Len(t, sf, 3)
	assert.Equal(t, "hello", string(sf[0].Payload))
	code, reason, err := sf[2].CloseStatus()
	require.NoError(t, err)
	assert.Equal(t, 4000, code)
	assert.Equal(t, "bye", reason)

	assert.Equal(t, "/path?q=1", reqSeen.RequestURI)
	assert.Equal(t, "websocket", reqSeen.Header.Get("Upgrade"))
	assert.Equal(t, "Upgrade", reqSeen.Header.Get("Connection"))
	assert.Equal(t, "13", reqSeen.Header.Get("Sec-WebSocket-Version"))
	key, err := base64.StdEncoding.DecodeString(reqSeen.Header.Get("Sec-WebSocket-Key"))
	require.NoError(t, err)
	assert.Len(t, key, 16)
}

// After its own close frame, the client answers nothing.
func TestNoAnswerAfterOwnClose(t *testing.T) {
	got := make(chan []byte, 1)
	url := fakeServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		io.WriteString(nc, switching(req))
		f, _ := readClientFrame(br)
		nc.Write([]byte{0x89, 0x00, 0x88, 0x02, 0x03, 0xE8})
		nc.(*net.TCPConn).CloseWrite()
		rest, _ := io.ReadAll(br)
		got <- append(f.payload, rest...)
	})
	c, err := Dial(context.Background(), url)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.WriteClose(1000, "done"))
	stream, err := c.ReadAll(5 * time.Second)
	require.NoError(t, err)
	c.Close()
	assert.Equal(t, []byte{0x89, 0x00, 0x88, 0x02, 0x03, 0xE8}, stream)
	assert.Equal(t, "\x03\xe8done", string(<-got))
}

func TestDialRefuses(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"wss://127.0.0.1:1/", "http://127.0.0.1:1/", "ws://192.0.2.1:80/", "ws://example.com/"} {
		_, err := Dial(ctx, u)
		assert.Error(t, err, u)
	}
	for name, resp := range map[string]func(*http.Request) string{
		"status 400": func(*http.Request) string { return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" },
		"bad accept": func(*http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"
		},
		"no upgrade": func(r *http.Request) string { return strings.Replace(switching(r), "Upgrade: websocket\r\n", "", 1) },
		"no connection": func(r *http.Request) string {
			return strings.Replace(switching(r), "Connection: Upgrade\r\n", "Connection: keep-alive\r\n", 1)
		},
		"extension": func(r *http.Request) string {
			return strings.Replace(switching(r), "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", 1)
		},
		"subprotocol": func(r *http.Request) string {
			return strings.Replace(switching(r), "\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n", 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			url := fakeServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
				io.WriteString(nc, resp(req))
				io.Copy(io.Discard, br)
			})
			_, err := Dial(ctx, url)
			assert.Error(t, err)
		})
	}
	t.Run("a comma list in Connection is fine", func(t *testing.T) {
		url := fakeServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
			io.WriteString(nc, strings.Replace(switching(req), "Connection: Upgrade", "Connection: keep-alive, UPGRADE", 1))
			io.Copy(io.Discard, br)
		})
		c, err := Dial(ctx, url)
		require.NoError(t, err)
		c.Close()
	})
	t.Run("the context bounds the handshake", func(t *testing.T) {
		url := fakeServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
			io.Copy(io.Discard, br) // never answers
		})
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := Dial(ctx, url)
		assert.Error(t, err)
	})
}
