package laf

import (
	"bufio"
	"encoding/binary"
	"math"
	"net"
)

// laf writes data frames itself, rather than with coder/websocket's
// Conn.Write, which takes its lock, resets its message writer and flushes
// its buffer once per message: a socket's whole batch of queued messages
// goes out in one write. coder/websocket still writes the control frames
// (pings, pongs, close). Every frame, laf's or coder/websocket's, goes out
// through the socket's gate, one write at a time, so frames never
// interleave and none follows a close frame.

// frameBatch is the scratch for writing a batch too large for the
// socket's own small buffer, pooled per Endpoint so that an idle socket
// holds none.
type frameBatch struct {
	hdrs []byte      // the frame headers, back to back, for writev
	bufs net.Buffers // headers and payloads, for writev
	v    net.Buffers // what of bufs is left to write; here, not on the stack, as it escapes
	flat []byte      // the whole batch, copied
}

// maxHeader is the longest header of a server's frame: unmasked, 64-bit
// length.
const maxHeader = 10

// appendHeader appends the header of a final, unmasked text or binary
// frame with an n-byte payload, compressed (RSV1) if deflated.
func appendHeader(b []byte, isBinary, deflated bool, n int) []byte {
	op := byte(0x1)
	if isBinary {
		op = 0x2
	}
	if deflated {
		op |= 0x40
	}
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// closeFrame returns a close frame with code and reason, which checkClose
// has passed; 1005 is a close frame without a body.
func closeFrame(code int, reason string) []byte {
	if code == 1005 {
		return []byte{0x88, 0}
	}
	b := make([]byte, 0, 4+len(reason))
	b = append(b, 0x88, byte(2+len(reason)), byte(code>>8), byte(code))
	return append(b, reason...)
}

// appendFrames appends the frames of batch, headers and payloads, to b,
// compressed where deflate says the socket negotiated it.
func appendFrames(b []byte, batch []Message, deflate bool) []byte {
	for i := range batch {
		p, z := batch[i].payload(deflate)
		b = appendHeader(b, batch[i].binary, z, len(p))
		b = append(b, p...)
	}
	return b
}

// flatMax is the largest batch copied into one buffer. Larger ones go out
// over TCP with writev, which copies nothing but allocates once per call
// (in the runtime); other connections (TLS) always get one copied buffer,
// as only a single Write keeps their frames whole.
const flatMax = 64 << 10

// writeFrames writes batch as one frame per message in a single write
// through the gate, and returns how many messages went out whole. Only
// the socket's writer calls it.
func (o *outbox) writeFrames(batch []Message) (int, error) {
	deflate := o.s.deflate
	size := 0
	for i := range batch {
		p, _ := batch[i].payload(deflate)
		size += maxHeader + len(p)
	}
	g := o.s.gate
	if size <= len(o.wbuf) {
		// Small frames need neither the pool nor an allocation.
		n, err := g.writeFrames(appendFrames(o.wbuf[:0], batch, deflate), nil)
		return countSent(batch, deflate, n, err)
	}

	e := o.s.ep
	fb, _ := e.frameBatches.Get().(*frameBatch)
	if fb == nil {
		fb = new(frameBatch)
	}
	defer e.frameBatches.Put(fb)
	var n int64
	var err error
	if g.tcp != nil && size > flatMax {
		hdrs := fb.hdrs[:0]
		if cap(hdrs) < maxHeader*len(batch) {
			hdrs = make([]byte, 0, maxHeader*len(batch))
		}
		bufs := fb.bufs[:0]
		for i := range batch {
			p, z := batch[i].payload(deflate)
			start := len(hdrs)
			hdrs = appendHeader(hdrs, batch[i].binary, z, len(p))
			bufs = append(bufs, hdrs[start:len(hdrs):len(hdrs)])
			if len(p) > 0 {
				bufs = append(bufs, p)
			}
		}
		fb.v = bufs
		n, err = g.writeFrames(nil, &fb.v)
		fb.v = nil
		clear(bufs)
		fb.hdrs, fb.bufs = hdrs[:0], bufs[:0]
	} else {
		flat := appendFrames(fb.flat[:0], batch, deflate)
		n, err = g.writeFrames(flat, nil)
		if cap(flat) <= flatMax {
			fb.flat = flat[:0]
		}
	}
	return countSent(batch, deflate, n, err)
}

// countSent returns how many messages of batch went out whole in the n
// bytes that a write of their frames wrote.
func countSent(batch []Message, deflate bool, n int64, err error) (int, error) {
	if err == nil {
		return len(batch), nil
	}
	sent := 0
	var hdr [maxHeader]byte
	for i := range batch {
		p, z := batch[i].payload(deflate)
		size := int64(len(appendHeader(hdr[:0], batch[i].binary, z, len(p))) + len(p))
		if n < size {
			break
		}
		n -= size
		sent++
	}
	return sent, err
}

// Nearly every message a client sends comes as one final, masked,
// uncompressed text or binary frame. laf reads such a frame itself,
// straight into the message's own buffer, rather than through
// coder/websocket's reader, which takes its read lock three times and
// copies the payload once more per message. It can, because the socket's
// goroutine is the connection's only reader, and a message boundary is
// where coder/websocket's reader stands between messages: reading a whole
// frame there leaves it as it was. Anything else (control frames,
// fragments, compressed, malformed or over-limit frames) is left unread,
// for coder/websocket.

// peekFrame waits for the next frame's header and, if the frame is one laf
// reads itself, consumes the header and returns the payload's length n
// and mask key, and whether it is binary; else it reports ok false and
// consumes nothing.
func peekFrame(front *bufio.Reader, limit int64) (n int, key [4]byte, isBinary, ok bool, err error) {
	h, err := front.Peek(2)
	if err != nil {
		return 0, key, false, false, err
	}
	op := h[0] & 0x0F
	if h[0]&0xF0 != 0x80 || op != 0x1 && op != 0x2 || h[1]&0x80 == 0 {
		return 0, key, false, false, nil // not final, RSV set, not data, or unmasked
	}
	size := uint64(h[1] & 0x7F)
	hlen := 2
	switch size {
	case 126:
		hlen = 4
	case 127:
		hlen = 10
	}
	if h, err = front.Peek(hlen + 4); err != nil {
		return 0, key, false, false, err
	}
	switch hlen {
	case 4:
		size = uint64(binary.BigEndian.Uint16(h[2:]))
	case 10:
		size = binary.BigEndian.Uint64(h[2:])
	}
	if limit >= 0 && size > uint64(limit) || size > math.MaxInt32 {
		return 0, key, false, false, nil // coder/websocket's reader fails it
	}
	copy(key[:], h[hlen:])
	front.Discard(hlen + 4)
	return int(size), key, op == 0x2, true, nil
}

// unmask XORs b with the client's mask key, as RFC 6455 §5.3 says.
func unmask(b []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}
