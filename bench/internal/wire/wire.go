// Package wire is the payload format shared by the servers and the load
// client: ASCII text, so it is valid UTF-8 for every library.
//
// A payload is a kind byte, two 16-digit hexadecimal numbers (a sequence
// number and a Unix time in nanoseconds), then 'x' up to the size; a
// chat payload (NewChat), for the compression scenarios, has JSON-like
// chat traffic instead of the 'x's.
package wire

import "fmt"

// Kinds of payload.
const (
	Echo      = 'E'
	Broadcast = 'B'
	Latest    = 'L' // a frame of the latest-state scenario
)

// HeaderLen is the smallest payload.
const HeaderLen = 1 + 16 + 16

const hexDigits = "0123456789abcdef"

// Fill writes a payload of kind into p (len(p) >= HeaderLen).
func Fill(p []byte, kind byte, seq uint64, nanos int64) {
	p[0] = kind
	Stamp(p, seq, nanos)
	for i := HeaderLen; i < len(p); i++ {
		p[i] = 'x'
	}
}

// Stamp rewrites the sequence number and time of a filled payload.
func Stamp(p []byte, seq uint64, nanos int64) {
	putHex(p[1:17], seq)
	putHex(p[17:33], uint64(nanos))
}

// New returns a payload of kind and size.
func New(kind byte, size int, seq uint64, nanos int64) []byte {
	if size < HeaderLen {
		size = HeaderLen
	}
	p := make([]byte, size)
	Fill(p, kind, seq, nanos)
	return p
}

// Parse returns the kind, sequence number and time of p.
func Parse(p []byte) (kind byte, seq uint64, nanos int64, err error) {
	if len(p) < HeaderLen {
		return 0, 0, 0, fmt.Errorf("wire: payload of %d bytes", len(p))
	}
	seq, ok1 := getHex(p[1:17])
	n, ok2 := getHex(p[17:33])
	if !ok1 || !ok2 {
		return 0, 0, 0, fmt.Errorf("wire: bad header %q", p[:HeaderLen])
	}
	return p[0], seq, int64(n), nil
}

func putHex(b []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&15]
		v >>= 4
	}
}

func getHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
