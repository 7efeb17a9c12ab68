package wire

import (
	"bytes"
	"compress/flate"
	"testing"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	p := New(Broadcast, 100, 1<<63+5, 1764150000123456789)
	if len(p) != 100 || p[len(p)-1] != 'x' {
		t.Fatalf("bad payload %q", p)
	}
	kind, seq, nanos, err := Parse(p)
	if err != nil || kind != Broadcast || seq != 1<<63+5 || nanos != 1764150000123456789 {
		t.Fatalf("Parse = %c %d %d %v", kind, seq, nanos, err)
	}
	if _, _, _, err := Parse(p[:10]); err == nil {
		t.Fatal("short payload parsed")
	}
	if len(New(Echo, 1, 0, 0)) != HeaderLen {
		t.Fatal("payload shorter than its header")
	}
}

func TestChat(t *testing.T) {
	p := NewChat(Echo, 1024, 3, 4)
	kind, seq, nanos, err := Parse(p)
	if len(p) != 1024 || err != nil || kind != Echo || seq != 3 || nanos != 4 {
		t.Fatalf("Parse = %c %d %d %v (%d B)", kind, seq, nanos, err, len(p))
	}
	if !utf8.Valid(p) {
		t.Fatal("chat payload is not UTF-8")
	}
	// It shrinks like chat traffic, 3-10 times, with deflate's fastest
	// level (the one laf and gws use), from 2 KiB (a few messages) to
	// 32 KiB; a 1 KiB prefix, mostly first occurrences, about 2.8 times.
	for _, size := range []int{2048, 4096, 16384, 32768} {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestSpeed)
		w.Write(NewChat(Broadcast, size, 1, 2))
		w.Flush()
		r := float64(size) / float64(z.Len())
		t.Logf("%d B: deflated to %d B, %.1f times smaller", size, z.Len(), r)
		if r < 3 || r > 10 {
			t.Errorf("%d B deflates %.1f times, want 3-10", size, r)
		}
	}
}
