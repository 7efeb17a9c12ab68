package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/bench/internal/proc"
)

// snapshot is the process at one moment.
type snapshot struct {
	At         time.Duration // since the start of the load
	Goroutines int
	HeapAlloc  uint64 // live heap after a GC
	HeapInuse  uint64
	RSS        int64
}

// take reads the process after a GC; with free, it also returns freed
// memory to the OS first.
func take(at time.Duration, free bool) snapshot {
	runtime.GC()
	runtime.GC()
	if free {
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := snapshot{At: at, Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse}
	if p, err := proc.Read(os.Getpid()); err == nil {
		s.RSS = p.RSS
	}
	return s
}

// check is one invariant and what the run showed of it.
type check struct {
	Name   string
	OK     bool
	Detail string
}

// result is a soak run: its counts, samples and checks.
type result struct {
	cfg        config
	began      time.Time
	ran        time.Duration // the load's duration, as run
	drained    time.Duration // from the stop to the end of the drain
	stopReason string

	start, mid, end snapshot
	samples         []sample
	trend           trend

	stats                                         laf.Stats
	connEvents, msgEvents, errEvents, closeEvents uint64
	panics, handlerErrs, echoSendErrs, rateErrs   uint64
	causes                                        [numCauses]uint64
	byKind                                        [numKinds][numCauses]uint64
	openedByKind                                  [numKinds]uint64
	streamSent, broadcasts, reaped, probes        uint64

	kinds                                [numKinds]kindReport
	echoes, recvBroadcasts, churnSkipped uint64
	rawStreams                           uint64
	violations                           map[string]uint64
	examples                             []string
	leaked                               string // stacks of goroutines left over, if any
	checks                               []check
}

type kindReport struct {
	dials, dialErrs, sent, recv uint64
	outcomes, dialErrors        map[string]uint64
}

// run runs the soak: baseline, load for cfg.Duration (or until ctx is
// done or MaxOpened sockets have opened), drain, checks. progress gets a
// line now and then.
func run(ctx context.Context, cfg config, progress io.Writer) (*result, error) {
	res := &result{cfg: cfg, began: time.Now()}
	baseIDs := goroutineIDs()
	res.start = take(0, true)
	if err := res.load(ctx, progress); err != nil {
		return nil, err
	}
	// The server and clients are unreachable now: what the heap holds
	// beyond the baseline is what laf (or the soak) leaked.
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > res.start.Goroutines+cfg.GoroutineSlack && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res.end = take(res.ran+res.drained, true)
	if res.end.Goroutines > res.start.Goroutines+cfg.GoroutineSlack {
		res.leaked = newGoroutines(baseIDs)
	}
	res.evaluate()
	return res, nil
}

// load starts the server and the clients, runs the load, and drains.
func (res *result) load(ctx context.Context, progress io.Writer) error {
	cfg := &res.cfg
	v := newViolations()
	srv, err := newServer(cfg, v)
	if err != nil {
		return err
	}
	cl, err := newClients(cfg, srv.addr, v)
	if err != nil {
		srv.http.Close()
		return err
	}
	begin := time.Now()
	smp := &sampler{}
	sctx, stopSampling := context.WithCancel(context.Background())
	var sampling sync.WaitGroup
	sampling.Go(func() { smp.run(sctx, cfg.Sample, begin, srv) })

	loadCtx, stopLoad := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	loops.Go(func() { srv.broadcastLoop(loadCtx) })
	reapRng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	loops.Go(func() { srv.reapLoop(loadCtx, reapRng) })
	loops.Go(func() { srv.probeLoop(loadCtx) })
	cl.start(rng.Uint64())

	// Run until the duration passes, ctx is done, or enough sockets have
	// opened; take the middle snapshot at half time.
	end := time.NewTimer(cfg.Duration)
	half := time.NewTimer(cfg.Duration / 2)
	tick := time.NewTicker(100 * time.Millisecond)
	report := time.NewTicker(max(cfg.Duration/20, 10*time.Second))
	res.stopReason = "duration reached"
	midTaken := false
wait:
	for {
		select {
		case <-end.C:
			break wait
		case <-ctx.Done():
			res.stopReason = "interrupted"
			break wait
		case <-half.C:
			res.mid = take(time.Since(begin), false)
			midTaken = true
		case <-report.C:
			st := srv.ep.Stats()
			fmt.Fprintf(progress, "soak: %5.0fs live %d opened %d closed %d msgs in %d out %d goroutines %d\n",
				time.Since(begin).Seconds(), st.Live, srv.connEvents.Load(), srv.closeEvents.Load(),
				st.MessagesIn, st.MessagesOut, runtime.NumGoroutine())
		case <-tick.C:
			if srv.connEvents.Load() >= cfg.MaxOpened {
				res.stopReason = fmt.Sprintf("%d sockets opened (-max-opened)", cfg.MaxOpened)
				break wait
			}
		}
	}
	end.Stop()
	half.Stop()
	tick.Stop()
	report.Stop()
	res.ran = time.Since(begin)
	if !midTaken {
		res.mid = take(res.ran, false)
	}
	fmt.Fprintf(progress, "soak: load stopped after %v (%s); shutting down\n", res.ran.Round(time.Millisecond), res.stopReason)

	// Drain: no new sockets, the loops stop, Shutdown closes the sockets
	// left (1001), and every client and stream must then finish.
	cl.halt()
	stopLoad()
	loops.Wait()
	shCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := srv.ep.Shutdown(shCtx); err != nil {
		v.add("Shutdown did not finish in 30s", err.Error())
	}
	cancel()
	if !waitTimeout(&cl.wg, 30*time.Second) {
		v.add("clients still running 30s after Shutdown", "")
		cl.cancel()
		waitTimeout(&cl.wg, 10*time.Second)
	}
	if !waitTimeout(&srv.streams, 10*time.Second) {
		v.add("streams to never-reading peers still running 10s after Shutdown", "")
	}
	cl.cancel()
	srv.http.Close()
	cl.tr.CloseIdleConnections()
	srv.recent.clear()
	res.drained = time.Since(begin) - res.ran
	stopSampling()
	sampling.Wait()
	res.samples = smp.samples

	// Copy out what the checks need, so that nothing keeps the server or
	// the clients alive.
	res.stats = srv.ep.Stats()
	if n := srv.live.len(); n != 0 {
		v.add("ids left between connection and close events", fmt.Sprint(n))
	}
	if n := srv.ep.Len(); n != 0 {
		v.add("sockets left in the registry after Shutdown", fmt.Sprint(n))
	}
	res.connEvents, res.msgEvents = srv.connEvents.Load(), srv.msgEvents.Load()
	res.errEvents, res.closeEvents = srv.errEvents.Load(), srv.closeEvents.Load()
	res.panics, res.handlerErrs = srv.panics.Load(), srv.handlerErrs.Load()
	res.echoSendErrs, res.rateErrs = srv.echoSendErrs.Load(), srv.rateErrors.Load()
	for c := range numCauses {
		res.causes[c] = srv.causes[c].Load()
	}
	for k := range numKinds {
		res.openedByKind[k] = srv.openedByKind[k].Load()
		for c := range numCauses {
			res.byKind[k][c] = srv.byKind[k][c].Load()
		}
		ks := &cl.stats[k]
		ks.mu.Lock()
		res.kinds[k] = kindReport{
			dials: ks.dials.Load(), dialErrs: ks.dialErrs.Load(), sent: ks.sent.Load(), recv: ks.recv.Load(),
			outcomes: ks.outcomes, dialErrors: ks.dialErrors,
		}
		ks.mu.Unlock()
	}
	res.streamSent, res.broadcasts = srv.streamSent.Load(), srv.broadcasts.Load()
	res.reaped, res.probes = srv.reaped.Load(), srv.probes.Load()
	res.echoes, res.recvBroadcasts = cl.echoes.Load(), cl.broadcasts.Load()
	res.churnSkipped, res.rawStreams = cl.churnSkipped.Load(), cl.rawStreams.Load()
	res.violations, res.examples = v.snapshot()
	return nil
}

// waitTimeout waits for wg, for at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// evaluate turns the counts into checks.
func (res *result) evaluate() {
	cfg := &res.cfg
	add := func(name string, ok bool, format string, args ...any) {
		res.checks = append(res.checks, check{name, ok, fmt.Sprintf(format, args...)})
	}
	viol := func(names ...string) (n uint64) {
		for _, name := range names {
			n += res.violations[name]
		}
		return n
	}
	st := &res.stats

	n := viol("connection event twice", "connection event for a live id")
	add("one connection event per socket", n == 0 && res.connEvents == st.Accepted,
		"%d connection events for %d accepted upgrades; %d duplicates", res.connEvents, st.Accepted, n)

	n = viol("close event twice", "close event for an id not live", "close event without a connection event",
		"ids left between connection and close events", "sockets left in the registry after Shutdown",
		"close event with an unknown cause")
	add("one close event per socket", n == 0 && res.closeEvents == res.connEvents && st.Live == 0,
		"%d close events for %d connection events; %d live after Shutdown; %d violations", res.closeEvents, res.connEvents, st.Live, n)

	n = viol("message event after the close event", "message event after the error event",
		"message event after a failed connection event", "message event before the connection event",
		"error event after the close event", "error event before the connection event", "events of one socket overlap")
	add("no event after the close event", n == 0,
		"%d message events checked; %d after a close, error or failed connection event, or overlapping", res.msgEvents, n)

	n = viol("send succeeded after the close event", "send in the close event did not return ErrClosed",
		"send after the socket's context is done did not return ErrClosed", "send to a closed socket did not return ErrClosed",
		"SendSocket to a closed socket did not return ErrNotFound", "closed socket found by Endpoint.Socket",
		"socket still in the registry during its close event", "socket context not done during its close event")
	add("no send succeeds after the close event", n == 0,
		"%d sends in close events, %d probes of closed sockets (Send, SendSocket, Socket), %d streamed sends checked; %d succeeded",
		res.closeEvents, res.probes, res.streamSent, n)

	var mismatch []string
	for c := 1; c < numCauses; c++ {
		if st.Closes[c] != res.causes[c] {
			mismatch = append(mismatch, fmt.Sprintf("%v: Stats %d, Func %d", laf.CloseCause(c), st.Closes[c], res.causes[c]))
		}
	}
	if st.MessagesIn != res.msgEvents {
		mismatch = append(mismatch, fmt.Sprintf("messages in: Stats %d, Func %d", st.MessagesIn, res.msgEvents))
	}
	if st.Panics != res.panics {
		mismatch = append(mismatch, fmt.Sprintf("panics: Stats %d, thrown %d", st.Panics, res.panics))
	}
	if st.HandlerErrors != res.handlerErrs {
		mismatch = append(mismatch, fmt.Sprintf("handler errors: Stats %d, returned %d", st.HandlerErrors, res.handlerErrs))
	}
	add("Stats agree with the Func", len(mismatch) == 0, "%s", joinOr(mismatch, "closes by cause, messages in, panics and handler errors all match"))

	var missing []string
	for _, c := range pathCauses {
		if res.causes[c] == 0 {
			missing = append(missing, c.String())
		}
	}
	pathsOK := len(missing) == 0 || res.ran < 30*time.Second
	add("every close path seen", pathsOK, "%s", joinOr(missing, fmt.Sprintf("all %d causes seen", len(pathCauses)))+
		map[bool]string{true: " (not required of runs under 30s)", false: ""}[len(missing) > 0 && pathsOK])

	n = viol("echo out of order")
	add("echoes in order", n == 0, "%d echoes received in order; %d out of order", res.echoes, n)

	n = viol("server sent an invalid frame", "server sent a bad close frame, or bytes after it")
	add("raw streams valid", n == 0, "%d server byte streams parsed by rawws; %d invalid", res.rawStreams, n)

	var other []string
	for name, k := range res.violations {
		if !knownViolation[name] {
			other = append(other, fmt.Sprintf("%s (%d)", name, k))
		}
	}
	sort.Strings(other)
	add("drain", len(other) == 0, "%s", joinOr(other, "Shutdown, clients and streams finished; no other fault"))

	add("goroutines back to the baseline", res.end.Goroutines <= res.start.Goroutines+cfg.GoroutineSlack,
		"%d at the start, %d at the middle, %d at the end (at most %d allowed)",
		res.start.Goroutines, res.mid.Goroutines, res.end.Goroutines, res.start.Goroutines+cfg.GoroutineSlack)

	heapMax := res.start.HeapAlloc + uint64(cfg.HeapSlack)
	add("heap back to the baseline", res.end.HeapAlloc <= heapMax,
		"%s at the start, %s at the middle, %s at the end, after GC (at most %s allowed)",
		mib(int64(res.start.HeapAlloc)), mib(int64(res.mid.HeapAlloc)), mib(int64(res.end.HeapAlloc)), mib(int64(heapMax)))

	res.trend = rssTrend(res.samples, res.ran/2, res.ran)
	t := res.trend
	allowed := cfg.RSSGrowth*t.Mean + float64(cfg.RSSSlack)
	flat := t.N >= 5 && t.Growth <= allowed
	name := "RSS flat over the second half"
	if cfg.RSSNotJudged != "" {
		name += " (not judged: " + cfg.RSSNotJudged + ")"
		flat = true
	}
	add(name, flat,
		"%d samples from %.0fs to %.0fs: mean %s, min %s, max %s; fitted slope %+.1f KiB/s, %s over the half (at most %s allowed); last quarter / third quarter mean %.3f",
		t.N, t.From.Seconds(), t.To.Seconds(), mib(int64(t.Mean)), mib(t.Min), mib(t.Max), t.Slope/1024, mibSigned(t.Growth), mib(int64(allowed)), t.QuarterRatio)
}

// knownViolation names the violations that a check above counts.
var knownViolation = map[string]bool{
	"connection event twice": true, "connection event for a live id": true,
	"close event twice": true, "close event for an id not live": true, "close event without a connection event": true,
	"ids left between connection and close events": true, "sockets left in the registry after Shutdown": true,
	"close event with an unknown cause":   true,
	"message event after the close event": true, "message event after the error event": true,
	"message event after a failed connection event": true, "message event before the connection event": true,
	"error event after the close event": true, "error event before the connection event": true, "events of one socket overlap": true,
	"send succeeded after the close event": true, "send in the close event did not return ErrClosed": true,
	"send after the socket's context is done did not return ErrClosed": true, "send to a closed socket did not return ErrClosed": true,
	"SendSocket to a closed socket did not return ErrNotFound": true, "closed socket found by Endpoint.Socket": true,
	"socket still in the registry during its close event": true, "socket context not done during its close event": true,
	"echo out of order":            true,
	"server sent an invalid frame": true, "server sent a bad close frame, or bytes after it": true,
}

func (res *result) ok() bool {
	for _, c := range res.checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// failed names the failed checks.
func (res *result) failed() string {
	var names []string
	for _, c := range res.checks {
		if !c.OK {
			names = append(names, c.Name)
		}
	}
	return joinOr(names, "none")
}

func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "; " + x
	}
	return out
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func mibSigned(b float64) string { return fmt.Sprintf("%+.1f MiB", b/(1<<20)) }
