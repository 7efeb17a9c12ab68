package proc

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Kernel is a reading of the kernel's memory that sockets use, which is
// in no process's RSS.
type Kernel struct {
	Slab int64 // bytes of slab caches (/proc/meminfo Slab): socket structs, files, epoll items, and everything else
	// SockSlab is the bytes of the slab caches an open TCP socket uses
	// (SocketSlabs), from /proc/slabinfo; zero if it cannot be read (it
	// takes root). Other processes move it far less than Slab.
	SockSlab  int64
	TCPMem    int64 // bytes of TCP socket buffers (/proc/net/sockstat TCP mem, in pages)
	TCPInUse  int   // TCP sockets in use (/proc/net/sockstat TCP inuse)
	Available int64 // MemAvailable, bytes
}

// ReadKernel reads /proc/meminfo and /proc/net/sockstat.
func ReadKernel() (Kernel, error) {
	var k Kernel
	mi, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return k, err
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Slab:":
			k.Slab = v << 10
		case "MemAvailable:":
			k.Available = v << 10
		}
	}
	ss, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return k, err
	}
	for _, line := range strings.Split(string(ss), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseInt(f[i+1], 10, 64)
			switch f[i] {
			case "inuse":
				k.TCPInUse = int(v)
			case "mem":
				k.TCPMem = v * int64(os.Getpagesize())
			}
		}
	}
	if k.Slab == 0 {
		return k, fmt.Errorf("no Slab in /proc/meminfo")
	}
	if si, err := os.ReadFile("/proc/slabinfo"); err == nil {
		for _, line := range strings.Split(string(si), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 || !slices.Contains(SocketSlabs, f[0]) {
				continue
			}
			active, err1 := strconv.ParseInt(f[1], 10, 64)
			size, err2 := strconv.ParseInt(f[3], 10, 64)
			if err1 == nil && err2 == nil {
				k.SockSlab += active * size
			}
		}
	}
	return k, nil
}

// SocketSlabs are the slab caches of an open TCP socket: the socket
// itself, its inode, file, dentry and security blob, and the epoll items
// that watch it.
var SocketSlabs = []string{"TCP", "sock_inode_cache", "filp", "dentry", "lsm_file_cache", "eventpoll_epi", "eventpoll_pwq"}

// Nofile is what RaiseNofile found and left.
type Nofile struct {
	Hard0     uint64 // the hard limit before
	Cur, Max  uint64 // the limits after
	RaisedMax bool   // the hard limit was raised (the process may: CAP_SYS_RESOURCE)
	// MaxErr is why the hard limit could not be raised, if it was to be.
	MaxErr string `json:",omitempty"`
}

// RaiseNofile raises this process's soft limit of open files to n, and
// the hard limit with it if it is lower and the process may (root may,
// up to fs.nr_open, with CAP_SYS_RESOURCE). It never lowers a limit. If the hard limit cannot
// be raised, the soft limit goes as high as the hard one; Cur then says
// how many files the process may open.
func RaiseNofile(n uint64) (Nofile, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return Nofile{}, err
	}
	r := Nofile{Hard0: lim.Max, Cur: lim.Cur, Max: lim.Max}
	if lim.Cur >= n {
		return r, nil
	}
	if n > lim.Max {
		want := syscall.Rlimit{Cur: n, Max: n}
		err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		if err == nil {
			r.Cur, r.Max, r.RaisedMax = n, n, true
			return r, nil
		}
		r.MaxErr = err.Error()
	}
	want := syscall.Rlimit{Cur: min(n, lim.Max), Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return r, err
	}
	r.Cur = want.Cur
	return r, nil
}
