package wsconn

import (
	"encoding/binary"
	"unicode/utf8"
)

// The opcodes of RFC 6455 §5.2.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// MaxHeader is the longest header of a server's frame: unmasked, with a
// 64-bit length.
const MaxHeader = 10

// AppendHeader appends the header of a final, unmasked text or binary
// frame with an n-byte payload, compressed (RSV1) if deflated.
func AppendHeader(b []byte, isBinary, deflated bool, n int) []byte {
	op := byte(opText)
	if isBinary {
		op = opBinary
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

// header is a frame's header as read.
type header struct {
	fin    bool
	rsv    byte // the RSV1–3 bits, in place (0x70)
	op     byte
	masked bool
	length uint64
	key    [4]byte
}

// Unmask XORs a payload with a client's mask key, as RFC 6455 §5.3 says.
func Unmask(b []byte, key [4]byte) {
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

// ValidCloseCode reports whether code may be sent in a close frame (RFC
// 6455 §7.4).
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// parseClose checks a close frame's payload (§5.5.1, §7.4) and returns
// its code and reason, or the ProtocolError it earns.
func parseClose(p []byte) (code int, reason string, perr *ProtocolError) {
	switch {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", protocolErr("close frame of 1 byte")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return 0, "", protocolErr("invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", errInvalidUTF8
	}
	return code, string(p[2:]), nil
}

// utf8Tail reports whether b, which utf8.Valid refused, is valid UTF-8 but
// for a code point cut short at its end, which the next fragment may
// complete: it returns the length of the valid part, or -1.
func utf8Tail(b []byte) int {
	// The cut code point starts within the last three bytes.
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if b[i]&0xC0 == 0x80 {
			continue // a continuation byte
		}
		if !utf8.Valid(b[:i]) || utf8.FullRune(b[i:]) {
			return -1
		}
		if completable(b[i:]) {
			return i
		}
		return -1
	}
	return -1
}

// completable reports whether p, the start of a code point, can be
// completed to a valid one.
func completable(p []byte) bool {
	var buf [4]byte
	n := copy(buf[:], p)
	seconds := []byte{0x80, 0x90, 0xA0}
	if n > 1 {
		seconds = []byte{p[1]}
	}
	for _, s := range seconds {
		buf[1] = s
		for j := 2; j < 4; j++ {
			if j >= n {
				buf[j] = 0x80
			}
		}
		for l := 2; l <= 4; l++ {
			if l >= n && utf8.FullRune(buf[:l]) {
				if utf8.Valid(buf[:l]) {
					return true
				}
				break
			}
		}
	}
	return false
}
