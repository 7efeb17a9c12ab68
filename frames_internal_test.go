package laf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countSent decides the MessagesOut of a batch whose write failed midway:
// only frames written whole count.
func TestCountSentCountsWholeFramesOnly(t *testing.T) {
	batch := []Message{
		{data: make([]byte, 10)},                // 2 + 10 bytes
		{data: make([]byte, 200), binary: true}, // 4 + 200 bytes
		{data: make([]byte, 70000)},             // 10 + 70000 bytes
		{},                                      // 2 bytes
	}
	failed := errors.New("broken pipe")
	for _, tc := range []struct {
		written int64
		want    int
	}{
		{0, 0},
		{11, 0},
		{12, 1},
		{12 + 203, 1},
		{12 + 204, 2},
		{12 + 204 + 70009, 2},
		{12 + 204 + 70010, 3},
		{12 + 204 + 70010 + 2, 4},
	} {
		got, err := countSent(batch, false, tc.written, failed)
		assert.Equal(t, tc.want, got, "after %d bytes", tc.written)
		assert.Equal(t, failed, err)
	}
	got, err := countSent(batch, false, 0, nil)
	assert.Equal(t, len(batch), got)
	assert.NoError(t, err)
}

// clientFrame encodes a client frame: b0 is its first byte (FIN, RSV,
// opcode), the payload is masked with key unless key is nil.
func clientFrame(b0 byte, key []byte, payload []byte) []byte {
	b := []byte{b0}
	mask := byte(0)
	if key != nil {
		mask = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, mask|byte(n))
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, mask|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, mask|127), uint64(n))
	}
	b = append(b, key...)
	for i, c := range payload {
		if key != nil {
			c ^= key[i%4]
		}
		b = append(b, c)
	}
	return b
}

// peekFrame takes the frames laf reads itself, whole and unmasked, and
// leaves every other frame unread for coder/websocket.
func TestPeekFrame(t *testing.T) {
	key := []byte{0x12, 0x34, 0x56, 0x78}
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		return b
	}
	const limit = 70000
	for _, tc := range []struct {
		name  string
		frame []byte
		taken bool
		bin   bool
	}{
		{"empty text", clientFrame(0x81, key, nil), true, false},
		{"7-bit text", clientFrame(0x81, key, payload(125)), true, false},
		{"16-bit binary", clientFrame(0x82, key, payload(126)), true, true},
		{"16-bit, the most", clientFrame(0x82, key, payload(65535)), true, true},
		{"64-bit, within the limit", clientFrame(0x81, key, payload(limit)), true, false},
		{"64-bit, over the limit", clientFrame(0x81, key, payload(limit+1)), false, false},
		{"not final", clientFrame(0x01, key, payload(3)), false, false},
		{"continuation", clientFrame(0x80, key, payload(3)), false, false},
		{"compressed (RSV1)", clientFrame(0xC1, key, payload(3)), false, false},
		{"RSV2", clientFrame(0xA1, key, payload(3)), false, false},
		{"RSV3", clientFrame(0x91, key, payload(3)), false, false},
		{"unmasked", clientFrame(0x81, nil, payload(3)), false, false},
		{"ping", clientFrame(0x89, key, payload(3)), false, false},
		{"pong", clientFrame(0x8A, key, payload(3)), false, false},
		{"close", clientFrame(0x88, key, []byte{3, 232}), false, false},
		{"reserved opcode", clientFrame(0x83, key, payload(3)), false, false},
	} {
		next := clientFrame(0x89, key, []byte("next")) // what follows must stay unread
		stream := append(append([]byte(nil), tc.frame...), next...)
		front := bufio.NewReaderSize(bytes.NewReader(stream), frontBuffer)
		n, k, bin, ok, err := peekFrame(front, limit)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.taken, ok, tc.name)
		rest, _ := io.ReadAll(front)
		if !ok {
			assert.Equal(t, stream, rest, "%s: consumed bytes it did not take", tc.name)
			continue
		}
		assert.Equal(t, tc.bin, bin, tc.name)
		require.LessOrEqual(t, n, len(rest), tc.name)
		got := rest[:n]
		unmask(got, k)
		want := tc.frame[len(tc.frame)-n:]
		for i := range want {
			want[i] ^= key[i%4]
		}
		assert.Equal(t, want, got, tc.name)
		assert.Equal(t, next, rest[n:], tc.name)
	}
}

// A header cut short is an error of the reader, not a frame.
func TestPeekFrameTruncated(t *testing.T) {
	frame := clientFrame(0x81, []byte{1, 2, 3, 4}, make([]byte, 300))
	for cut := 1; cut < 8; cut++ {
		front := bufio.NewReaderSize(bytes.NewReader(frame[:cut]), frontBuffer)
		_, _, _, ok, err := peekFrame(front, -1)
		assert.False(t, ok, "cut at %d", cut)
		assert.ErrorIs(t, err, io.EOF, "cut at %d", cut)
	}
}

// unmask agrees with the byte-by-byte XOR of RFC 6455 §5.3 at every length
// and alignment.
func TestUnmask(t *testing.T) {
	key := [4]byte{0xA1, 0x02, 0xF3, 0x44}
	buf := make([]byte, 100)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for start := range 9 {
		for n := 0; start+n <= len(buf); n++ {
			got := bytes.Clone(buf[start : start+n])
			unmask(got, key)
			for i := range got {
				require.Equal(t, buf[start+i]^key[i%4], got[i], "start %d length %d byte %d", start, n, i)
			}
		}
	}
}
