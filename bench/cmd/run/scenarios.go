package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lafgo/laf/bench/internal/load"
	"github.com/lafgo/laf/bench/internal/proc"
	"github.com/lafgo/laf/bench/internal/servers"
)

// Results is everything one run measured.
type Results struct {
	Meta      Meta
	Echo      []EchoRow
	Rate      []RateRow
	Idle      []IdleRow // the idle scenario's rows, then idlescale's
	Broadcast []BcastRow
	Handshake []HSRow
	Latest    []LatestRow
	ZEcho     []ZEchoRow
	ZBcast    []ZBcastRow
	GoBench   *GoBench
	Cluster   string // the cluster scenario's section of the report, markdown
}

// Meta describes the run.
type Meta struct {
	Date, GoVersion, CPU, Kernel, Memory, Command, Duration string
	Cores                                                   int
	Config                                                  config
	Libs, Scenarios                                         []string
}

type EchoRow struct {
	Lib         string
	Conns, Size int
	Rate        float64 // messages/s
	P50, P99    time.Duration
	PerCPU      float64 // messages per server CPU-second
	CPU         float64 // server CPU, cores
	RSS         int64
	Errors      uint64
	Foreign     float64 // cores used by other jobs during the window
}

type RateRow struct {
	Lib                  string
	Target               int
	Sent, Got            uint64
	P50, P90, P99, P999  time.Duration
	Max                  time.Duration
	SvcP50, SvcP99       time.Duration // from the actual write
	CPU                  float64
	Errors               uint64
	Conns, Size, Seconds int
	Foreign              float64
}

type BcastRow struct {
	Lib         string
	N           int  // sockets on the server
	Stuck       bool // one of them never reads
	Receivers   int
	Median, Max time.Duration
	Deliveries  float64 // per second: receivers / median
	Timeouts    int
	CPUPer      time.Duration // server CPU per broadcast
	StuckSent   int           // bytes the stuck socket pushed before stalling
	StuckOpen   bool          // the server still had the stuck socket at the end
	Foreign     float64
}

type HSRow struct {
	Lib      string
	Rate     float64
	P50, P99 time.Duration
	CPUPer   time.Duration // server CPU per handshake
	Failed   uint64
	Workers  int
	Foreign  float64
}

type runner struct {
	cfg       config
	bin, tmp  string
	libs      []string
	profDir   string
	profLibs  []string
	res       *Results
	retryUsed time.Duration
	waitUsed  time.Duration
}

func (r *runner) start(lib string, extra ...string) (*server, error) {
	s, err := startServer(r.bin, lib, r.tmp, nil, extra...)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (r *runner) profiling(lib string) bool {
	return r.profDir != "" && slices.Contains(r.profLibs, lib)
}

// marker samples the server at the start and the end of a window, and
// optionally profiles it over the window. It also measures the CPU time
// that neither the server nor this client used: other jobs on the
// machine, which disturb the window.
type marker struct {
	s            *server
	a, b         proc.Sample
	ta, tb       time.Time
	busyA, busyB time.Duration // whole machine
	selfA, selfB time.Duration // this process (the client)
	prof         string        // file prefix, or ""
	profWindow   time.Duration
	profDone     chan struct{}
}

func (m *marker) mark(end bool) {
	if !end {
		m.busyA, _ = proc.Busy()
		m.selfA = selfCPU()
		m.ta, m.a = time.Now(), m.s.sample()
		if m.prof != "" {
			m.s.fetch("/debug/pprof/allocs", m.prof+".allocs.base.pb.gz")
			m.profDone = make(chan struct{})
			go func() {
				defer close(m.profDone)
				secs := max(1, int(m.profWindow.Round(time.Second)/time.Second))
				if err := m.s.fetch("/debug/pprof/profile?seconds="+strconv.Itoa(secs), m.prof+".cpu.pb.gz"); err != nil {
					logf("  profile: %v", err)
				}
			}()
		}
		return
	}
	m.tb, m.b = time.Now(), m.s.sample()
	m.busyB, _ = proc.Busy()
	m.selfB = selfCPU()
	if m.prof != "" {
		<-m.profDone
		m.s.fetch("/debug/pprof/allocs", m.prof+".allocs.pb.gz")
	}
}

func selfCPU() time.Duration {
	p, _ := proc.Read(os.Getpid())
	return p.CPU
}

func (m *marker) cpu() time.Duration { return m.b.CPU - m.a.CPU }
func (m *marker) cores() float64     { return m.cpu().Seconds() / m.tb.Sub(m.ta).Seconds() }

// foreign returns the cores other jobs used during the window.
func (m *marker) foreign() float64 {
	other := (m.busyB - m.busyA) - m.cpu() - (m.selfB - m.selfA)
	return max(0, other.Seconds()/m.tb.Sub(m.ta).Seconds())
}

// Windows disturbed by other jobs using more than quietCores are run
// again, up to maxTries in all, while the run's retry budget lasts; the
// least disturbed attempt is kept.
const (
	quietCores = 0.15
	maxTries   = 3
)

// retry runs attempt until it is quiet enough, and returns the index of
// the least disturbed attempt. Before each attempt it waits, briefly, for
// a moment when other jobs leave the machine alone.
func (r *runner) retry(what string, s *server, attempt func() (foreign float64)) int {
	best, bestF := 0, 0.0
	for i := 0; i < maxTries; i++ {
		r.waitQuiet(s)
		t0 := time.Now()
		f := attempt()
		if i == 0 || f < bestF {
			best, bestF = i, f
		}
		if i > 0 {
			r.retryUsed += time.Since(t0)
		}
		if f <= quietCores || i+1 == maxTries || r.retryUsed >= r.cfg.RetryBudget {
			break
		}
		logf("  %s: other jobs used %.2f cores; again", what, f)
	}
	return best
}

// waitQuiet waits until, over a quarter of a second, other jobs used less
// than quietCores, for at most 5 s and while the run's wait budget lasts.
// s is the server running, or nil.
func (r *runner) waitQuiet(s *server) {
	const step = 250 * time.Millisecond
	t0 := time.Now()
	defer func() { r.waitUsed += time.Since(t0) }()
	for time.Since(t0) < 5*time.Second && r.waitUsed+time.Since(t0) < r.cfg.WaitBudget {
		m := &marker{s: s}
		m.busyA, _ = proc.Busy()
		m.selfA = selfCPU()
		m.ta, m.a = time.Now(), s.sample()
		time.Sleep(step)
		m.tb, m.b = time.Now(), s.sample()
		m.busyB, _ = proc.Busy()
		m.selfB = selfCPU()
		if m.foreign() < quietCores {
			return
		}
	}
}

// betterRound prefers a round that other jobs left quiet over a
// disturbed one, and then the faster.
func betterRound(fNew, fOld, vNew, vOld float64) bool {
	qNew, qOld := fNew <= quietCores, fOld <= quietCores
	if qNew != qOld {
		return qNew
	}
	return vNew > vOld
}

// rotated returns the contenders starting at the round-th, so that no
// contender always runs first.
func rotated(libs []string, round int) []string {
	k := round % len(libs)
	return append(append([]string(nil), libs[k:]...), libs[:k]...)
}

// serverLibs returns the contenders that run outside the echo scenarios.
func (r *runner) serverLibs() []string {
	var libs []string
	for _, name := range r.libs {
		if l, err := servers.Find(name); err == nil && !l.EchoOnly {
			libs = append(libs, name)
		}
	}
	return libs
}

func (r *runner) echo() error {
	c := r.cfg
	best := map[[3]any]EchoRow{}
	for _, n := range c.EchoConns {
		for round := range c.Rounds {
			for _, lib := range rotated(r.libs, round) {
				rows, err := r.echoOne(lib, n, round)
				if err != nil {
					return err
				}
				for _, row := range rows {
					k := [3]any{lib, n, row.Size}
					if old, ok := best[k]; !ok || row.Errors < old.Errors || row.Errors == old.Errors && betterRound(row.Foreign, old.Foreign, row.Rate, old.Rate) {
						best[k] = row
					}
				}
			}
		}
	}
	for _, n := range c.EchoConns {
		for _, size := range c.EchoSizes {
			for _, lib := range r.libs {
				if row, ok := best[[3]any{lib, n, size}]; ok {
					r.res.Echo = append(r.res.Echo, row)
				}
			}
		}
	}
	return nil
}

func (r *runner) echoOne(lib string, n, round int) ([]EchoRow, error) {
	c := r.cfg
	s, err := r.start(lib)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	conns, err := s.t.DialMany(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lib, err)
	}
	defer load.CloseAll(conns)
	if _, err := s.t.WaitConns(n, true, 30*time.Second); err != nil {
		return nil, fmt.Errorf("%s: %w", lib, err)
	}
	var rows []EchoRow
	for _, size := range c.EchoSizes {
		var tries []EchoRow
		r.retry(fmt.Sprintf("echo %s %d x %d B", lib, n, size), s, func() float64 {
			m := &marker{s: s}
			if r.profiling(lib) && round == 0 && len(tries) == 0 && n == slices.Max(c.EchoConns) {
				m.prof = filepath.Join(r.profDir, fmt.Sprintf("%s-echo-%d-%d", lib, n, size))
				m.profWindow = c.EchoOn
			}
			res := load.EchoClosed(conns, size, c.EchoWarm, c.EchoOn, m.mark)
			row := EchoRow{
				Lib: lib, Conns: n, Size: size,
				Rate: res.Rate(), P50: res.Lat.Quantile(0.5), P99: res.Lat.Quantile(0.99),
				CPU: m.cores(), RSS: m.b.RSS, Errors: res.Errors, Foreign: m.foreign(),
			}
			if cpu := m.cpu().Seconds(); cpu > 0 {
				row.PerCPU = float64(res.Messages) / cpu
			}
			logf("  echo %-12s %5d conns %6d B: %9.0f msg/s p50 %-9v p99 %-9v %8.0f msg/CPU-s cpu %.2f err %d, other jobs %.2f cores",
				lib, n, size, row.Rate, row.P50.Round(time.Microsecond), row.P99.Round(time.Microsecond), row.PerCPU, row.CPU, row.Errors, row.Foreign)
			tries = append(tries, row)
			if res.Errors > 0 {
				return 0 // the sockets are gone: no retry
			}
			return row.Foreign
		})
		row := leastDisturbed(tries, func(e EchoRow) float64 { return e.Foreign })
		rows = append(rows, row)
		if row.Errors > 0 || tries[len(tries)-1].Errors > 0 {
			break
		}
	}
	return rows, nil
}

func (r *runner) rate() error {
	for _, lib := range r.libs {
		var tries []RateRow
		var err error
		r.retry("rate "+lib, nil, func() float64 {
			var row RateRow
			row, err = r.rateOne(lib)
			if err != nil {
				return 0
			}
			tries = append(tries, row)
			return row.Foreign
		})
		if err != nil {
			return err
		}
		r.res.Rate = append(r.res.Rate, leastDisturbed(tries, func(x RateRow) float64 { return x.Foreign }))
	}
	return nil
}

// rateOne runs the open loop on a fresh server: its sockets do not
// survive the run (a read deadline ends a gorilla connection).
func (r *runner) rateOne(lib string) (RateRow, error) {
	c := r.cfg
	s, err := r.start(lib)
	if err != nil {
		return RateRow{}, err
	}
	defer s.stop()
	conns, err := s.t.DialMany(c.RateConns)
	if err == nil {
		_, err = s.t.WaitConns(c.RateConns, true, 30*time.Second)
	}
	defer load.CloseAll(conns)
	if err != nil {
		return RateRow{}, fmt.Errorf("%s: %w", lib, err)
	}
	m := &marker{s: s}
	res := load.EchoOpen(conns, c.RateSize, c.Rate, c.RateWarm, c.RateOn, m.mark)
	row := RateRow{
		Lib: lib, Target: c.Rate, Sent: res.Sent, Got: res.Messages,
		P50: res.Lat.Quantile(0.5), P90: res.Lat.Quantile(0.9), P99: res.Lat.Quantile(0.99),
		P999: res.Lat.Quantile(0.999), Max: res.Lat.Max(),
		SvcP50: res.Service.Quantile(0.5), SvcP99: res.Service.Quantile(0.99),
		CPU: m.cores(), Errors: res.Errors, Conns: c.RateConns, Size: c.RateSize, Seconds: int(c.RateOn / time.Second),
		Foreign: m.foreign(),
	}
	logf("  rate %-12s sent %d got %d p50 %v p99 %v p99.9 %v max %v cpu %.2f err %d, other jobs %.2f cores", lib, row.Sent, row.Got,
		row.P50.Round(time.Microsecond), row.P99.Round(time.Microsecond), row.P999.Round(time.Microsecond), row.Max.Round(time.Microsecond), row.CPU, row.Errors, row.Foreign)
	return row, nil
}

// leastDisturbed returns the attempt during which other jobs used the
// least CPU.
func leastDisturbed[T any](tries []T, foreign func(T) float64) T {
	best := tries[0]
	for _, t := range tries[1:] {
		if foreign(t) < foreign(best) {
			best = t
		}
	}
	return best
}

func (r *runner) broadcast() error {
	c := r.cfg
	for _, n := range c.BcastN {
		// Each round runs every contender, with and without the stuck
		// socket; each contender's round whose plain run delivered most
		// is kept whole, so that its slowdown compares two neighbours.
		best := map[string][2]BcastRow{}
		for round := range c.BcastRounds {
			for _, lib := range rotated(r.serverLibs(), round) {
				var pair [2]BcastRow
				for i, stuck := range []bool{false, true} {
					s, err := r.start(lib)
					if err != nil {
						return err
					}
					row, err := r.broadcastOne(s, n, stuck)
					s.stop()
					if err != nil {
						return fmt.Errorf("%s: %w", lib, err)
					}
					logf("  broadcast %-12s %5d sockets stuck=%-5v: median %v max %v, %.0f deliveries/s, %v CPU/broadcast, timeouts %d (stuck sent %d B, open %v), other jobs %.2f cores",
						lib, n, stuck, row.Median.Round(time.Microsecond), row.Max.Round(time.Microsecond), row.Deliveries,
						row.CPUPer.Round(time.Microsecond), row.Timeouts, row.StuckSent, row.StuckOpen, row.Foreign)
					pair[i] = row
				}
				if old, ok := best[lib]; !ok || betterRound(pair[0].Foreign, old[0].Foreign, pair[0].Deliveries, old[0].Deliveries) {
					best[lib] = pair
				}
			}
		}
		for _, lib := range r.serverLibs() {
			pair := best[lib]
			r.res.Broadcast = append(r.res.Broadcast, pair[0], pair[1])
		}
	}
	return nil
}

func (r *runner) broadcastOne(s *server, n int, stuck bool) (BcastRow, error) {
	c := r.cfg
	row := BcastRow{Lib: s.lib, N: n, Stuck: stuck}
	readers := n
	if stuck {
		readers = n - 1
	}
	row.Receivers = readers
	conns, err := s.t.DialMany(readers)
	if err != nil {
		return row, err
	}
	rc := load.Receive(conns)
	defer rc.Stop()
	if _, err := s.t.WaitConns(readers, true, time.Minute); err != nil {
		return row, err
	}
	var sc *websocket.Conn
	if stuck {
		sc, row.StuckSent, err = s.t.Stuck(8<<20, time.Second)
		if err != nil {
			return row, err
		}
		defer sc.Close()
		time.Sleep(300 * time.Millisecond)
	}
	// Warm up, then time.
	if _, err := s.t.Broadcasts(rc, 5, c.BcastSize, c.BcastTimout); err != nil {
		return row, err
	}
	m := &marker{s: s}
	if r.profiling(s.lib) && n == slices.Max(c.BcastN) && !stuck {
		m.prof = filepath.Join(r.profDir, fmt.Sprintf("%s-broadcast-%d", s.lib, n))
		m.profWindow = 3 * time.Second
	}
	count := c.BcastCount[n]
	var timed []BcastRow
	var berr error
	r.retry(fmt.Sprintf("broadcast %s %d stuck=%v", s.lib, n, stuck), s, func() float64 {
		if len(timed) > 0 {
			m = &marker{s: s}
		}
		m.mark(false)
		res, err := s.t.Broadcasts(rc, count, c.BcastSize, c.BcastTimout)
		if m.prof != "" {
			// Keep broadcasting until the CPU profile's window is over.
			for time.Since(m.ta) < m.profWindow {
				s.t.Broadcasts(rc, 1, c.BcastSize, c.BcastTimout)
			}
		}
		m.mark(true)
		if err != nil {
			berr = err
			return 0
		}
		t := row
		t.Median, t.Max, t.Deliveries, t.Timeouts = res.Median(), res.Max(), res.DeliveriesPerSec(), res.Timeouts
		if m.prof == "" {
			t.CPUPer = m.cpu() / time.Duration(count)
		}
		t.Foreign = m.foreign()
		timed = append(timed, t)
		return t.Foreign
	})
	if berr != nil {
		return row, berr
	}
	row = leastDisturbed(timed, func(x BcastRow) float64 { return x.Foreign })
	if stuck {
		st, err := s.t.Stats(false)
		if err == nil {
			row.StuckOpen = st.Conns > readers
		}
	}
	return row, nil
}

func (r *runner) handshake() error {
	c := r.cfg
	best := map[string]HSRow{}
	for round := range c.Rounds {
		for _, lib := range rotated(r.serverLibs(), round) {
			s, err := r.start(lib)
			if err != nil {
				return err
			}
			var tries []HSRow
			r.retry("handshake "+lib, s, func() float64 {
				m := &marker{s: s}
				if r.profiling(lib) && round == 0 && len(tries) == 0 {
					m.prof = filepath.Join(r.profDir, lib+"-handshake")
					m.profWindow = c.HSOn
				}
				res := s.t.Handshakes(c.HSWorkers, c.HSOn, m.mark)
				row := HSRow{Lib: lib, Rate: res.Rate(), P50: res.Lat.Quantile(0.5), P99: res.Lat.Quantile(0.99),
					Failed: res.Failed, Workers: c.HSWorkers, Foreign: m.foreign()}
				if res.OK > 0 {
					row.CPUPer = m.cpu() / time.Duration(res.OK)
				}
				logf("  handshake %-12s %8.0f/s p50 %v p99 %v server CPU %v/handshake failed %d, other jobs %.2f cores",
					lib, row.Rate, row.P50.Round(time.Microsecond), row.P99.Round(time.Microsecond), row.CPUPer.Round(100*time.Nanosecond), row.Failed, row.Foreign)
				tries = append(tries, row)
				return row.Foreign
			})
			s.stop()
			row := leastDisturbed(tries, func(x HSRow) float64 { return x.Foreign })
			if old, ok := best[lib]; !ok || betterRound(row.Foreign, old.Foreign, row.Rate, old.Rate) {
				best[lib] = row
			}
		}
	}
	for _, lib := range r.serverLibs() {
		r.res.Handshake = append(r.res.Handshake, best[lib])
	}
	return nil
}

// GoBench is the output of the in-process Go benchmarks.
type GoBench struct {
	Command string
	Output  string
	Lines   []GoBenchLine
}

type GoBenchLine struct {
	Name    string
	NsOp    float64
	BOp     float64
	AllocOp float64
	Extra   map[string]float64
}

func (r *runner) gobench(modDir string) error {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", r.cfg.GoBenchTime, "-count", "1", "."}
	cmd := exec.Command("go", args...)
	cmd.Dir = modDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	gb := &GoBench{Command: "cd bench && go " + strings.Join(args, " "), Output: string(out)}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		l := GoBenchLine{Name: strings.TrimPrefix(f[0], "Benchmark"), Extra: map[string]float64{}}
		if i := strings.LastIndexByte(l.Name, '-'); i > 0 {
			if _, err := strconv.Atoi(l.Name[i+1:]); err == nil {
				l.Name = l.Name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				l.NsOp = v
			case "B/op":
				l.BOp = v
			case "allocs/op":
				l.AllocOp = v
			default:
				l.Extra[f[i+1]] = v
			}
		}
		gb.Lines = append(gb.Lines, l)
	}
	r.res.GoBench = gb
	logf("%s", strings.TrimSpace(string(out)))
	return nil
}

var _ = os.Stderr

// cluster runs examples/cluster's clusterbench, a module of its own since
// it needs the broker adapters, and keeps its table for the report.
func (r *runner) cluster(modDir string) error {
	f, err := os.CreateTemp("", "clusterbench-*.md")
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(f.Name())
	args := []string{"run", "./cmd/clusterbench", "-o", f.Name()}
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join(filepath.Dir(modDir), "examples", "cluster")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	table, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	// Its headings go one level down, under this report's own section.
	body := strings.ReplaceAll("\n"+string(table), "\n#", "\n##")
	r.res.Cluster = "\n## 8. Across nodes (cluster)\n\nFrom `cd examples/cluster && go run ./cmd/clusterbench`, run by `cmd/run` as its last scenario.\n" + body
	return nil
}
