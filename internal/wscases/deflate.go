package wscases

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lafgo/laf/internal/rawws"
)

// assembler turns a server's frames into messages and control frames,
// checking the rules of RFC 6455 section 5.4 (fragmentation), 5.6 (text
// is UTF-8) and RFC 7692 section 6 (RSV1 on the first frame of a
// compressed message only).
type assembler struct {
	deflate  bool // permessage-deflate is in use
	takeover bool // the server may keep its LZ77 window between messages

	open       bool // a fragmented message is open
	op         byte
	compressed bool
	frames     int
	buf        []byte
	window     []byte // the server's last 32 KiB of compressed-message data
}

// add takes the next frame; done is set when it completes an event.
func (a *assembler) add(f rawws.Frame) (ev event, done bool, err error) {
	if f.RSV&^0b100 != 0 || f.RSV != 0 && !a.deflate {
		return ev, false, fmt.Errorf("RSV bits %03b set, not defined by any negotiated extension (RFC 6455 §5.2)", f.RSV)
	}
	if f.RSV != 0 && (f.IsControl() || f.Opcode == opCont) {
		return ev, false, fmt.Errorf("RSV1 set on a frame with opcode %#x, only the first frame of a message may have it (RFC 7692 §6)", f.Opcode)
	}
	if f.IsControl() {
		return event{op: f.Opcode, data: f.Payload}, true, nil
	}
	switch {
	case f.Opcode == opCont && !a.open:
		return ev, false, errors.New("continuation frame with no message to continue (RFC 6455 §5.4)")
	case f.Opcode != opCont && a.open:
		return ev, false, errors.New("new data frame inside a fragmented message (RFC 6455 §5.4)")
	case f.Opcode != opCont:
		a.open, a.op, a.compressed, a.frames, a.buf = true, f.Opcode, f.RSV != 0, 0, a.buf[:0]
	}
	a.frames++
	if len(a.buf)+len(f.Payload) > maxMessage {
		return ev, false, fmt.Errorf("a message of more than %d bytes", maxMessage)
	}
	a.buf = append(a.buf, f.Payload...)
	if !f.Fin {
		return ev, false, nil
	}
	a.open = false
	data := slices.Clone(a.buf)
	if a.compressed {
		if data, err = a.inflate(data); err != nil {
			return ev, false, fmt.Errorf("a compressed message that does not inflate: %w", err)
		}
	}
	if a.op == opText && !utf8.Valid(data) {
		return ev, false, fmt.Errorf("a text message that is not UTF-8 (RFC 6455 §8.1): %s", preview(data))
	}
	return event{op: a.op, data: data, compressed: a.compressed, frames: a.frames}, true, nil
}

// inflate decompresses a server message (RFC 7692 §7.2.2), with the
// window of its earlier messages if it may keep it.
func (a *assembler) inflate(p []byte) ([]byte, error) {
	var dict []byte
	if a.takeover {
		dict = a.window
	}
	out, err := inflate(p, dict, maxMessage)
	if err != nil {
		return nil, err
	}
	if a.takeover {
		a.window = append(a.window, out...)
		a.window = a.window[max(0, len(a.window)-32<<10):]
	}
	return out, nil
}

// deflateTail is what RFC 7692 §7.2.1 strips from the end of a
// compressed message and §7.2.2 appends before inflating.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflate decompresses p as a permessage-deflate payload: p with the
// tail appended, inflated with the preset window dict. The stream may end
// at the tail's empty stored block (then the reader wants more, which is
// the normal end) or with a final block. More than limit bytes is an
// error.
func inflate(p, dict []byte, limit int) ([]byte, error) {
	r := flate.NewReaderDict(io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail)), dict)
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	if err == nil && len(out) > limit {
		err = fmt.Errorf("inflates to more than %d bytes", limit)
	}
	return out, err
}

// compress deflates msg as a client sends it with no context takeover
// (RFC 7692 §7.2.1): a fresh raw deflate stream, sync-flushed, with the
// flush's trailing 00 00 ff ff removed.
func compress(msg []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write(msg)
	w.Flush()
	out := buf.Bytes()
	if !bytes.HasSuffix(out, deflateTail) {
		panic("wscases: a sync flush that does not end in 00 00 ff ff")
	}
	return out[:len(out)-4]
}

// An extension is one element of a Sec-WebSocket-Extensions header:
// extension-token *( ";" extension-param ) (RFC 6455 §9.1).
type extension struct {
	name   string
	params params
}

type param struct {
	name, value string
	hasValue    bool
}

type params []param

// String returns the parameters as they appear in the header.
func (ps params) String() string {
	var sb strings.Builder
	sb.WriteString("permessage-deflate")
	for _, p := range ps {
		sb.WriteString("; " + p.name)
		if p.hasValue {
			sb.WriteString("=" + p.value)
		}
	}
	return sb.String()
}

func (ps params) has(name string) bool {
	return slices.ContainsFunc(ps, func(p param) bool { return p.name == name })
}

func (ps params) get(name string) (param, bool) {
	i := slices.IndexFunc(ps, func(p param) bool { return p.name == name })
	if i < 0 {
		return param{}, false
	}
	return ps[i], true
}

// parseExtensions parses the values of Sec-WebSocket-Extensions header
// fields, with the grammar of RFC 6455 §9.1: a comma-separated list of
// extensions, each a token and parameters separated by semicolons, a
// parameter a token with an optional value, a token or a quoted string
// whose content is a token.
func parseExtensions(values []string) ([]extension, error) {
	var exts []extension
	for _, v := range values {
		for _, elem := range splitQuoted(v, ',') {
			if strings.TrimSpace(elem) == "" {
				continue // 1#element allows empty list elements
			}
			parts := splitQuoted(elem, ';')
			name := strings.TrimSpace(parts[0])
			if !isToken(name) {
				return nil, fmt.Errorf("extension name %q is not a token", name)
			}
			e := extension{name: name}
			for _, p := range parts[1:] {
				p = strings.TrimSpace(p)
				k, val, hasValue := strings.Cut(p, "=")
				k, val = strings.TrimSpace(k), strings.TrimSpace(val)
				if hasValue && strings.HasPrefix(val, `"`) {
					uq, err := strconv.Unquote(val)
					if err != nil || strings.ContainsAny(val, `\`) {
						return nil, fmt.Errorf("parameter %q: bad quoted string", p)
					}
					val = uq
				}
				if !isToken(k) || hasValue && !isToken(val) {
					return nil, fmt.Errorf("parameter %q of %s is not token[=token]", p, name)
				}
				e.params = append(e.params, param{name: k, value: val, hasValue: hasValue})
			}
			exts = append(exts, e)
		}
	}
	return exts, nil
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7F || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// windowBits parses a *_max_window_bits value: a decimal integer from 8
// to 15 without leading zeros (RFC 7692 §7.1.2.1, §7.1.2.2).
func windowBits(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 || strconv.Itoa(n) != v {
		return 0, false
	}
	return n, true
}

// negotiated checks a server's Sec-WebSocket-Extensions response to the
// offers the client made (one header value, comma-separated offers of
// permessage-deflate): it returns nil if the server declined them all
// (no extension in the response), or the parameters of the one
// permessage-deflate element, which must be a valid response to one of
// the offers (RFC 7692 §5 and §7.1); an invalid response is an error.
func negotiated(offers string, response []string) (params, error) {
	exts, err := parseExtensions(response)
	if err != nil {
		return nil, fmt.Errorf("response Sec-WebSocket-Extensions %q: %w", response, err)
	}
	if len(exts) == 0 {
		return nil, nil
	}
	if len(exts) > 1 || exts[0].name != "permessage-deflate" {
		return nil, fmt.Errorf("response Sec-WebSocket-Extensions %q: want one permessage-deflate element, as offered (RFC 6455 §9.1)", response)
	}
	offered, err := parseExtensions([]string{offers})
	if err != nil {
		return nil, err
	}
	var errs []string
	for i, o := range offered {
		if o.name != "permessage-deflate" {
			continue
		}
		err := validResponse(o.params, exts[0].params)
		if err == nil {
			return append(params{}, exts[0].params...), nil // non-nil: accepted
		}
		errs = append(errs, fmt.Sprintf("offer %d: %v", i+1, err))
	}
	return nil, fmt.Errorf("response Sec-WebSocket-Extensions %q is no valid answer to the offer %q: %s", response, offers, strings.Join(errs, "; "))
}

// acceptedOffer returns the index of the first of the offers that the
// response resp can answer, or -1.
func acceptedOffer(offers string, resp params) int {
	offered, err := parseExtensions([]string{offers})
	if err != nil {
		return -1
	}
	for i, o := range offered {
		if o.name == "permessage-deflate" && validResponse(o.params, resp) == nil {
			return i
		}
	}
	return -1
}

// validResponse checks resp as the parameters of a server's response
// accepting the offer with parameters offer (RFC 7692 §7.1).
func validResponse(offer, resp params) error {
	if err := validParams(offer, false); err != nil {
		return fmt.Errorf("the offer is invalid: %w", err)
	}
	if err := validParams(resp, true); err != nil {
		return err
	}
	if offer.has("server_no_context_takeover") && !resp.has("server_no_context_takeover") {
		return errors.New("the offer has server_no_context_takeover, so an accepting response must too (§7.1.1.1)")
	}
	if o, ok := offer.get("server_max_window_bits"); ok {
		r, ok := resp.get("server_max_window_bits")
		if !ok {
			return errors.New("the offer has server_max_window_bits, so an accepting response must too (§7.1.2.1)")
		}
		if ov, _ := windowBits(o.value); mustBits(r.value) > ov {
			return fmt.Errorf("server_max_window_bits=%s in the response is above the offer's %s (§7.1.2.1)", r.value, o.value)
		}
	}
	if r, ok := resp.get("client_max_window_bits"); ok {
		o, ok := offer.get("client_max_window_bits")
		if !ok {
			return errors.New("client_max_window_bits in the response, but not in the offer (§7.1.2.2)")
		}
		if o.hasValue && mustBits(r.value) > mustBits(o.value) {
			return fmt.Errorf("client_max_window_bits=%s in the response is above the offer's %s (§7.1.2.2)", r.value, o.value)
		}
	}
	return nil
}

func mustBits(v string) int {
	n, _ := windowBits(v)
	return n
}

// validParams checks the parameters of an offer, or of a response: only
// the four of RFC 7692 §7.1, each at most once, with a value where one is
// due. In an offer client_max_window_bits may have no value; in a
// response it must have one.
func validParams(ps params, response bool) error {
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.name] {
			return fmt.Errorf("parameter %s twice (§7)", p.name)
		}
		seen[p.name] = true
		switch p.name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.hasValue {
				return fmt.Errorf("%s=%s: it takes no value (§7.1.1)", p.name, p.value)
			}
		case "server_max_window_bits":
			if _, ok := windowBits(p.value); !ok || !p.hasValue {
				return fmt.Errorf("server_max_window_bits=%q: want 8 to 15 (§7.1.2.1)", p.value)
			}
		case "client_max_window_bits":
			if !p.hasValue && !response {
				continue
			}
			if _, ok := windowBits(p.value); !ok || !p.hasValue {
				return fmt.Errorf("client_max_window_bits=%q: want 8 to 15 (§7.1.2.2)", p.value)
			}
		default:
			return fmt.Errorf("unknown parameter %s (§7)", p.name)
		}
	}
	return nil
}
