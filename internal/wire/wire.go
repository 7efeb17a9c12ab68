// Package wire encodes the envelopes that laf nodes exchange through a
// Broker. The format is laf's own: a version byte, then fields as
// uvarints and length-prefixed bytes. Decode never panics on bad input.
package wire

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Version is the format's version byte. A node ignores envelopes of
// another version, so mixed versions in one cluster fail closed.
//
// Version 3 routes sends by channel and replaces replicated presence
// (snapshots, adds, removes, joins, leaves) with a per-node beat and
// queries.
const Version = 3

// Op says what an envelope asks of the nodes that receive it.
type Op byte

const (
	OpSend        Op = iota + 1 // deliver Data to socket Target
	OpRoom                      // deliver Data to room Target
	OpIdentity                  // deliver Data to identity Target
	OpBroadcast                 // deliver Data to every socket
	OpClose                     // close socket Target with Code and Reason
	OpBeat                      // node Origin is alive and holds Count sockets
	OpSync                      // every node: beat now
	OpBye                       // node Origin is leaving: forget it for good
	OpPing                      // an Emitter's beat, to its own channel only
	OpAskOnline                 // is socket Target live? reply to node Origin with Query
	OpAskRoom                   // which of your sockets are in room Target?
	OpAskIdentity               // how many of your sockets carry identity Target?
	OpReply                     // the answer to query Query: Count, IDs
	opEnd
)

var opNames = [...]string{
	OpSend: "send", OpRoom: "room", OpIdentity: "identity", OpBroadcast: "broadcast",
	OpClose: "close", OpBeat: "beat", OpSync: "sync", OpBye: "bye", OpPing: "ping",
	OpAskOnline: "ask-online", OpAskRoom: "ask-room", OpAskIdentity: "ask-identity",
	OpReply: "reply",
}

// String returns the op's name, for logs: "send", "beat", ….
func (o Op) String() string {
	if o > 0 && o < opEnd {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Envelope is one message between nodes.
type Envelope struct {
	Op     Op
	Origin string // the publishing node's id
	Target string
	Binary bool
	Data   []byte
	Key    string // a laf.Latest message's key, or ""
	Code   int
	Reason string
	Query  uint64   // a query's number, echoed by its reply
	Count  uint64   // OpBeat: the node's live sockets; OpReply: a count
	IDs    []string // OpReply: socket ids
}

// Append appends the encoding of e to b.
func Append(b []byte, e *Envelope) []byte {
	b = append(b, Version, byte(e.Op))
	b = appendString(b, e.Origin)
	b = appendString(b, e.Target)
	bin := byte(0)
	if e.Binary {
		bin = 1
	}
	b = append(b, bin)
	b = appendBytes(b, e.Data)
	b = appendString(b, e.Key)
	b = binary.AppendUvarint(b, uint64(e.Code))
	b = appendString(b, e.Reason)
	b = binary.AppendUvarint(b, e.Query)
	b = binary.AppendUvarint(b, e.Count)
	b = binary.AppendUvarint(b, uint64(len(e.IDs)))
	for _, id := range e.IDs {
		b = appendString(b, id)
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
	e.Query = d.uvarint(1<<64 - 1)
	e.Count = d.uvarint(1<<64 - 1)
	n := d.uvarint(uint64(len(d.b))) // each id takes at least a byte
	if n > 0 {
		e.IDs = make([]string, n)
	}
	for i := range e.IDs {
		e.IDs[i] = d.string()
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
