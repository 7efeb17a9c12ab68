// Package wire encodes the envelopes that laf nodes exchange through a
// Broker. The format is laf's own: a version byte, then fields as
// uvarints and length-prefixed bytes. Decode never panics on bad input.
package wire

import (
	"encoding/binary"
	"errors"
)

// Version is the format's version byte. A node ignores envelopes of
// another version, so mixed versions in one cluster fail closed.
const Version = 2

// Op says what an envelope asks of the nodes that receive it.
type Op byte

const (
	OpSend      Op = iota + 1 // deliver Data to socket Target
	OpRoom                    // deliver Data to room Target
	OpIdentity                // deliver Data to identity Target
	OpBroadcast               // deliver Data to every socket
	OpClose                   // close socket Target with Code and Reason
	OpSnapshot                // Sockets is all of node Origin's sockets
	OpAdd                     // Sockets[0] opened on node Origin
	OpRemove                  // socket Target closed on node Origin
	OpJoin                    // socket Target joined room Room on node Origin
	OpLeave                   // socket Target left room Room on node Origin
	OpSync                    // every node with sockets: publish a snapshot now
	OpBye                     // node Origin is leaving: forget it
	opEnd
)

// Socket is one socket in a presence snapshot.
type Socket struct {
	ID       string
	Identity string
	Rooms    []string
}

// Envelope is one message between nodes.
type Envelope struct {
	Op      Op
	Origin  string // the publishing node's id
	Target  string
	Room    string
	Binary  bool
	Data    []byte
	Key     string // a laf.Latest message's key, or ""
	Code    int
	Reason  string
	Sockets []Socket
}

// Append appends the encoding of e to b.
func Append(b []byte, e *Envelope) []byte {
	b = append(b, Version, byte(e.Op))
	b = appendString(b, e.Origin)
	b = appendString(b, e.Target)
	b = appendString(b, e.Room)
	bin := byte(0)
	if e.Binary {
		bin = 1
	}
	b = append(b, bin)
	b = appendBytes(b, e.Data)
	b = appendString(b, e.Key)
	b = binary.AppendUvarint(b, uint64(e.Code))
	b = appendString(b, e.Reason)
	b = binary.AppendUvarint(b, uint64(len(e.Sockets)))
	for _, s := range e.Sockets {
		b = appendString(b, s.ID)
		b = appendString(b, s.Identity)
		b = binary.AppendUvarint(b, uint64(len(s.Rooms)))
		for _, r := range s.Rooms {
			b = appendString(b, r)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// ErrMalformed is returned by Decode for input that is not an envelope.
var ErrMalformed = errors.New("wire: malformed envelope")

// ErrVersion is returned by Decode for an envelope of another version.
var ErrVersion = errors.New("wire: unknown envelope version")

// Decode decodes an envelope. Data aliases b.
func Decode(b []byte) (*Envelope, error) {
	if len(b) < 2 {
		return nil, ErrMalformed
	}
	if b[0] != Version {
		return nil, ErrVersion
	}
	d := decoder{b: b[2:]}
	e := &Envelope{Op: Op(b[1])}
	if e.Op == 0 || e.Op >= opEnd {
		return nil, ErrMalformed
	}
	e.Origin = d.string()
	e.Target = d.string()
	e.Room = d.string()
	switch d.byte() {
	case 0:
	case 1:
		e.Binary = true
	default:
		d.err = true
	}
	e.Data = d.bytes()
	e.Key = d.string()
	e.Code = int(d.uvarint(1 << 16))
	e.Reason = d.string()
	n := d.uvarint(uint64(len(d.b))) // each socket takes at least a byte
	if n > 0 {
		e.Sockets = make([]Socket, n)
	}
	for i := range e.Sockets {
		s := &e.Sockets[i]
		s.ID = d.string()
		s.Identity = d.string()
		nr := d.uvarint(uint64(len(d.b)))
		if nr > 0 {
			s.Rooms = make([]string, nr)
		}
		for j := range s.Rooms {
			s.Rooms[j] = d.string()
		}
	}
	if d.err || len(d.b) != 0 {
		return nil, ErrMalformed
	}
	return e, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > max {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err || len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint(1<<63 - 1)
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }
