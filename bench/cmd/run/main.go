// Command run runs every benchmark scenario against every contender, one
// server process at a time, and writes BENCHMARKS.md at the repository
// root.
//
//	cd bench && go run ./cmd/run          # full run, 20-25 minutes
//	cd bench && go run ./cmd/run -quick   # shorter runs, about 4 minutes
//
// Flags select contenders (-libs), scenarios (-scenarios), the output
// (-out), and save pprof profiles of chosen servers (-profile).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lafgo/laf/bench/internal/servers"
)

type config struct {
	Quick bool

	EchoConns        []int
	EchoSizes        []int
	EchoWarm, EchoOn time.Duration

	RateConns, RateSize, Rate int
	RateWarm, RateOn          time.Duration

	// The idle scenarios: IdleN sockets (idlescale: IdleScaleN, for the
	// IdleScaleLibs), every contender's keepalive server pinging each
	// every IdlePing; the server is sampled every IdleSample for at least
	// 1+IdleIntervals ping intervals after the last socket connected, and
	// up to IdleMaxIntervals until the steady state (see IdleRow).
	IdleN, IdleScaleN               int
	IdleScaleLibs                   []string
	IdlePing                        time.Duration
	IdleSample                      time.Duration
	IdleIntervals, IdleMaxIntervals int

	BcastN      []int
	BcastSize   int
	BcastCount  map[int]int // broadcasts timed, per socket count
	BcastTimout time.Duration

	HSWorkers int
	HSOn      time.Duration

	// The latest-state scenario: LatestN sockets in one room, one in
	// LatestSlowEvery slow, reading a frame per LatestSlowRead.
	LatestN, LatestSlowEvery int
	LatestSlowRead           time.Duration
	LatestWarm, LatestOn     time.Duration
	LatestSample             time.Duration

	// The compression scenarios: chat traffic (wire.NewChat) to the
	// contenders with permessage-deflate (laf, gws). zecho is the closed
	// echo loop on ZEchoConns sockets with ZEchoSizes payloads; zbroadcast
	// broadcasts ZBcastSize bytes to ZBcastN sockets, ZBcastCount times.
	ZEchoConns  []int
	ZEchoSizes  []int
	ZBcastN     []int
	ZBcastSize  int
	ZBcastCount map[int]int

	// Rounds of the echo, zecho and handshake scenarios, each in a
	// rotated order of contenders; the best round of each contender is
	// kept. BcastRounds is the same for the broadcast and zbroadcast
	// scenarios.
	Rounds, BcastRounds int

	GoBenchTime string

	// RetryBudget bounds the time spent running disturbed windows again,
	// WaitBudget the time spent waiting for quiet before windows.
	RetryBudget, WaitBudget time.Duration
}

func fullConfig() config {
	return config{
		EchoConns: []int{100, 1000}, EchoSizes: []int{64, 1024, 16384},
		EchoWarm: 500 * time.Millisecond, EchoOn: 2500 * time.Millisecond,
		RateConns: 1000, RateSize: 1024, Rate: 10000,
		RateWarm: time.Second, RateOn: 6 * time.Second,
		IdleN: 10000, IdleScaleN: 100000, IdleScaleLibs: []string{"laf", "gws"},
		IdlePing: 5 * time.Second, IdleSample: 100 * time.Millisecond, IdleIntervals: 3, IdleMaxIntervals: 40,
		BcastN: []int{1000, 10000}, BcastSize: 1024,
		BcastCount:  map[int]int{1000: 40, 10000: 20},
		BcastTimout: 20 * time.Second,
		HSWorkers:   8, HSOn: 3 * time.Second,
		LatestN: 1000, LatestSlowEvery: 10, LatestSlowRead: 100 * time.Millisecond,
		LatestWarm: 2 * time.Second, LatestOn: 10 * time.Second, LatestSample: 100 * time.Millisecond,
		ZEchoConns: []int{1000}, ZEchoSizes: []int{2048, 16384},
		ZBcastN: []int{1000, 10000}, ZBcastSize: 2048,
		ZBcastCount: map[int]int{1000: 100, 10000: 20},
		Rounds:      3,
		BcastRounds: 2,
		GoBenchTime: "1000x",
		RetryBudget: 2 * time.Minute,
		WaitBudget:  time.Minute,
	}
}

func quickConfig() config {
	c := fullConfig()
	c.Quick = true
	c.EchoWarm, c.EchoOn = 200*time.Millisecond, 500*time.Millisecond
	c.RateWarm, c.RateOn = 300*time.Millisecond, 1500*time.Millisecond
	c.IdleN, c.IdleScaleN, c.IdlePing, c.IdleIntervals, c.IdleMaxIntervals = 5000, 10000, 2*time.Second, 2, 8
	c.BcastN = []int{1000, 5000}
	c.BcastCount = map[int]int{1000: 10, 5000: 6}
	c.HSOn = 1500 * time.Millisecond
	c.LatestWarm, c.LatestOn = time.Second, 3*time.Second
	c.ZBcastN = []int{1000, 5000}
	c.ZBcastCount = map[int]int{1000: 30, 5000: 8}
	c.Rounds, c.BcastRounds = 1, 1
	c.RetryBudget, c.WaitBudget = 20*time.Second, 15*time.Second
	c.GoBenchTime = "100x"
	return c
}

var allScenarios = []string{"echo", "rate", "idle", "idlescale", "broadcast", "handshake", "latest", "zecho", "zbroadcast", "gobench", "cluster"}

// scenarioGroups are names that -scenarios expands to several scenarios.
var scenarioGroups = map[string][]string{"compress": {"zecho", "zbroadcast"}}

func main() {
	quick := flag.Bool("quick", false, "shorter runs and fewer sockets (about 4 minutes)")
	rounds := flag.Int("rounds", 0, "rounds of the echo, zecho and handshake scenarios, best kept (default 3, or 1 with -quick); the broadcast and zbroadcast scenarios run one round fewer")
	libs := flag.String("libs", "", "comma-separated contenders (default all: "+strings.Join(libNames(), ",")+")")
	scen := flag.String("scenarios", "", "comma-separated scenarios (default all: "+strings.Join(allScenarios, ",")+"; compress is zecho,zbroadcast)")
	out := flag.String("out", "", "markdown report (default BENCHMARKS.md at the repository root; - for stdout)")
	jsonOut := flag.String("json", "", "also write the raw results as JSON to this file")
	profile := flag.String("profile", "", "save CPU and allocation profiles of the -profile-libs servers (echo at the most connections with every payload, broadcast to the most sockets, handshakes) into this directory")
	profileLibs := flag.String("profile-libs", "laf", "contenders to profile with -profile")
	renderFrom := flag.String("render", "", "write the report from this -json file of an earlier run, without running anything")
	serverBin := flag.String("server-bin", "", "use this cmd/server binary instead of building one (to compare two versions of laf: build each with go build -o)")
	idleN := flag.Int("idle-n", 0, "sockets of the idle scenario (default 10,000, or 5,000 with -quick)")
	idleScaleN := flag.Int("idle-scale-n", 0, "sockets of the idlescale scenario (default 100,000, or 10,000 with -quick); fewer if the open-file limit or the free memory cannot hold them")
	idlePing := flag.Duration("idle-ping", 0, "the ping interval of every contender in the idle scenarios (default 5s, or 2s with -quick)")
	idleIntervals := flag.Int("idle-intervals", 0, "ping intervals measured at least in the idle scenarios, after a first one to settle (default 3, or 2 with -quick); more until the steady state")
	flag.Parse()

	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
		cfg.BcastRounds = max(1, *rounds-1)
	}
	if *idleN > 0 {
		cfg.IdleN = *idleN
	}
	if *idleScaleN > 0 {
		cfg.IdleScaleN = *idleScaleN
	}
	if *idlePing > 0 {
		cfg.IdlePing = *idlePing
	}
	if *idleIntervals > 0 {
		cfg.IdleIntervals = *idleIntervals
	}
	selLibs := libNames()
	if *libs != "" {
		selLibs = strings.Split(*libs, ",")
		for _, l := range selLibs {
			if _, err := servers.Find(l); err != nil {
				fatal(err)
			}
		}
	}
	selScen := allScenarios
	if *scen != "" {
		selScen = nil
		for _, s := range strings.Split(*scen, ",") {
			names, ok := scenarioGroups[s]
			if !ok {
				names = []string{s}
			}
			for _, s := range names {
				if !slices.Contains(allScenarios, s) {
					fatal(fmt.Errorf("unknown scenario %q", s))
				}
				if !slices.Contains(selScen, s) {
					selScen = append(selScen, s)
				}
			}
		}
	}
	modDir, err := moduleDir()
	if err != nil {
		fatal(err)
	}
	if *out == "" {
		*out = filepath.Join(filepath.Dir(modDir), "BENCHMARKS.md")
	}

	// The analysis of unmet goals is written by hand, from profiles, and
	// kept in the report of every run.
	analysis, err := os.ReadFile(filepath.Join(modDir, "ANALYSIS.md"))
	if err != nil && !os.IsNotExist(err) {
		fatal(err)
	}
	if *renderFrom != "" {
		b, err := os.ReadFile(*renderFrom)
		if err != nil {
			fatal(err)
		}
		res := new(Results)
		if err := json.Unmarshal(b, res); err != nil {
			fatal(fmt.Errorf("%s: %w", *renderFrom, err))
		}
		writeReport(*out, render(res, string(analysis)))
		return
	}

	tmp, err := os.MkdirTemp("", "lafbench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin := *serverBin
	if bin == "" {
		if bin, err = buildServer(tmp); err != nil {
			fatal(err)
		}
	}

	r := &runner{cfg: cfg, bin: bin, tmp: tmp, libs: selLibs, profDir: *profile, res: &Results{}}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			fatal(err)
		}
		r.profLibs = strings.Split(*profileLibs, ",")
	}
	r.res.Meta = meta(cfg, selLibs, selScen)
	began := time.Now()
	for _, s := range selScen {
		logf("== %s", s)
		var err error
		switch s {
		case "echo":
			err = r.echo()
		case "rate":
			err = r.rate()
		case "idle":
			err = r.idle()
		case "idlescale":
			err = r.idleScale()
		case "broadcast":
			err = r.broadcast()
		case "handshake":
			err = r.handshake()
		case "latest":
			err = r.latest()
		case "zecho":
			err = r.zecho()
		case "zbroadcast":
			err = r.zbroadcast()
		case "gobench":
			err = r.gobench(modDir)
		case "cluster":
			err = r.cluster(modDir)
		}
		if err != nil {
			fatal(fmt.Errorf("%s: %w", s, err))
		}
	}
	r.res.Meta.Duration = time.Since(began).Round(time.Second).String()

	if *jsonOut != "" {
		b, _ := json.MarshalIndent(r.res, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fatal(err)
		}
	}
	writeReport(*out, render(r.res, string(analysis)))
	logf("wrote %s (%s)", *out, r.res.Meta.Duration)
}

func writeReport(out, md string) {
	if out == "-" {
		os.Stdout.WriteString(md)
	} else if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		fatal(err)
	}
}

func libNames() []string {
	var n []string
	for _, l := range servers.Libs {
		n = append(n, l.Name)
	}
	return n
}

func moduleDir() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(b))
	if !strings.HasSuffix(gomod, filepath.Join("bench", "go.mod")) {
		return "", fmt.Errorf("run this from the bench module (cd bench), not %q", gomod)
	}
	return filepath.Dir(gomod), nil
}

// figureArgs drops the flags that choose only where the results go.
func figureArgs(args []string) []string {
	var kept []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name == "json" || name == "out" {
			if !hasValue {
				i++ // the value is the next argument
			}
			continue
		}
		kept = append(kept, args[i])
	}
	return kept
}

func meta(cfg config, libs, scen []string) Meta {
	m := Meta{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		GoVersion: runtime.Version(),
		Cores:     runtime.NumCPU(),
		Config:    cfg,
		Libs:      libs,
		Scenarios: scen,
		Command:   strings.TrimSpace("cd bench && go run ./cmd/run " + strings.Join(figureArgs(os.Args[1:]), " ")),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if i := bytes.IndexByte(b, '\n'); i > 0 {
			m.Memory = strings.Join(strings.Fields(string(b[:i]))[1:], " ")
		}
	}
	return m
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "run:", err)
	os.Exit(1)
}
