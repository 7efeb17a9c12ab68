package laf

import (
	"net"

	"github.com/lafgo/laf/internal/wsconn"
)

// A socket's batch of queued messages goes out in as few writes as it
// can (see flatMax) through its connection's writer (internal/wsconn),
// which holds the connection's one write lock for each write, so that
// frames never interleave, and refuses data frames once a close frame has
// gone out either way.

// frameBatch is the scratch for writing a batch, pooled per Endpoint so
// that an idle socket holds none.
type frameBatch struct {
	hdr  [maxHeader]byte
	vs   [2][]byte   // a large frame's header and payload, for writev
	v    net.Buffers // over vs; here, not on the stack, as it escapes
	flat []byte      // a group of frames, copied
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

// flatMax is the most bytes of frames written at once. A larger batch
// goes out in groups of whole frames, each one write under the
// connection's write lock, so that a pong or a ping can go out between
// them; a frame larger than that goes alone, with writev over TCP (which
// copies nothing) or copied into one buffer otherwise (TLS, where only a
// single Write keeps a frame whole).
const flatMax = 64 << 10

// writeFrames writes batch as one frame per message, and returns how many
// messages went out whole. Only the socket's writer calls it.
func (o *outbox) writeFrames(batch []Message) (int, error) {
	deflate := o.s.deflate
	c := o.s.conn
	e := o.s.ep
	fb, _ := e.frameBatches.Get().(*frameBatch)
	if fb == nil {
		fb = new(frameBatch)
	}
	defer e.frameBatches.Put(fb)
	var n int64
	var err error
	for start := 0; start < len(batch) && err == nil; {
		end, group := start+1, frameSize(&batch[start], deflate)
		for end < len(batch) && group+frameSize(&batch[end], deflate) <= flatMax {
			group += frameSize(&batch[end], deflate)
			end++
		}
		var m int64
		if group > flatMax && c.TCP() {
			p, z := batch[start].payload(deflate)
			fb.vs = [2][]byte{appendHeader(fb.hdr[:0], batch[start].binary, z, len(p)), p}
			fb.v = fb.vs[:]
			m, err = c.WriteVec(&fb.v)
			fb.vs, fb.v = [2][]byte{}, nil
		} else {
			flat := appendFrames(fb.flat[:0], batch[start:end], deflate)
			var k int
			k, err = c.WriteData(flat)
			m = int64(k)
			if cap(flat) <= 2*flatMax {
				fb.flat = flat[:0]
			}
		}
		n += m
		start = end
	}
	return countSent(batch, deflate, n, err)
}

// frameSize returns the bytes m's frame takes, at most.
func frameSize(m *Message, deflate bool) int {
	p, _ := m.payload(deflate)
	return maxHeader + len(p)
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
