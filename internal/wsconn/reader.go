package wsconn

import (
	"bufio"
	"encoding/binary"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// readChunk is the largest payload given memory before it arrives: a
// larger one grows its buffer as its bytes come.
const readChunk = 4 << 10

// reader is a Conn's read side, owned by the goroutine that calls
// ReadMessage.
type reader struct {
	c     *Conn
	br    *bufio.Reader // nil while parked
	ir    *idleReader   // nil unless the connection parks, and while it is parked
	parks bool          // the connection reads through an idleReader (TCP on Unix), and may park

	// The message being read.
	inMsg      bool  // a message has begun and not ended
	binary     bool  // it is binary
	compressed bool  // its first frame had RSV1
	size       int64 // its payload bytes so far (compressed, if it is)
	valid      int   // bytes of it checked as UTF-8

	// After a ProtocolError: skip to the peer's close frame.
	failed bool
	blind  bool    // the framing is lost: read to the end of the connection
	skip   uint64  // payload bytes to skip before the next header
	err    error   // the error that ended reading: every later read returns it
	z      *[]byte // a compressed message's payload, pooled while it is read

	discard atomic.Bool // see Discard
}

// fronts are the bufio.Readers of parking connections, which give theirs
// back while parked (with their idleReaders), and controls the buffers of
// control frames' payloads.
var (
	fronts   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, frontBuffer) }}
	controls = sync.Pool{New: func() any { return new([125]byte) }}
)

func (r *reader) init(c *Conn, pending []byte) {
	r.c = c
	if c.tcp != nil {
		if ir := newIdleReader(c, pending); ir != nil {
			r.parks = true
			r.front(ir)
			return
		}
	}
	r.br = newBufReader(&prefixReader{pending: pending, r: c.nc})
}

// frontBuffer is the size of the bufio.Reader a parking connection reads
// frame headers through: a header and its mask key, so that a small
// frame costs few calls.
const frontBuffer = 64

// front sets a parking connection's readers: ir and a bufio.Reader over
// it.
func (r *reader) front(ir *idleReader) {
	r.ir = ir
	r.br = fronts.Get().(*bufio.Reader)
	r.br.Reset(ir)
}

// park gives the readers of a connection that parks, holding nothing,
// back to their pools.
func (r *reader) park() {
	r.br.Reset(nil)
	fronts.Put(r.br)
	r.ir.release()
	r.br, r.ir = nil, nil
}

func (r *reader) buffered() int {
	if r.br == nil {
		return 0 // parked
	}
	n := r.br.Buffered()
	if r.ir != nil {
		n += r.ir.pending()
	}
	return n
}

// Discard makes ReadMessage skip data frames from now on, neither
// inflating nor checking them, while it still answers pings and the
// peer's close frame: for a connection whose close has been decided. Any
// goroutine may call it.
func (c *Conn) Discard() { c.rd.discard.Store(true) }

// ReadMessage reads the next data message, answering the control frames
// before it. Only one goroutine may call it at a time.
//
// A message that comes as one uncompressed frame of n bytes is read into
// exact(n), if exact is not nil and the frame is small or has arrived
// whole; any other message is appended to (*buf)[:0], which grows only as
// bytes arrive. msg is one or the other.
//
// It fails with ErrPark (see Config.ParkAfter), with *CloseError once the
// peer's close frame is read, with *ProtocolError for a peer's violation
// or a message over the read limit, or with the connection's error.
func (c *Conn) ReadMessage(buf *[]byte, exact func(n int) []byte) (msg []byte, binary bool, err error) {
	r := &c.rd
	if r.br == nil {
		r.front(newIdleReader(c, nil)) // back from parking
	}
	for {
		if r.err != nil {
			return nil, false, r.err
		}
		if r.skip > 0 || r.blind {
			if err := r.skipPayload(); err != nil {
				return nil, false, r.end(err)
			}
		}
		if r.ir != nil && !r.inMsg && r.br.Buffered() == 0 {
			r.ir.boundary = true
		}
		h, err := r.readHeader()
		if err != nil {
			if err == ErrPark {
				r.park() // nothing is buffered
				return nil, false, err
			}
			return nil, false, r.end(err)
		}
		if perr := r.check(&h); perr != nil {
			if !r.blind {
				r.skip = h.length
			}
			if r.failed {
				continue
			}
			r.fail(perr)
			return nil, false, perr
		}
		if h.op&0x8 != 0 {
			if err := r.control(&h); err != nil {
				return nil, false, err
			}
			continue
		}
		if r.failed || r.discard.Load() {
			r.skip = h.length
			r.inMsg = !h.fin
			continue
		}
		if h.op != opContinuation {
			r.inMsg, r.binary, r.compressed, r.size, r.valid = true, h.op == opBinary, h.rsv != 0, 0, 0
		}
		if perr := r.overLimit(h.length); perr != nil {
			r.skip = h.length
			return nil, false, r.fail(perr)
		}
		if h.op != opContinuation {
			if !r.compressed && h.fin && exact != nil && (h.length <= readChunk || h.length <= uint64(r.buffered())) {
				r.inMsg = false
				msg = exact(int(h.length))
				if _, err := io.ReadFull(r.br, msg); err != nil {
					return nil, false, r.end(err)
				}
				Unmask(msg, h.key)
				if !r.binary && !utf8.Valid(msg) {
					return nil, false, r.fail(errInvalidUTF8)
				}
				return msg, r.binary, nil
			}
			*buf = (*buf)[:0]
			if r.compressed {
				r.z = getZBuf()
			}
		}
		into := buf
		if r.compressed {
			into = r.z
		}
		start := len(*into)
		*into, err = appendPayload(*into, r.br, h.length)
		if err != nil {
			return nil, false, r.end(err)
		}
		Unmask((*into)[start:], h.key)
		r.size += int64(h.length)
		if !r.binary && !r.compressed {
			if perr := r.checkUTF8(*buf, h.fin); perr != nil {
				return nil, false, r.fail(perr)
			}
		}
		if !h.fin {
			continue
		}
		r.inMsg = false
		if r.compressed {
			var perr *ProtocolError
			*buf, perr = inflate((*buf)[:0], r.z, r.c.cfg.ReadLimit)
			putZBuf(r.z)
			r.z = nil
			if perr != nil {
				return nil, false, r.fail(perr)
			}
			if !r.binary && !utf8.Valid(*buf) {
				return nil, false, r.fail(errInvalidUTF8)
			}
		}
		return *buf, r.binary, nil
	}
}

// readHeader reads a frame's header.
func (r *reader) readHeader() (header, error) {
	var h header
	b, err := r.br.Peek(2)
	if err != nil {
		return h, err
	}
	h.fin, h.rsv, h.op = b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0F
	h.masked = b[1]&0x80 != 0
	n := 2
	switch b[1] & 0x7F {
	case 126:
		n = 4
	case 127:
		n = 10
	}
	if h.masked {
		n += 4
	}
	if b, err = r.br.Peek(n); err != nil {
		return h, err
	}
	switch l := b[1] & 0x7F; l {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		h.length = binary.BigEndian.Uint64(b[2:])
	default:
		h.length = uint64(l)
	}
	if h.masked {
		copy(h.key[:], b[n-4:])
	}
	r.br.Discard(n)
	return h, nil
}

// check applies RFC 6455 §5 and RFC 7692 §6 to a frame's header.
func (r *reader) check(h *header) *ProtocolError {
	switch {
	case h.length > math.MaxInt64:
		r.blind = true
		return protocolErr("frame length over 2^63")
	case h.rsv&0x30 != 0:
		return protocolErr("reserved bits set")
	case h.op > opBinary && h.op < opClose || h.op > opPong:
		return protocolErr("reserved opcode")
	case !h.masked:
		return protocolErr("unmasked frame")
	case h.op&0x8 != 0:
		switch {
		case h.rsv != 0:
			return protocolErr("reserved bits set")
		case !h.fin:
			return protocolErr("fragmented control frame")
		case h.length > 125:
			return protocolErr("control frame over 125 bytes")
		}
	case h.op == opContinuation:
		switch {
		case !r.inMsg:
			return protocolErr("continuation with no message")
		case h.rsv != 0:
			return protocolErr("reserved bits set")
		}
	default:
		switch {
		case r.inMsg:
			return protocolErr("new message inside a fragmented one")
		case h.rsv != 0 && !r.c.defl:
			return protocolErr("reserved bits set")
		}
	}
	return nil
}

// overLimit checks the read limit before an n-byte payload of the message
// being read is read: the uncompressed size, or a compressed size that no
// message within the limit needs.
func (r *reader) overLimit(n uint64) *ProtocolError {
	limit := r.c.cfg.ReadLimit
	if limit < 0 {
		return nil
	}
	if r.compressed {
		limit = zlimit(limit)
	}
	if n > uint64(limit) || r.size+int64(n) > limit {
		return errTooBig
	}
	return nil
}

// zlimit is the most compressed bytes a message within limit may take:
// deflate's stored blocks add 5 bytes per 64 KiB, and an encoder's flushes
// a few more; twice the limit leaves room for any sensible one.
func zlimit(limit int64) int64 { return 2*limit + 1024 }

// checkUTF8 checks the text message in b as far as it has come: a code
// point cut at the end of a fragment waits for the next one.
func (r *reader) checkUTF8(b []byte, fin bool) *ProtocolError {
	tail := b[r.valid:]
	if utf8.Valid(tail) {
		r.valid = len(b)
		return nil
	}
	if !fin {
		if n := utf8Tail(tail); n >= 0 {
			r.valid += n
			return nil
		}
	}
	return errInvalidUTF8
}

// control handles a control frame: it answers a ping, reports a pong, and
// answers the peer's close frame, returning its CloseError.
func (r *reader) control(h *header) error {
	buf := controls.Get().(*[125]byte)
	defer controls.Put(buf)
	p := buf[:h.length]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return r.end(err)
	}
	Unmask(p, h.key)
	switch h.op {
	case opPing:
		if r.failed {
			break // a failed connection processes nothing more (RFC 6455 §7.1.7)
		}
		if err := r.c.answerPing(p); err != nil {
			return r.end(err)
		}
	case opPong:
		r.c.pongs.Add(1)
	case opClose:
		code, reason, perr := parseClose(p)
		if perr != nil {
			if !r.failed {
				return r.fail(perr)
			}
			code, reason = 1005, "" // the close we wait for, if not a good one
		}
		// The peer has closed: whether our echo reaches it changes nothing.
		r.c.answerClose(code, reason)
		return r.end(&CloseError{Code: code, Reason: reason})
	}
	return nil
}

// fail notes a ProtocolError and returns it: from now on, frames are
// skipped until the peer's close frame.
func (r *reader) fail(perr *ProtocolError) error {
	r.failed = true
	r.c.failing.Store(true)
	r.inMsg = false
	if r.z != nil {
		putZBuf(r.z)
		r.z = nil
	}
	return perr
}

// end notes the error that ends reading, and returns it.
func (r *reader) end(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the peer went without a close frame
	}
	r.err = err
	return err
}

// skipPayload skips the rest of a skipped frame's payload, or, blind,
// everything up to the connection's end.
func (r *reader) skipPayload() error {
	if r.blind {
		_, err := io.Copy(io.Discard, r.br)
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	for r.skip > 0 {
		n := min(r.skip, 1<<30)
		m, err := r.br.Discard(int(n))
		r.skip -= uint64(m)
		if err != nil {
			return err
		}
	}
	return nil
}

// appendPayload appends n bytes read from br to b, growing b only as the
// bytes arrive.
func appendPayload(b []byte, br *bufio.Reader, n uint64) ([]byte, error) {
	want := len(b) + int(n)
	if n <= readChunk || int(n) <= br.Buffered() {
		b = grow(b, int(n))
		_, err := io.ReadFull(br, b[len(b):want])
		return b[:want], err
	}
	for len(b) < want {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := br.Read(b[len(b):min(want, cap(b))])
		b = b[:len(b)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return b, err
		}
	}
	return b, nil
}

// grow returns b with room for n more bytes, growing as append does, so
// that a message of many fragments is copied a bounded number of times.
func grow(b []byte, n int) []byte { return slices.Grow(b, n) }
