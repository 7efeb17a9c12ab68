package laf_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonish is text that compresses as chat traffic does.
func jsonish(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"user":"user%d","room":"lobby","text":"message number %d"},`, i%17, i)
	}
	return b.String()[:n]
}

// deflateUpgrade upgrades a raw TCP connection offering permessage-deflate
// and returns it with the extension the server accepted.
func deflateUpgrade(t *testing.T, url string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	conn, br, h := rawUpgradeWith(t, url, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
	return conn, br, h.Get("Sec-WebSocket-Extensions")
}

// readRawFrame reads one unmasked server frame.
func readRawFrame(t *testing.T, br *bufio.Reader) (first byte, payload []byte) {
	t.Helper()
	var hdr [2]byte
	_, err := io.ReadFull(br, hdr[:])
	require.NoError(t, err)
	n := int64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(br, l[:])
		n = int64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, err = io.ReadFull(br, l[:])
		n = int64(binary.BigEndian.Uint64(l[:]))
	}
	require.NoError(t, err)
	payload = make([]byte, n)
	_, err = io.ReadFull(br, payload)
	require.NoError(t, err)
	return hdr[0], payload
}

// inflate undoes RFC 7692's compression of one message.
func inflate(t *testing.T, p []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p),
		bytes.NewReader([]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}))))
	require.NoError(t, err)
	return out
}

// A peer that offers permessage-deflate gets it, in its no-context-takeover
// form, and a large message arrives compressed (RSV1), a small one not.
func TestCompressionOnTheWire(t *testing.T) {
	big, small := jsonish(4000), "hi"
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			if err := ctx.Socket.Send(big); err != nil {
				return err
			}
			return ctx.Socket.Send(small)
		}
		return nil
	}, laf.WithCompression(0))
	_, br, ext := deflateUpgrade(t, srv.URL)
	assert.Contains(t, ext, "permessage-deflate")
	assert.Contains(t, ext, "server_no_context_takeover")

	first, p := readRawFrame(t, br)
	assert.Equal(t, byte(0x80|0x40|0x1), first, "final, RSV1, text")
	assert.Less(t, len(p), len(big)/3, "JSON shrinks")
	assert.Equal(t, big, string(inflate(t, p)))
	first, p = readRawFrame(t, br)
	assert.Equal(t, byte(0x80|0x1), first, "under the threshold: not compressed")
	assert.Equal(t, small, string(p))
}

// Without WithCompression the extension is declined.
func TestCompressionOffByDefault(t *testing.T) {
	srv := laftest.NewServer(t, func(*laf.FunctionContext) error { return nil })
	_, _, ext := deflateUpgrade(t, srv.URL)
	assert.Empty(t, ext)
}

// A compressed broadcast to 1,000 sockets is compressed once, and arrives
// intact at every socket, those that negotiated compression and those
// that did not; compressed messages from peers are inflated.
func TestCompressedBroadcastIsCompressedOnce(t *testing.T) {
	const n = 1000
	echoed := make(chan string, 1)
	srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			echoed <- ctx.Params.Data.String()
		}
		return nil
	}, laf.WithCompression(0))
	msg := jsonish(8000)

	clients := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	for i := range clients {
		mode := websocket.CompressionDisabled
		if i%2 == 0 {
			mode = websocket.CompressionNoContextTakeover
		}
		ws, resp, err := websocket.Dial(context.Background(), srv.WSURL, &websocket.DialOptions{CompressionMode: mode})
		require.NoError(t, err)
		if i%2 == 0 {
			require.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
		}
		ws.SetReadLimit(-1)
		clients[i] = ws
		defer ws.CloseNow()
	}
	require.Eventually(t, func() bool { return srv.Endpoint.Len() == n }, laftest.DefaultTimeout, time.Millisecond)
	before := srv.Endpoint.Stats().Compressed
	require.NoError(t, srv.Endpoint.Broadcast(context.Background(), laf.Text(msg)))

	got := make(chan error, n)
	for _, ws := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), laftest.DefaultTimeout)
			defer cancel()
			_, data, err := ws.Read(ctx)
			if err == nil && string(data) != msg {
				err = fmt.Errorf("got %d bytes, not the broadcast", len(data))
			}
			got <- err
		}()
	}
	wg.Wait()
	close(got)
	for err := range got {
		require.NoError(t, err)
	}
	assert.Equal(t, before+1, srv.Endpoint.Stats().Compressed, "one compression for 1,000 sockets")

	// The other way: a compressing client's message is inflated.
	require.NoError(t, clients[0].Write(context.Background(), websocket.MessageText, []byte(msg)))
	assert.Equal(t, msg, <-echoed)
}

// A small compressed frame that inflates past the read limit gets 1009,
// and the server inflates no more than the limit.
func TestDecompressionBombGets1009(t *testing.T) {
	const limit = 32 << 10
	rec := laftest.NewRecorder(nil)
	srv := laftest.NewServer(t, rec.Func, laf.WithCompression(0), laf.WithReadLimit(limit),
		laf.WithCloseTimeout(100*time.Millisecond)) // the raw client does not answer the close
	conn, br, ext := deflateUpgrade(t, srv.URL)
	require.Contains(t, ext, "permessage-deflate")
	rec.Expect(t, laf.MethodConnection)

	// 16 MiB of zeros, deflated to a few KiB.
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 16 {
		fw.Write(zeros)
	}
	fw.Flush()
	payload := z.Bytes()[:z.Len()-4]
	var mask [4]byte
	rand.Read(mask[:])
	frame := []byte{0x80 | 0x40 | 0x2, 0x80 | 127}
	frame = binary.BigEndian.AppendUint64(frame, uint64(len(payload)))
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	t.Logf("a %d-byte frame that inflates to 16 MiB", len(frame))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go conn.Write(frame) // the server may close before it has read it all
	first, p := readRawFrame(t, br)
	runtime.ReadMemStats(&after)
	assert.Equal(t, byte(0x88), first, "a close frame")
	require.GreaterOrEqual(t, len(p), 2)
	assert.Equal(t, 1009, int(binary.BigEndian.Uint16(p)))
	assert.ErrorIs(t, rec.Expect(t, laf.MethodError).Params.Err, laf.ErrMessageTooBig)
	assert.Equal(t, laf.CauseReadLimit, rec.Expect(t, laf.MethodClose).Params.Cause)
	// Allocations made meanwhile, test and server alike: far from 16 MiB.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "inflated no more than about the limit")
}
