package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/lafgo/laf"
)

// markdown renders the summary; svg is the plot's path relative to it.
func (res *result) markdown(svg string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := &res.cfg
	st := &res.stats
	verdict := "PASS"
	if !res.ok() {
		verdict = "FAIL"
	}
	p("# laf soak: %s\n\n", verdict)
	p("The load ran for %s (%s), then Shutdown and the drain took %s. Started %s on %s/%s, %s, %d CPUs (GOMAXPROCS %d).\n\n",
		dur(res.ran), res.stopReason, dur(res.drained), res.began.UTC().Format("2006-01-02 15:04 UTC"),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0))

	p("## Invariants\n\n| invariant | result | what the run showed |\n|---|---|---|\n")
	for _, c := range res.checks {
		r := "pass"
		if !c.OK {
			r = "**FAIL**"
		}
		p("| %s | %s | %s |\n", c.Name, r, c.Detail)
	}

	p("\n## Sockets and messages\n\n| | |\n|---|--:|\n")
	row := func(name string, v any) { p("| %s | %v |\n", name, v) }
	row("sockets opened (connection events)", num(res.connEvents))
	row("sockets closed (close events)", num(res.closeEvents))
	row("upgrades accepted (Stats.Accepted)", num(st.Accepted))
	row("upgrades refused (of which by a cap)", fmt.Sprintf("%s (%s)", num(st.Refused), num(st.CapRefused)))
	row("messages delivered to the Func (Stats.MessagesIn)", num(st.MessagesIn))
	row("messages written to peers (Stats.MessagesOut)", num(st.MessagesOut))
	row("bytes in / out", fmt.Sprintf("%s / %s", mib(int64(st.BytesIn)), mib(int64(st.BytesOut))))
	row("echoes received by echo clients, in order", num(res.echoes))
	row("broadcasts sent / received by clients", fmt.Sprintf("%s / %s", num(res.broadcasts), num(res.recvBroadcasts)))
	row("messages queued to never-reading peers", num(res.streamSent))
	row("sockets closed from outside (Endpoint.CloseSocket)", num(res.reaped))
	row("panics recovered / handler errors (Stats)", fmt.Sprintf("%s / %s", num(st.Panics), num(st.HandlerErrors)))
	row("error events (of which ErrRateLimited)", fmt.Sprintf("%s (%s)", num(res.errEvents), num(res.rateErrs)))
	row("slow consumers closed (Stats.SlowClosed)", num(st.SlowClosed))
	row("echoes the Func could not queue (socket closing)", num(res.echoSendErrs))
	row("probes of closed sockets", num(res.probes))
	row("churn dials skipped (churn-conc sockets open)", num(res.churnSkipped))

	p("\n## Close events by cause\n\n| cause | code | close events (Func) | Stats.Closes |\n|---|---|--:|--:|\n")
	for c := 1; c < numCauses; c++ {
		p("| %s | %s | %s | %s |\n", laf.CloseCause(c), causeCode[c], num(res.causes[c]), num(st.Closes[c]))
	}

	p("\n## By kind of client\n\nWhat each kind does, how many it dialled, how its sockets closed on the server (close events by cause), and how they ended as the client saw it.\n\n")
	p("| kind | what it does | dials (failed) | close events by cause | as the client saw it |\n|---|---|--:|---|---|\n")
	for k := range numKinds {
		kr := res.kinds[k]
		var causes []string
		for c := 1; c < numCauses; c++ {
			if n := res.byKind[k][c]; n > 0 {
				causes = append(causes, fmt.Sprintf("%s %s", laf.CloseCause(c), num(n)))
			}
		}
		dials := num(kr.dials)
		if kr.dialErrs > 0 {
			dials += fmt.Sprintf(" (%s: %s)", num(kr.dialErrs), counts(kr.dialErrors))
		}
		p("| %s | %s | %s | %s | %s |\n", kinds[k].name, kinds[k].what, dials, joinOr(causes, "–"), counts(kr.outcomes))
	}

	p("\n## Process\n\n")
	p("Start: before the server started. Middle: under load, at half time. End: once every socket had closed and the server and clients had stopped. Heap is `HeapAlloc` after two GCs; at the start and end, `debug.FreeOSMemory` ran before RSS was read.\n\n")
	p("| | start | middle | end |\n|---|--:|--:|--:|\n")
	p("| goroutines | %d | %d | %d |\n", res.start.Goroutines, res.mid.Goroutines, res.end.Goroutines)
	p("| heap (after GC) | %s | %s | %s |\n", mib(int64(res.start.HeapAlloc)), mib(int64(res.mid.HeapAlloc)), mib(int64(res.end.HeapAlloc)))
	p("| RSS | %s | %s | %s |\n", mib(res.start.RSS), mib(res.mid.RSS), mib(res.end.RSS))
	var peakLive int64
	var peakG int
	var peakRSS int64
	for _, s := range res.samples {
		peakLive, peakG, peakRSS = max(peakLive, s.Live), max(peakG, s.Goroutines), max(peakRSS, s.RSS)
	}
	p("\nPeaks over %d samples (every %s): %d live sockets, %d goroutines, RSS %s.\n\n", len(res.samples), dur(cfg.Sample), peakLive, peakG, mib(peakRSS))
	t := res.trend
	p("RSS over the second half (%.0fs to %.0fs, %d samples): mean %s, min %s, max %s, first %s, last %s; least-squares slope %+.2f KiB/s, %s over the window; mean of its second half over its first half %.3f.\n\n",
		t.From.Seconds(), t.To.Seconds(), t.N, mib(int64(t.Mean)), mib(t.Min), mib(t.Max), mib(t.First), mib(t.Last), t.Slope/1024, mibSigned(t.Growth), t.QuarterRatio)
	if svg != "" {
		p("![RSS, Go heap, goroutines and live sockets over time](%s)\n\n", svg)
	}

	p("## Settings\n\n| setting | value |\n|---|---|\n")
	for _, s := range [][2]string{
		{"duration (-d)", dur(cfg.Duration)},
		{"echo clients × rate × size", fmt.Sprintf("%d × %g/s × %d B", cfg.Echo, cfg.EchoRate, cfg.EchoSize)},
		{"broadcast", fmt.Sprintf("%d B every %s", cfg.BroadcastSize, dur(cfg.Broadcast))},
		{"churn", fmt.Sprintf("%g sockets/s over %d close paths, at most %d open", cfg.Churn, len(churnKinds), cfg.ChurnConc)},
		{"never-reading peers", fmt.Sprintf("%d (4 KiB receive buffer; %d B messages streamed every 1 ms)", cfg.NoRead, cfg.StreamSize)},
		{"flooding peers", fmt.Sprintf("%d (reconnect after %s)", cfg.Flood, dur(cfg.FloodPause))},
		{"Endpoint.CloseSocket on a random socket", "every " + dur(cfg.Reap)},
		{"WithRateLimit", fmt.Sprintf("%g msgs/s, burst %d; %s/s, CloseOverRate", cfg.Rate, cfg.RateBurst, mib(int64(cfg.RateBytes)))},
		{"WithPing", fmt.Sprintf("every %s, pong timeout %s", dur(cfg.Ping), dur(cfg.Pong))},
		{"WithReadIdleTimeout / WithIdleTimeout", fmt.Sprintf("%s / %s", dur(cfg.ReadIdle), dur(cfg.Idle))},
		{"WithMaxLifetime", dur(cfg.Lifetime)},
		{"WithSendQueue", fmt.Sprintf("%d messages, %d KiB; CloseSlow", cfg.QueueMsgs, cfg.QueueBytes>>10)},
		{"WithCloseTimeout", dur(cfg.CloseTimeout)},
		{"WithReadLimit", fmt.Sprintf("%d KiB", cfg.ReadLimit>>10)},
		{"WithMaxSockets / WithMaxSocketsPerKey (by kind)", fmt.Sprintf("%d / %d", cfg.MaxSockets, cfg.MaxSockets)},
		{"end bounds", fmt.Sprintf("goroutines ≤ start + %d; heap ≤ start + %s; RSS growth over the second half ≤ %.0f%% of its mean + %s",
			cfg.GoroutineSlack, mib(cfg.HeapSlack), cfg.RSSGrowth*100, mib(cfg.RSSSlack))},
		{"seed", fmt.Sprint(cfg.Seed)},
	} {
		p("| %s | %s |\n", s[0], s[1])
	}

	if len(res.violations) > 0 {
		p("\n## Violations\n\n")
		var names []string
		for n := range res.violations {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p("- %s: %d\n", n, res.violations[n])
		}
		p("\nFirst examples:\n\n```\n%s\n```\n", strings.Join(res.examples, "\n"))
	}
	if res.leaked != "" {
		p("\n## Goroutines left over\n\n```\n%s\n```\n", truncate(res.leaked, 20000))
	}
	return b.String()
}

// causeCode is the code each cause closes with.
var causeCode = [numCauses]string{
	laf.CausePeer: "the peer's", laf.CauseAbnormal: "1006", laf.CauseServer: "the caller's",
	laf.CauseHandlerError: "1011", laf.CauseReadLimit: "1009", laf.CauseProtocol: "1002, 1007",
	laf.CauseSlowConsumer: "1008 (dropped)", laf.CausePingTimeout: "1006", laf.CauseIdle: "1000",
	laf.CauseLifetime: "1001", laf.CauseShutdown: "1001", laf.CausePolicy: "1008",
}

// write writes summary.md, rss.svg and samples.csv to dir.
func (res *result) write(dir, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	title := fmt.Sprintf("laf soak, %s: RSS, Go heap, goroutines and live sockets", dur(res.ran))
	svg := plotSVG(res.samples, title, res.ran/2, res.ran, res.trend)
	var csv strings.Builder
	csv.WriteString("t_s,rss_bytes,heap_alloc_bytes,go_held_bytes,goroutines,live_sockets,opened,messages_in,messages_out\n")
	for _, s := range res.samples {
		fmt.Fprintf(&csv, "%.3f,%d,%d,%d,%d,%d,%d,%d,%d\n", s.T.Seconds(), s.RSS, s.HeapAlloc, s.GoHeld, s.Goroutines, s.Live, s.Opened, s.MsgsIn, s.MsgsOut)
	}
	for name, data := range map[string]string{"summary.md": md, "rss.svg": svg, "samples.csv": csv.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// counts renders a map of counts, largest first.
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "–"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, num(m[k])))
	}
	return strings.Join(parts, ", ")
}

// num writes n with thousands separators.
func num(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	default:
		return d.String()
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n…"
}
