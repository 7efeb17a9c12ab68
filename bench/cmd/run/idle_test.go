package main

import (
	"strings"
	"testing"
	"time"
)

// TestIdleSummarize checks the figures drawn from an idle window's
// samples: the first interval only settles, the peaks are of the
// intervals after it, and the steady state is the last interval's median.
func TestIdleSummarize(t *testing.T) {
	const mib = 1 << 20
	row := IdleRow{N: 1000, Ping: time.Second, Intervals: 2, Base0RSS: 10 * mib, Base0Gor: 5}
	add := func(at time.Duration, rss int64, gor int) {
		row.Samples = append(row.Samples, IdleSample{T: at, RSS: rss, Gor: gor})
	}
	add(0, 40*mib, 900)                     // connecting's garbage: not a ping round
	add(500*time.Millisecond, 20*mib, 5)    // first interval
	add(1200*time.Millisecond, 21*mib, 300) // ping rounds
	add(1700*time.Millisecond, 25*mib, 20)  // the peak
	add(2100*time.Millisecond, 22*mib, 5)   // last interval: 22, 23, 24 MiB
	add(2500*time.Millisecond, 24*mib, 7)
	add(2900*time.Millisecond, 23*mib, 6)
	row.summarize()

	if row.FirstRSS != 40*mib || row.FirstGor != 900 {
		t.Errorf("first interval: %d B, %d goroutines", row.FirstRSS, row.FirstGor)
	}
	if row.PeakRSS != 25*mib || row.PeakAt != 1700*time.Millisecond || row.PeakGor != 300 {
		t.Errorf("peak: %d B at %v, %d goroutines", row.PeakRSS, row.PeakAt, row.PeakGor)
	}
	if row.SteadyRSS != 23*mib || row.SteadyGor != 6 {
		t.Errorf("steady: %d B, %d goroutines", row.SteadyRSS, row.SteadyGor)
	}
	if want := float64(13*mib) / 1000; row.SteadyPer != want {
		t.Errorf("SteadyPer = %v, want %v", row.SteadyPer, want)
	}
	if want := float64(15*mib) / 1000; row.PeakPer != want {
		t.Errorf("PeakPer = %v, want %v", row.PeakPer, want)
	}
	if want := 1.0 / 1000; row.GorPer != want {
		t.Errorf("GorPer = %v, want %v", row.GorPer, want)
	}
	if m := row.intervalMedian(2); m != 23*mib {
		t.Errorf("intervalMedian(2) = %d", m)
	}
}

// TestIdleScenario runs the idle scenario end to end, small: the server
// binary, laf's and gws's keepalive servers in their own processes, the
// idle clients, the sampled window and the report.
func TestIdleScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/server")
	}
	tmp := t.TempDir()
	bin, err := buildServer(tmp)
	if err != nil {
		t.Fatal(err)
	}
	cfg := quickConfig()
	cfg.IdleN, cfg.IdlePing, cfg.IdleSample, cfg.IdleIntervals, cfg.IdleMaxIntervals = 40, time.Second, 50*time.Millisecond, 1, 2
	r := &runner{cfg: cfg, bin: bin, tmp: tmp, libs: []string{"laf", "gws"}, res: &Results{}}
	r.res.Meta = meta(cfg, r.libs, []string{"idle"})
	if err := r.idle(); err != nil {
		t.Fatal(err)
	}
	if len(r.res.Idle) != 2 {
		t.Fatalf("%d rows, want laf's and gws's", len(r.res.Idle))
	}
	for _, row := range r.res.Idle {
		if row.N != 40 || row.Closed != 0 || row.ClientErrors != 0 {
			t.Errorf("%s: %d sockets, %d closed by the server, %d client errors", row.Lib, row.N, row.Closed, row.ClientErrors)
		}
		// Every socket is pinged in each full interval of the window.
		if min := uint64(row.N * row.Intervals); row.Pings < min {
			t.Errorf("%s: %d pings in %d intervals after the first, want at least %d", row.Lib, row.Pings, row.Intervals, min)
		}
		if row.SteadyRSS <= 0 || row.PeakRSS < row.SteadyRSS || row.Base0RSS <= 0 || row.Heap <= row.BaseHeap {
			t.Errorf("%s: implausible memory: %+v", row.Lib, row)
		}
		if row.Lib == "gws" && row.SteadyGor < int64(row.N) {
			t.Errorf("gws: %d goroutines in the steady state, want one per socket at least", row.SteadyGor)
		}
	}
	md := render(r.res, "")
	for _, want := range []string{"## 3. Idle memory, keepalive on", "| **laf** |", "| gws |", "steady-state idle RSS/socket at 40 sockets"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
