package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/lafgo/laf/bench/internal/proc"
)

// sample is one reading of the process during the run.
type sample struct {
	T          time.Duration // since the load began
	RSS        int64         // resident set size (VmRSS)
	HeapAlloc  uint64        // Go heap, allocated and not yet freed (not after a GC)
	GoHeld     uint64        // memory the Go runtime holds from the OS (Sys - HeapReleased)
	Goroutines int
	Live       int64  // live sockets (Stats.Live)
	Opened     uint64 // connection events so far
	MsgsIn     uint64 // messages delivered to the Func so far
	MsgsOut    uint64 // messages written to peers so far
}

type sampler struct {
	samples []sample
}

// run samples every interval until ctx is done.
func (s *sampler) run(ctx context.Context, every time.Duration, begin time.Time, srv *server) {
	t := time.NewTicker(every)
	defer t.Stop()
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		st := srv.ep.Stats()
		x := sample{
			T: time.Since(begin), HeapAlloc: ms.HeapAlloc, GoHeld: ms.Sys - ms.HeapReleased, Goroutines: runtime.NumGoroutine(),
			Live: st.Live, Opened: srv.connEvents.Load(), MsgsIn: st.MessagesIn, MsgsOut: st.MessagesOut,
		}
		if p, err := proc.Read(os.Getpid()); err == nil {
			x.RSS = p.RSS
		}
		s.samples = append(s.samples, x)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// trend is RSS over a window of the run: its least-squares line and
// spread.
type trend struct {
	From, To     time.Duration
	N            int
	Mean         float64 // of RSS, bytes
	MeanT        float64 // of the samples' times, seconds: the line passes through (MeanT, Mean)
	Min, Max     int64
	Slope        float64 // bytes per second
	Growth       float64 // Slope times the window's length
	QuarterRatio float64 // mean of the window's second half over its first half's
	First, Last  int64   // the first and last samples' RSS
}

// rssTrend fits a line to the RSS samples taken in [from, to].
func rssTrend(samples []sample, from, to time.Duration) trend {
	tr := trend{From: from, To: to, Min: math.MaxInt64}
	var xs, ys []float64
	for _, s := range samples {
		if s.T < from || s.T > to || s.RSS == 0 {
			continue
		}
		xs = append(xs, s.T.Seconds())
		ys = append(ys, float64(s.RSS))
		tr.Min, tr.Max = min(tr.Min, s.RSS), max(tr.Max, s.RSS)
	}
	tr.N = len(xs)
	if tr.N < 2 {
		return tr
	}
	tr.First, tr.Last = int64(ys[0]), int64(ys[len(ys)-1])
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(tr.N)
	my /= float64(tr.N)
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	tr.Mean, tr.MeanT = my, mx
	if sxx > 0 {
		tr.Slope = sxy / sxx
	}
	tr.Growth = tr.Slope * (xs[len(xs)-1] - xs[0])
	mid := (xs[0] + xs[len(xs)-1]) / 2
	var a, b float64
	var na, nb int
	for i := range xs {
		if xs[i] < mid {
			a += ys[i]
			na++
		} else {
			b += ys[i]
			nb++
		}
	}
	if na > 0 && nb > 0 && a > 0 {
		tr.QuarterRatio = (b / float64(nb)) / (a / float64(na))
	}
	return tr
}

// goroutineIDs returns the ids of the goroutines that exist now.
func goroutineIDs() map[string]bool {
	ids := make(map[string]bool)
	for _, g := range goroutineStacks() {
		ids[goroutineID(g)] = true
	}
	return ids
}

// newGoroutines returns the stacks of the goroutines not in base, as
// goleak would list them.
func newGoroutines(base map[string]bool) string {
	var b strings.Builder
	for _, g := range goroutineStacks() {
		if !base[goroutineID(g)] {
			b.WriteString(g)
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

func goroutineStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		out = append(out, string(g))
	}
	return out
}

// goroutineID returns "goroutine N" from a stack's first line.
func goroutineID(stack string) string {
	first, _, _ := strings.Cut(stack, "\n")
	id, _, _ := strings.Cut(first, " [")
	return id
}
