package proc

import (
	"os"
	"testing"
)

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.Threads <= 0 {
		t.Fatalf("implausible sample %+v", s)
	}
}

func TestBusy(t *testing.T) {
	b, err := Busy()
	if err != nil || b <= 0 {
		t.Fatalf("Busy() = %v, %v", b, err)
	}
}
