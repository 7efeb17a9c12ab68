package wsconn

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// RFC 7692 in its no-context-takeover form: every message is deflated on
// its own, so that a socket keeps no compression state between messages.

// tail ends a message's deflate data for inflating: the 00 00 ff ff the
// sender took off its final sync flush (§7.2.2), then an empty final
// block, so that well-formed data inflates to a clean end.
var tail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

var (
	inflaters sync.Pool // io.ReadCloser and flate.Resetter
	zbufs     = sync.Pool{New: func() any { b := make([]byte, 0, readChunk); return &b }}
)

func getZBuf() *[]byte { return zbufs.Get().(*[]byte) }

func putZBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		zbufs.Put(b)
	}
}

// inflate appends to dst the message whose deflate data is *z, or returns
// the ProtocolError it earns: 1009 once the message passes limit (with at
// most limit+1 bytes inflated), 1002 for data that is not deflate, or
// that does not end exactly at the end of the payload, where the sender
// ended it: with a final block (and perhaps the one 00 byte a trimmed
// sync flush leaves after it), or with the empty stored block of a sync
// flush, whose LEN and NLEN are the 00 00 ff ff the sender took off.
// Bytes after the end would be a message hidden inside another, and data
// cut short would be delivered cut short. An empty payload, which holds
// no deflate data at all, is taken for an empty message.
func inflate(dst []byte, z *[]byte, limit int64) ([]byte, *ProtocolError) {
	n := len(*z)
	if n == 0 {
		return dst, nil
	}
	*z = append(*z, tail...)
	start := len(dst)
	src := bytes.NewReader(*z) // klauspost/compress's fastest source
	dst, err := inflateFrom(dst, src, limit)
	if err != nil {
		return nil, err
	}
	switch used := len(*z) - src.Len(); {
	case used == n:
		// A final block ended the payload.
	case used == n-1 && (*z)[n-1] == 0:
		// A final block, then what a sync flush leaves once its 00 00 ff
		// ff is taken off: an empty stored block's header byte (RFC 7692
		// §7.2.3.3 sends "Hello" as f3 48 cd c9 c9 07 00 00).
	case used != len(*z):
		return nil, protocolErr("deflate data does not end with the message")
	case bytes.HasSuffix(dst[start:], tail[:4]):
		// The 00 00 ff ff may have been read as a stored block's data:
		// the payload then ended inside that block. Rare (a message that
		// ends in these bytes), so inflate again, watching how they are
		// read.
		w := &markerWatch{b: *z, n: n}
		if _, err := inflateFrom(nil, w, limit); err != nil || w.asData {
			return nil, protocolErr("deflate data cut short")
		}
	}
	return dst, nil
}

// inflateFrom appends to dst what src inflates to, up to limit+1 bytes.
func inflateFrom(dst []byte, src flate.Reader, limit int64) ([]byte, *ProtocolError) {
	f, _ := inflaters.Get().(io.ReadCloser)
	if f == nil {
		f = flate.NewReader(src)
	} else {
		f.(flate.Resetter).Reset(src, nil)
	}
	defer inflaters.Put(f)
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		room := dst[len(dst):cap(dst)]
		if limit >= 0 && int64(len(room)) > limit+1-int64(len(dst)-start) {
			room = room[:limit+1-int64(len(dst)-start)] // one byte past the limit tells
		}
		m, err := f.Read(room)
		dst = dst[:len(dst)+m]
		if limit >= 0 && int64(len(dst)-start) > limit {
			return nil, errTooBig
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, protocolErr("invalid deflate data")
		}
	}
}

// markerWatch is a deflate source that notes whether the bytes after the
// payload (n bytes of b) are read as a stored block's data. The decoder
// reads a stored block's LEN and NLEN, and its data, with Read, and block
// headers and Huffman codes with ReadByte; the LEN and NLEN of the sync
// flush's empty block, and of the final block after it, are read right
// after a header, with ReadByte. A Read of those bytes that starts in the
// payload, or follows another Read, reads them as data.
type markerWatch struct {
	b        []byte
	n, pos   int
	lastRead bool
	asData   bool
}

func (w *markerWatch) ReadByte() (byte, error) {
	if w.pos == len(w.b) {
		return 0, io.EOF
	}
	w.lastRead = false
	w.pos++
	return w.b[w.pos-1], nil
}

func (w *markerWatch) Read(p []byte) (int, error) {
	if w.pos == len(w.b) {
		return 0, io.EOF
	}
	m := copy(p, w.b[w.pos:])
	if w.pos+m > w.n && (w.pos < w.n || w.lastRead) {
		w.asData = true
	}
	w.pos += m
	w.lastRead = true
	return m, nil
}

// offer is one permessage-deflate offer's parameters, as parsed.
type offer struct {
	serverMaxBits bool // server_max_window_bits=15 was offered
}

// negotiateDeflate picks the first acceptable permessage-deflate offer in
// the request's Sec-WebSocket-Extensions headers, and returns the
// response's extension header, or "" to decline them all (RFC 7692 §5.1:
// an offer with an unknown, duplicated or invalid parameter is declined,
// and so is one this server cannot honour: a server window under 15 bits).
// laf answers with no context takeover either way: the client must send
// every message deflated on its own (§7.1.1.2), so that a socket keeps no
// window between messages.
func negotiateDeflate(headers []string) string {
	for _, h := range headers {
		for _, ext := range splitOutside(h, ',') {
			params := splitOutside(ext, ';')
			if strings.TrimSpace(params[0]) != "permessage-deflate" {
				continue
			}
			o, ok := parseOffer(params[1:])
			if !ok {
				continue
			}
			resp := "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
			if o.serverMaxBits {
				resp += "; server_max_window_bits=15"
			}
			return resp
		}
	}
	return ""
}

// parseOffer checks an offer's parameters (§7.1) and reports whether this
// server can accept it.
func parseOffer(params []string) (offer, bool) {
	var o offer
	seen := make(map[string]bool, len(params))
	for _, p := range params {
		name, value, hasValue := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if hasValue && len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if seen[name] {
			return o, false
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return o, false
			}
		case "server_max_window_bits":
			bits, ok := windowBits(value, hasValue)
			if !ok || !hasValue || bits != 15 {
				return o, false // a smaller window than this server's compressor uses
			}
			o.serverMaxBits = true
		case "client_max_window_bits":
			if _, ok := windowBits(value, hasValue); !ok {
				return o, false
			}
		default:
			return o, false
		}
	}
	return o, true
}

// windowBits parses a window-bits value: a decimal 8–15 without leading
// zeros. No value is valid only for client_max_window_bits, which may
// come bare.
func windowBits(v string, hasValue bool) (int, bool) {
	if !hasValue {
		return 0, true
	}
	if v == "" || v[0] == '0' || len(v) > 2 {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 {
		return 0, false
	}
	return n, true
}

// splitOutside splits s at sep, except inside a quoted string.
func splitOutside(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}
