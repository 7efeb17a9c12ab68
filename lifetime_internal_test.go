package laf

import (
	"testing"
	"time"
)

// TestLifetimeJitter checks WithMaxLifetime's draw: never over d, never
// under 0.9×d, and spread over that range rather than one value.
func TestLifetimeJitter(t *testing.T) {
	for _, d := range []time.Duration{time.Hour, 3 * time.Second, 10 * time.Nanosecond, time.Nanosecond} {
		c := newConfig([]Option{WithMaxLifetime(d)})
		lo, hi := d, time.Duration(0)
		for range 10_000 {
			l := c.lifetime()
			lo, hi = min(lo, l), max(hi, l)
		}
		if lo < d-d/10 || hi > d {
			t.Fatalf("d %v: lifetimes in [%v, %v], want within [%v, %v]", d, lo, hi, d-d/10, d)
		}
		// 10,000 uniform draws miss the range's first or last
		// hundredth (d/1000) with a probability of 2×0.99^10000, about
		// 4e-44.
		if d >= time.Second && (lo > d-d/10+d/1000 || hi < d-d/1000) {
			t.Fatalf("d %v: lifetimes in [%v, %v], not spread over [%v, %v]", d, lo, hi, d-d/10, d)
		}
	}
}
