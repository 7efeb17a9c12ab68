package laf

import (
	"testing"
)

// A published message of a room never replaces a newer one of the same
// room and Latest key in a socket's queue; a newer one replaces an older.
func TestLatestKeepsTheNewerPosition(t *testing.T) {
	e := &Endpoint{cfg: newConfig[Option](nil)}
	s := &Socket{ep: e}
	s.out.init(s)
	s.out.state = outHeld // the socket's event holds its sends: nothing is written
	pub := func(room string, off uint64, data string) Message {
		m, err := envelope(room, Position{Epoch: "e", Offset: off}, Text(data))
		if err != nil {
			t.Fatal(err)
		}
		return Latest("k", m)
	}
	for _, m := range []Message{pub("r", 5, "five"), pub("r", 3, "three"), pub("other", 1, "other room")} {
		if err := s.out.enqueue(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.out.queue) != 1 || s.out.queue[0].pub.room != "other" {
		t.Fatalf("queue %v: want the other room's message alone, which replaced r's (another room is no older)", s.out.queue)
	}
	s.out.queue = nil
	s.out.qBytes = 0
	for _, m := range []Message{pub("r", 3, "three"), pub("r", 5, "five"), pub("r", 4, "four")} {
		if err := s.out.enqueue(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.out.queue) != 1 || s.out.queue[0].pub.offset != 5 {
		t.Fatalf("queue %+v: want offset 5 alone", s.out.queue)
	}
}
