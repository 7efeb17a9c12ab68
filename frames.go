package laf

import (
	"net"

	"github.com/lafgo/laf/internal/wsconn"
)

// A socket's whole batch of queued messages goes out in one write (or
// one writev) through its connection's writer (internal/wsconn), which
// holds the connection's one write lock, so that frames never interleave,
// and refuses data frames once a close frame has gone out either way.

// frameBatch is the scratch for writing a batch too large for the
// socket's own small buffer, pooled per Endpoint so that an idle socket
// holds none.
type frameBatch struct {
	hdrs []byte      // the frame headers, back to back, for writev
	bufs net.Buffers // headers and payloads, for writev
	v    net.Buffers // what of bufs is left to write; here, not on the stack, as it escapes
	flat []byte      // the whole batch, copied
}

// maxHeader is the longest header of a server's frame.
const maxHeader = wsconn.MaxHeader

// appendHeader appends a data frame's header: see wsconn.AppendHeader.
var appendHeader = wsconn.AppendHeader

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

// writeFrames writes batch as one frame per message in a single write,
// and returns how many messages went out whole. Only the socket's writer
// calls it.
func (o *outbox) writeFrames(batch []Message) (int, error) {
	deflate := o.s.deflate
	size := 0
	for i := range batch {
		p, _ := batch[i].payload(deflate)
		size += maxHeader + len(p)
	}
	c := o.s.conn
	if size <= len(o.wbuf) {
		// Small frames need neither the pool nor an allocation.
		n, err := c.WriteData(appendFrames(o.wbuf[:0], batch, deflate))
		return countSent(batch, deflate, int64(n), err)
	}

	e := o.s.ep
	fb, _ := e.frameBatches.Get().(*frameBatch)
	if fb == nil {
		fb = new(frameBatch)
	}
	defer e.frameBatches.Put(fb)
	var n int64
	var err error
	if c.TCP() && size > flatMax {
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
		n, err = c.WriteVec(&fb.v)
		fb.v = nil
		clear(bufs)
		fb.hdrs, fb.bufs = hdrs[:0], bufs[:0]
	} else {
		flat := appendFrames(fb.flat[:0], batch, deflate)
		var m int
		m, err = c.WriteData(flat)
		n = int64(m)
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
