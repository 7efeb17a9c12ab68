package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	for _, e := range []*Envelope{
		{Op: OpSend, Origin: "n1", Target: "sock", Data: []byte("hi")},
		{Op: OpBroadcast, Origin: "n1", Binary: true, Data: []byte{0, 1, 255}},
		{Op: OpRoom, Origin: "n1", Target: "board", Binary: true, Data: []byte{7}, Key: "cursors"},
		{Op: OpClose, Origin: "n2", Target: "s", Code: 4001, Reason: "kicked"},
		{Op: OpBeat, Origin: "n3", Count: 50000},
		{Op: OpAskRoom, Origin: "n3", Target: "r1", Query: 7},
		{Op: OpReply, Origin: "n2", Query: 7, Count: 2, IDs: []string{"n2.a", "n2.b"}},
	} {
		got, err := Decode(Append(nil, e))
		require.NoError(t, err)
		if e.Data == nil {
			e.Data = []byte{}
		}
		assert.Equal(t, e, got)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Append(nil, &Envelope{Op: OpSend, Origin: "n", Target: "t", Data: []byte("x")})
	for name, b := range map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{9}, good[1:]...),
		"op":        append([]byte{Version, 0}, good[2:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte{}, good...), 0),
		"huge len":  {Version, byte(OpSend), 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		_, err := Decode(b)
		assert.Error(t, err, name)
	}
}

func TestOpNames(t *testing.T) {
	assert.Equal(t, "send", OpSend.String())
	assert.Equal(t, "reply", OpReply.String())
	assert.Equal(t, "op(200)", Op(200).String())
	for op := OpSend; op < opEnd; op++ {
		assert.NotContains(t, op.String(), "op(", "op %d has no name", op)
	}
}

// TestBeatIsSmall pins the size of a node's beat: presence traffic is
// beats, so their size is the cost of presence per node.
func TestBeatIsSmall(t *testing.T) {
	b := Append(nil, &Envelope{Op: OpBeat, Origin: "AAAAAAAAAAA", Count: 100000})
	assert.LessOrEqual(t, len(b), 32)
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, &Envelope{Op: OpReply, Origin: "n", Query: 1, IDs: []string{"a", "b"}}))
	f.Add(Append(nil, &Envelope{Op: OpSend, Target: "t", Data: []byte("payload")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to an envelope that decodes the same.
		again, err := Decode(Append(nil, e))
		require.NoError(t, err)
		assert.Equal(t, e, again)
	})
}
