// Package hist is a log-linear latency histogram: 32 buckets per power of
// two (about 3% resolution), fixed size, no allocation per record.
package hist

import (
	"math/bits"
	"time"
)

const (
	subBits = 5
	sub     = 1 << subBits
	buckets = (65 - subBits) << subBits
)

// Hist counts durations in nanoseconds. The zero value is ready. It is
// not safe for concurrent use: give each goroutine its own and Merge.
type Hist struct {
	counts [buckets]uint64
	n      uint64
	max    int64
}

func index(v uint64) int {
	if v < sub {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>uint(shift)) - sub
}

// low returns the smallest value in bucket i and the bucket's width.
func low(i int) (uint64, uint64) {
	if i < sub {
		return uint64(i), 1
	}
	shift := uint(i>>subBits - 1)
	top := uint64(i&(sub-1)) + sub
	return top << shift, 1 << shift
}

// Record adds one duration.
func (h *Hist) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[index(uint64(d))]++
	h.n++
	if int64(d) > h.max {
		h.max = int64(d)
	}
}

// Merge adds o's counts to h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// Reset empties h.
func (h *Hist) Reset() { *h = Hist{} }

// Count returns the number of durations recorded.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest duration recorded.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the q-quantile (0 < q <= 1), the middle of its bucket.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := low(i)
			v := time.Duration(lo + w/2)
			if v > time.Duration(h.max) {
				v = time.Duration(h.max)
			}
			return v
		}
	}
	return time.Duration(h.max)
}
