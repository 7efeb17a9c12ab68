package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lafgo/laf/bench/internal/proc"
)

// IdleRow is one contender holding idle sockets with keepalive on.
//
// The window starts when the last socket has connected and lasts at
// least 1+IdleIntervals ping intervals, and then as many more as it
// takes to reach the steady state, up to IdleMaxIntervals in all: RSS
// has stopped growing (the median of an interval's samples within
// idlePlateau of the one before), and, if the pings make garbage (the
// heap objects grew by more than idleChurn of the heap goal in the last
// interval), two GCs have run since the last socket connected, so that
// a whole GC cycle of ping garbage is in the window (RSS is flat after a
// GC until the heap outgrows its earlier high-water mark). The server
// is sampled every IdleSample. The first interval settles
// (connecting's garbage, the first pings); the peaks are of the ping
// rounds after it, and the steady state is the median of the last
// interval's samples. None of these involve a
// forced GC: they are RSS as top shows it. The forced figures, read
// after debug.FreeOSMemory once the window is over, are the figure of
// earlier reports (read then 1 s after connecting, before any ping).
type IdleRow struct {
	Lib string
	N   int
	// Wanted is the sockets asked for, and Limit why N is fewer, if it is
	// (the open-file limit, or the free memory).
	Wanted int
	Limit  string `json:",omitempty"`
	// Scale marks the idlescale scenario's rows.
	Scale     bool
	Ping      time.Duration // every contender's ping interval
	Intervals int           // measured, after the first
	Plateau   bool          // the window reached the steady state before IdleMaxIntervals
	GCs       int           // GC cycles in the window
	Profiled  bool          // run with GODEBUG=memprofilerate=1 for heap profiles: figures perturbed

	// Forced (debug.FreeOSMemory): before connecting (Base*), and after
	// the window.
	BaseRSS, RSS    int64
	BaseGor, Gor    int
	BaseHeap, Heap  uint64 // heap in use + stacks
	Threads         int
	RSSPer, HeapPer float64 // bytes per socket

	// Unforced. Base0RSS and Base0Gor are read before connecting, before
	// any forced GC.
	Base0RSS             int64
	Base0Gor             int
	SteadyRSS, SteadyGor int64
	PeakRSS              int64 // the highest sample of the ping rounds after the first interval
	PeakGor              int
	PeakAt               time.Duration // of PeakRSS, since the last socket connected
	FirstRSS, FirstGor   int64         // the highest sample of the first interval
	SteadyPer, PeakPer   float64       // bytes per socket over Base0RSS
	GorPer               float64       // steady goroutines per socket over Base0Gor
	Pings                uint64        // the clients got in the window
	Closed               int           // sockets the server closed, while they connected or idle
	ClientErrors         uint64        // pongs not written whole, frames not understood
	KernelPer            float64       // kernel memory per connection, both ends (Slab + TCP buffers)
	Connect              time.Duration // dialling every socket until the server had them all
	ConnectPerSec        float64
	Nofile               proc.Nofile // the run's open-file limit
	NrOpen               int         // fs.nr_open, the most open files a process may have
	Ports                int         // ephemeral ports per source address and destination
	Samples              []IdleSample
}

// IdleSample is one reading of the server during the window.
type IdleSample struct {
	T     time.Duration // since the last socket connected
	RSS   int64
	Gor   int // -1 if /stats did not answer
	Pings uint64
	// From the server's runtime/metrics: GC cycles since it started, the
	// heap goal, the bytes of heap objects (live and not yet swept).
	GCs         uint64
	HeapGoal    uint64
	HeapObjects uint64
}

// The steady state of the adaptive window (see IdleRow): RSS grew by
// less than idlePlateau of what the sockets add in the last interval,
// and the heap objects by less than idleChurn of the heap goal, or two
// GCs have run.
const (
	idlePlateau = 0.02
	idleChurn   = 0.01
)

// idleFDSpare is the open files each process keeps beyond one per
// socket: the server's listeners and control connections, the client's
// dials under way (two descriptors each while its own is duplicated).
const idleFDSpare = 200

// idleBytesPerConn bounds what a connection may cost the machine in the
// idle scenarios (server RSS, client, kernel both ends): N is cut so
// that N of them fit in half the available memory.
const idleBytesPerConn = 48 << 10

func (r *runner) idle() error {
	for _, lib := range r.serverLibs() {
		row, err := r.idleRun(lib, r.cfg.IdleN, false)
		if err != nil {
			return fmt.Errorf("%s: %w", lib, err)
		}
		r.res.Idle = append(r.res.Idle, row)
	}
	return nil
}

func (r *runner) idleScale() error {
	for _, lib := range r.cfg.IdleScaleLibs {
		if !slices.Contains(r.libs, lib) {
			continue
		}
		row, err := r.idleRun(lib, r.cfg.IdleScaleN, true)
		if err != nil {
			return fmt.Errorf("%s: %w", lib, err)
		}
		r.res.Idle = append(r.res.Idle, row)
	}
	return nil
}

// fitIdle raises the open-file limit for want sockets and returns how
// many fit: in the limit, and in half the available memory.
func fitIdle(want int) (n int, lim proc.Nofile, why string, err error) {
	lim, err = proc.RaiseNofile(uint64(want + idleFDSpare))
	if err != nil {
		return 0, lim, "", err
	}
	n = want
	if room := int(lim.Cur) - idleFDSpare; room < n {
		n = room
		why = fmt.Sprintf("the open-file limit: its hard limit is %s, and raising it failed (%s)", commas(int64(lim.Max)), lim.MaxErr)
	}
	if k, err := proc.ReadKernel(); err == nil {
		if room := int(k.Available / 2 / idleBytesPerConn); room < n {
			n = room
			why = fmt.Sprintf("the free memory: %s available", bytesStr(float64(k.Available)))
		}
	}
	if n < 1 {
		return 0, lim, why, fmt.Errorf("no room for idle sockets: %s", why)
	}
	return n, lim, why, nil
}

func (r *runner) idleRun(lib string, want int, scale bool) (IdleRow, error) {
	c := r.cfg
	n, lim, why, err := fitIdle(want)
	if err != nil {
		return IdleRow{}, err
	}
	if n < want {
		logf("  idle %s: %d sockets, not %d: %s", lib, n, want, why)
	}
	row := IdleRow{Lib: lib, N: n, Wanted: want, Limit: why, Scale: scale, Ping: c.IdlePing, Intervals: c.IdleIntervals,
		Nofile: lim, Profiled: r.profiling(lib)}
	if f := procInts("/proc/sys/fs/nr_open"); len(f) == 1 {
		row.NrOpen = f[0]
	}
	if f := procInts("/proc/sys/net/ipv4/ip_local_port_range"); len(f) == 2 {
		row.Ports = f[1] - f[0] + 1
	}
	var env []string
	if row.Profiled {
		env = []string{"GODEBUG=memprofilerate=1"}
	}
	s, err := startServer(r.bin, lib, r.tmp, env, "-ping", c.IdlePing.String(), "-nofile", strconv.Itoa(n+idleFDSpare))
	if err != nil {
		return row, err
	}
	defer s.stop()

	// The baseline as it is, then after a forced GC.
	time.Sleep(300 * time.Millisecond)
	var rss []int64
	var gor []int
	for range 5 {
		rss = append(rss, s.sample().RSS)
		if st, err := s.t.Lite(); err == nil {
			gor = append(gor, st.Goroutines)
		}
		time.Sleep(100 * time.Millisecond)
	}
	row.Base0RSS, row.Base0Gor = median(rss), median(gor)
	s.t.Stats(true)
	time.Sleep(200 * time.Millisecond)
	st, err := s.t.Stats(true)
	if err != nil {
		return row, err
	}
	time.Sleep(200 * time.Millisecond)
	row.BaseRSS, row.BaseGor, row.BaseHeap = s.sample().RSS, st.Goroutines, st.HeapInuse+st.StackInuse
	var prof string
	if row.Profiled {
		prof = filepath.Join(r.profDir, fmt.Sprintf("%s-idle-%d", lib, n))
		if err := s.fetch("/debug/pprof/heap?gc=1", prof+".heap.base.pb.gz"); err != nil {
			logf("  heap profile: %v", err)
		}
	}
	k0, kerr := proc.ReadKernel()

	t0 := time.Now()
	ic, err := s.t.DialIdle(n, false, max(2*time.Minute, time.Duration(n)*5*time.Millisecond))
	if err != nil {
		return row, err
	}
	defer ic.Stop()
	// Every socket is in the server's registry, or closed by the server
	// already (a contender that cannot keep up with its own pings while
	// sockets connect: the row counts them as closed).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		st, err := s.t.Lite()
		if err == nil && st.Conns+ic.Closed() == n {
			break
		}
		if time.Now().After(deadline) {
			return row, fmt.Errorf("the server has %d of %d sockets, and closed %d (%v)", st.Conns, n, ic.Closed(), err)
		}
	}
	connected := time.Now()
	row.Connect = connected.Sub(t0)
	row.ConnectPerSec = float64(n) / row.Connect.Seconds()
	logf("  idle %-12s %d sockets connected in %v", lib, n, row.Connect.Round(time.Millisecond))

	// The window, sampled, interval by interval.
	pings0 := ic.Pings()
	tick := time.NewTicker(c.IdleSample)
	now := connected
	for k := 1; ; k++ {
		for end := connected.Add(time.Duration(k) * c.IdlePing); now.Before(end); now = <-tick.C {
			smp := IdleSample{T: now.Sub(connected), RSS: s.sample().RSS, Gor: -1}
			if st, err := s.t.Lite(); err == nil {
				smp.Gor, smp.GCs, smp.HeapGoal, smp.HeapObjects = st.Goroutines, st.GCs, st.HeapGoal, st.HeapObjects
			}
			smp.Pings = ic.Pings() - pings0
			row.Samples = append(row.Samples, smp)
		}
		if prof != "" {
			// The allocations of each ping interval: -base the profile at
			// its start (kept for the last interval, below).
			if err := s.fetch("/debug/pprof/heap?gc=1", fmt.Sprintf("%s.heap.at%d.pb.gz", prof, k)); err != nil {
				logf("  heap profile: %v", err)
			}
		}
		if k < 1+c.IdleIntervals {
			continue
		}
		last, prev := row.intervalMedian(k-1), row.intervalMedian(k-2)
		flat := last-prev <= int64(idlePlateau*float64(last-row.Base0RSS))
		churn, gcs := row.churn(k - 1)
		row.GCs = gcs
		row.Plateau = flat && (!churn || gcs >= 2)
		if row.Plateau || k >= c.IdleMaxIntervals {
			row.Intervals = k - 1
			break
		}
		if !flat {
			logf("  idle %-12s RSS still growing after %d intervals: %s → %s", lib, k, bytesStr(float64(prev)), bytesStr(float64(last)))
		} else {
			logf("  idle %-12s RSS flat after %d intervals, but the pings make garbage and %d GCs have run: waiting for a whole GC cycle", lib, k, gcs)
		}
	}
	tick.Stop()
	if prof != "" {
		// Keep the profile at the start of the last interval, to be the
		// base of the one at its end: what one ping round allocates.
		for k := 1; k <= row.Intervals+1; k++ {
			f := fmt.Sprintf("%s.heap.at%d.pb.gz", prof, k)
			if k == row.Intervals {
				os.Rename(f, prof+".heap.lastround.pb.gz")
			} else {
				os.Remove(f)
			}
		}
	}
	if k1, err := proc.ReadKernel(); err == nil && kerr == nil {
		slab := k1.Slab - k0.Slab
		if k0.SockSlab > 0 && k1.SockSlab > 0 {
			slab = k1.SockSlab - k0.SockSlab
		}
		row.KernelPer = float64(slab+k1.TCPMem-k0.TCPMem) / float64(n)
	}
	row.Pings, row.Closed, row.ClientErrors = ic.Pings()-pings0, ic.Closed(), ic.Errors()
	if prof != "" {
		if err := s.fetch("/debug/pprof/heap?gc=1", prof+".heap.pb.gz"); err != nil {
			logf("  heap profile: %v", err)
		}
	}

	// Forced, as earlier reports read it.
	s.t.Stats(true)
	time.Sleep(200 * time.Millisecond)
	if st, err = s.t.Stats(true); err != nil {
		return row, err
	}
	time.Sleep(200 * time.Millisecond)
	p := s.sample()
	row.RSS, row.Gor, row.Heap, row.Threads = p.RSS, st.Goroutines, st.HeapInuse+st.StackInuse, p.Threads
	row.RSSPer = float64(row.RSS-row.BaseRSS) / float64(n)
	row.HeapPer = (float64(row.Heap) - float64(row.BaseHeap)) / float64(n)
	row.summarize()
	logf("  idle %-12s %d sockets, ping every %v: steady %s RSS/socket, peak in ping rounds %s (%.2f×), forced %s, heap+stack %s; goroutines %d → steady %d, peak %d; %.2f pings/socket, %d closed, kernel %s/connection",
		lib, n, c.IdlePing, bytesStr(row.SteadyPer), bytesStr(row.PeakPer), row.PeakPer/row.SteadyPer, bytesStr(row.RSSPer), bytesStr(row.HeapPer),
		row.Base0Gor, row.SteadyGor, row.PeakGor, float64(row.Pings)/float64(n), row.Closed, bytesStr(row.KernelPer))
	if row.Closed > 0 || row.ClientErrors > 0 {
		logf("  idle %s: the server closed %d sockets that answered its pings; %d client errors", lib, row.Closed, row.ClientErrors)
	}
	return row, nil
}

// intervalMedian returns the median RSS of the samples of ping interval
// k of the window (the first is 0).
func (row *IdleRow) intervalMedian(k int) int64 {
	var v []int64
	for _, s := range row.Samples {
		if s.T >= time.Duration(k)*row.Ping && s.T < time.Duration(k+1)*row.Ping {
			v = append(v, s.RSS)
		}
	}
	return median(v)
}

// churn says whether the heap objects grew by more than idleChurn of the
// heap goal over interval k (or a GC ran in it), and returns the GCs
// since the window began.
func (row *IdleRow) churn(k int) (bool, int) {
	var first, last *IdleSample
	for i := range row.Samples {
		s := &row.Samples[i]
		if s.Gor < 0 { // /stats did not answer
			continue
		}
		if s.T >= time.Duration(k)*row.Ping && s.T < time.Duration(k+1)*row.Ping {
			if first == nil {
				first = s
			}
			last = s
		}
	}
	var start *IdleSample
	for i := range row.Samples {
		if row.Samples[i].Gor >= 0 {
			start = &row.Samples[i]
			break
		}
	}
	if first == nil || start == nil {
		return true, 0
	}
	gcs := int(last.GCs - start.GCs)
	if last.GCs != first.GCs {
		return true, gcs
	}
	return float64(last.HeapObjects)-float64(first.HeapObjects) > idleChurn*float64(last.HeapGoal), gcs
}

// summarize computes the steady state and the peaks from the samples.
func (row *IdleRow) summarize() {
	last := time.Duration(row.Intervals) * row.Ping
	var steadyRSS []int64
	var steadyGor []int
	for _, s := range row.Samples {
		switch {
		case s.T < row.Ping:
			row.FirstRSS = max(row.FirstRSS, s.RSS)
			row.FirstGor = max(row.FirstGor, int64(s.Gor))
			continue
		case s.RSS > row.PeakRSS:
			row.PeakRSS, row.PeakAt = s.RSS, s.T
		}
		row.PeakGor = max(row.PeakGor, s.Gor)
		if s.T >= last {
			steadyRSS = append(steadyRSS, s.RSS)
			if s.Gor >= 0 {
				steadyGor = append(steadyGor, s.Gor)
			}
		}
	}
	row.SteadyRSS, row.SteadyGor = median(steadyRSS), int64(median(steadyGor))
	n := float64(row.N)
	row.SteadyPer = float64(row.SteadyRSS-row.Base0RSS) / n
	row.PeakPer = float64(row.PeakRSS-row.Base0RSS) / n
	row.GorPer = float64(row.SteadyGor-int64(row.Base0Gor)) / n
}

// procInts reads the integers of a /proc file, or none.
func procInts(path string) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var v []int
	for _, f := range strings.Fields(string(b)) {
		i, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		v = append(v, i)
	}
	return v
}

// median returns the middle value of v (the upper of the two middle
// ones), or zero for none.
func median[T int | int64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
