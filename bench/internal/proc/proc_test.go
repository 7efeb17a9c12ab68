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

func TestReadKernel(t *testing.T) {
	k, err := ReadKernel()
	if err != nil {
		t.Fatal(err)
	}
	if k.Slab <= 0 || k.Available <= 0 {
		t.Fatalf("implausible reading %+v", k)
	}
	// Where /proc/slabinfo can be read (as root), the caches of sockets
	// hold something: this process's own files at least.
	if _, err := os.ReadFile("/proc/slabinfo"); err == nil && (k.SockSlab <= 0 || k.SockSlab > k.Slab) {
		t.Fatalf("SockSlab %d of Slab %d", k.SockSlab, k.Slab)
	}
}

func TestRaiseNofile(t *testing.T) {
	// Asking for no more than the soft limit changes nothing.
	r, err := RaiseNofile(1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cur < 1 || r.Max < r.Cur || r.RaisedMax {
		t.Fatalf("RaiseNofile(1) = %+v", r)
	}
}
