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
		{Op: OpSnapshot, Origin: "n3", Sockets: []Socket{
			{ID: "a", Identity: "alice", Rooms: []string{"r1", "r2"}},
			{ID: "b"},
		}},
		{Op: OpJoin, Origin: "n3", Target: "a", Room: "r1"},
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

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, &Envelope{Op: OpSnapshot, Origin: "n", Sockets: []Socket{{ID: "a", Rooms: []string{"r"}}}}))
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
