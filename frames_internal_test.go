package laf

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// countSent decides the MessagesOut of a batch whose write failed midway:
// only frames written whole count.
func TestCountSentCountsWholeFramesOnly(t *testing.T) {
	batch := []Message{
		{data: make([]byte, 10)},                // 2 + 10 bytes
		{data: make([]byte, 200), binary: true}, // 4 + 200 bytes
		{data: make([]byte, 70000)},             // 10 + 70000 bytes
		{},                                      // 2 bytes
	}
	failed := errors.New("broken pipe")
	for _, tc := range []struct {
		written int64
		want    int
	}{
		{0, 0},
		{11, 0},
		{12, 1},
		{12 + 203, 1},
		{12 + 204, 2},
		{12 + 204 + 70009, 2},
		{12 + 204 + 70010, 3},
		{12 + 204 + 70010 + 2, 4},
	} {
		got, err := countSent(batch, false, tc.written, failed)
		assert.Equal(t, tc.want, got, "after %d bytes", tc.written)
		assert.Equal(t, failed, err)
	}
	got, err := countSent(batch, false, 0, nil)
	assert.Equal(t, len(batch), got)
	assert.NoError(t, err)
}
