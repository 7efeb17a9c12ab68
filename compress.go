package laf

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/flate"
)

// DefaultCompressionThreshold is the smallest message WithCompression
// compresses by default, in bytes: below it, deflate's framing costs more
// than it saves.
const DefaultCompressionThreshold = 512

// WithCompression negotiates permessage-deflate (RFC 7692) with peers that
// offer it (browsers, Node's ws and coder/websocket clients do), in its
// no-context-takeover form, and compresses outbound messages of at least
// threshold bytes (zero or less means DefaultCompressionThreshold).
// Incoming compressed messages are inflated, and the read limit applies to
// their inflated size: a message that inflates past it gets 1009 with no
// more than the limit inflated. A compressed message whose deflate data
// does not end exactly where its payload ends gets 1002 and is never
// delivered. laf answers every offer it accepts with
// server_no_context_takeover and client_no_context_takeover (a client
// that insists on its own context takeover cannot use compression) and
// echoes server_max_window_bits=15 when offered; it declines, as RFC 7692
// §5.1 says, offers with unknown, duplicated or invalid parameters, or a
// server window under 15 bits.
//
// A message sent to many sockets (Broadcast, SendRoom, SendIdentity) is
// compressed once, and its bytes are shared by every socket that
// negotiated the extension; Stats.Compressed counts compressions. A
// message that would not shrink goes out uncompressed.
//
// It is off by default because it costs CPU for every compressed message,
// and memory while a message is compressed or inflated (about 300 KiB for
// a deflate writer, pooled, and 32 KiB of window for each message being
// inflated); text such as JSON shrinks 3-10 times, so it pays where
// bandwidth is dearer than CPU.
func WithCompression(threshold int) Option {
	return option(func(c *config) {
		c.compress = true
		c.compressMin = threshold
		if threshold <= 0 {
			c.compressMin = DefaultCompressionThreshold
		}
	})
}

// deflated is a message's compressed payload, made once, by the first
// writer that needs it, and shared by every socket the message goes to.
type deflated struct {
	once  sync.Once
	data  []byte // nil if compressing would not shrink it
	stats *counters
	raw   []byte
}

// compressible returns m ready to be compressed once for every socket it
// goes to, if the Endpoint compresses and m is large enough.
func (e *Endpoint) compressible(m Message) Message {
	if e.cfg.compress && m.z == nil && len(m.data) >= e.cfg.compressMin {
		m.z = &deflated{stats: &e.stats, raw: m.data}
	}
	return m
}

// payload returns what goes on the wire for m to a socket, and whether it
// is compressed (the frame's RSV1 bit).
func (m *Message) payload(deflate bool) ([]byte, bool) {
	if !deflate || m.z == nil {
		return m.data, false
	}
	z := m.z
	z.once.Do(z.compress)
	if z.data == nil {
		return m.data, false
	}
	return z.data, true
}

var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// compress deflates raw as one message of RFC 7692: the raw deflate
// stream, sync-flushed, without the flush's final 00 00 ff ff.
func (z *deflated) compress() {
	var buf bytes.Buffer
	buf.Grow(len(z.raw)/2 + 16)
	w := flateWriters.Get().(*flate.Writer)
	w.Reset(&buf)
	w.Write(z.raw)
	w.Flush()
	flateWriters.Put(w)
	z.stats.compressed.Add(1)
	out := buf.Bytes()
	if len(out) >= 4 {
		out = out[:len(out)-4]
	}
	if len(out) < len(z.raw) {
		z.data = out
	}
	z.raw = nil
}
