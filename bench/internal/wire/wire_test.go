package wire

import "testing"

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
