package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lafgo/laf/bench/internal/proc"
	"github.com/lafgo/laf/bench/internal/servers"
)

// idleRows returns the idle scenario's rows (scale false) or idlescale's.
func idleRows(res *Results, scale bool) []IdleRow {
	var rows []IdleRow
	for _, r := range res.Idle {
		if r.Scale == scale {
			rows = append(rows, r)
		}
	}
	return rows
}

// idleGorSlack is the goroutines beyond those before connecting that an
// idle server may start and still count as starting none per socket: a
// fixed allowance for an Endpoint's own goroutines (a ping scheduler,
// pollers), whatever the number of sockets.
const idleGorSlack = 16

// span formats a ping interval or a sampling period: "5 s", "100 ms".
func span(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%g ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%g s", d.Seconds())
}

func gorStr(r IdleRow) string {
	return fmt.Sprintf("%s → %s → %s", commas(int64(r.Base0Gor)), commas(r.SteadyGor), commas(int64(r.PeakGor)))
}

// intervalsStr says how many intervals were measured after the first,
// the GCs in the window, and whether it reached the steady state.
func intervalsStr(r IdleRow) string {
	s := fmt.Sprintf("%d (%d GCs)", r.Intervals, r.GCs)
	if !r.Plateau {
		s += ", no steady state"
	}
	return s
}

// pingsPer returns the pings a socket got per interval of the window.
func pingsPer(r IdleRow) float64 {
	return float64(r.Pings) / float64(r.N) / float64(1+r.Intervals)
}

func peakRatio(r IdleRow) float64 {
	if r.SteadyPer <= 0 {
		return 0
	}
	return r.PeakPer / r.SteadyPer
}

func renderIdle(b *strings.Builder, res *Results) {
	rows, scale := idleRows(res, false), idleRows(res, true)
	if len(rows)+len(scale) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	first := res.Idle[0]
	if first.Ping == 0 {
		renderIdleForced(b, rows) // an earlier run's JSON
		return
	}
	c := res.Meta.Config
	w("## 3. Idle memory, keepalive on\n\n")
	w("Idle sockets, every contender's server pinging every socket every %s, its keepalive set up the library's lightest documented way (below), and closing a socket whose pong has not come within one more interval. ", span(first.Ping))
	w("The clients answer every ping at once and do nothing else: each socket is upgraded by the load client's dialer, then its file descriptor goes to one epoll goroutine for all the sockets, which answers pings with pongs (no client goroutine or buffer per socket). ")
	w("Once the last socket has connected, the server is sampled every %s: RSS from /proc/PID/status, goroutines and the heap goal from its /stats (runtime/metrics), with no GC and no `FreeOSMemory`. ", span(c.IdleSample))
	w("The first ping interval settles (connecting's garbage, the first pings); then at least %d intervals are measured, and more, one at a time, until the steady state, up to %d in all. ", c.IdleIntervals, c.IdleMaxIntervals)
	w("The steady state is reached when RSS has stopped growing (an interval's median less than %.0f%% above the previous one's, counted over the baseline) and, for a server whose pings make garbage (its heap objects grow by more than %.0f%% of the heap goal in an interval), two GCs have run since the last socket connected: ", idlePlateau*100, idleChurn*100)
	w("the garbage grows RSS round after round until the heap reaches its GC goal, and after a GC RSS stays flat only until the heap outgrows its earlier high-water mark, so one whole GC cycle must be in the window. ")
	w("*intervals* is how many were measured after the first, with the GCs in the window, and \"no steady state\" if the window ended before.\n\n")
	w("- *steady RSS/socket*: the median of the last interval's samples, minus the RSS before connecting (read the same way), over the sockets: memory as `top` shows it, the figure the goals use.\n")
	w("- *peak in ping rounds*: the highest sample of the measured intervals, the same way; *peak/steady* is its ratio to the steady state.\n")
	w("- *forced*: RSS after `debug.FreeOSMemory()` (a GC that returns freed memory to the OS) once the window is over, minus the same before connecting: the figure earlier reports gave, read then 1 s after connecting and before any ping. *heap+stack* is the Go heap in use plus goroutine stacks at that moment.\n")
	w("- *goroutines*: before connecting → the steady state (median of the last interval) → the highest sample of the ping rounds.\n")
	w("- *pings/socket*: the pings each client got in the window, over the window's intervals: 1.00 when every socket is pinged once an interval.\n")
	w("- *kernel/conn*: kernel memory is in no process's RSS. This is the growth, from before connecting to the end of the window, of the slab caches a TCP socket uses (/proc/slabinfo: %s) and of the TCP buffers (/proc/net/sockstat), per connection, both ends (client and server are on this machine's loopback); other jobs on the machine move it too, so read it as approximate.\n\n", strings.Join(proc.SocketSlabs, ", "))
	w("| contender | keepalive |\n|---|---|\n")
	for _, l := range servers.Libs {
		if l.NewKeepalive != nil && slices.ContainsFunc(res.Idle, func(r IdleRow) bool { return r.Lib == l.Name }) {
			w("| %s | %s |\n", l.Name, l.KeepaliveNotes)
		}
	}
	w("\n")
	if len(rows) > 0 {
		w("### %s sockets\n\n", commas(int64(rows[0].N)))
		w("| contender | intervals | pings/socket/interval | steady RSS/socket | (× coder-read / × best peer) | peak in ping rounds | peak/steady | forced RSS/socket | heap+stack/socket | goroutines | threads | kernel/conn | connects/s | closed by the server |\n")
		w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		name := func(r IdleRow) string { return r.Lib }
		steady := func(r IdleRow) float64 { return r.SteadyPer }
		for _, r := range rows {
			w("| %s | %s | %.2f | %s | %s | %s | %.2f | %s | %s | %s | %d | %s | %s | %d |\n", lib(r.Lib), intervalsStr(r), pingsPer(r),
				bytesStr(r.SteadyPer), ratios(rows, name, steady, r.SteadyPer, false, false), bytesStr(r.PeakPer), peakRatio(r),
				bytesStr(r.RSSPer), bytesStr(r.HeapPer), gorStr(r), r.Threads, bytesStr(r.KernelPer), num(r.ConnectPerSec), r.Closed)
		}
		w("\n")
		renderIdleNotes(b, rows, true)
	}
	if len(scale) > 0 {
		renderIdleScale(b, scale)
	}
}

// renderIdleNotes says what a row needs said: fewer sockets than asked
// (with fewer), profiled servers, sockets closed.
func renderIdleNotes(b *strings.Builder, rows []IdleRow, fewer bool) {
	for _, r := range rows {
		if fewer && r.N < r.Wanted {
			fmt.Fprintf(b, "%s held %s sockets, not the %s asked for: %s.\n\n", r.Lib, commas(int64(r.N)), commas(int64(r.Wanted)), r.Limit)
		}
		if r.Profiled {
			fmt.Fprintf(b, "%s ran with `GODEBUG=memprofilerate=1` for heap profiles (`-profile`): every allocation is recorded, which costs memory and time, so its figures are not comparable.\n\n", r.Lib)
		}
		if r.Closed > 0 || r.ClientErrors > 0 {
			fmt.Fprintf(b, "%s closed %s sockets that answered its pings during the window (client errors: %d).\n\n", r.Lib, commas(int64(r.Closed)), r.ClientErrors)
		}
	}
}

func renderIdleScale(b *strings.Builder, rows []IdleRow) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	r0 := rows[0]
	lim := r0.Nofile
	if r0.N < r0.Wanted {
		w("### %s sockets (%s asked for)\n\n", commas(int64(r0.N)), commas(int64(r0.Wanted)))
	} else {
		w("### %s sockets\n\n", commas(int64(r0.N)))
	}
	w("The same measure with more sockets, for laf and gws, one server process each. The clients are spread over 8 source addresses (127.B.0.2-9) and the server's 4 listeners: each (source address, listener) pair has its own %s ephemeral ports. ", commas(int64(r0.Ports)))
	switch {
	case lim.RaisedMax:
		w("The bench raised its open-file limit itself (`setrlimit`, passed on to the server, which raises its own too): the hard limit was %s (`ulimit -Hn`), and it raised it to %s. ", commas(int64(lim.Hard0)), commas(int64(lim.Max)))
	case lim.MaxErr == "":
		w("The open-file limit (%s) was high enough. ", commas(int64(lim.Cur)))
	default:
		w("**Not %s sockets here:** the hard open-file limit of a process on this machine is %s (`ulimit -Hn`), and the bench could not raise it (`setrlimit`: %s; raising a hard limit takes CAP_SYS_RESOURCE, which this machine's root does not have). Every socket is a file descriptor in the server process, so %s sockets (the limit less %d for the rest) is the most one server can hold here; the bench uses that many, and the 1,000,000 below is extrapolated from them. ",
			commas(int64(r0.Wanted)), commas(int64(lim.Max)), lim.MaxErr, commas(int64(r0.N)), idleFDSpare)
	}
	w("*connect* is the time from the first dial until the server had every socket (16 dialling goroutines; a handshake at a time on each).\n\n")
	w("| contender | sockets | connect | connects/s | intervals | pings/socket/interval | steady RSS/socket | peak in ping rounds | peak/steady | forced RSS/socket | heap+stack/socket | goroutines | kernel/conn | closed by the server |\n")
	w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		w("| %s | %s | %s | %s | %s | %.2f | %s | %s | %.2f | %s | %s | %s | %s | %d |\n", lib(r.Lib), commas(int64(r.N)), dur(r.Connect), num(r.ConnectPerSec),
			intervalsStr(r), pingsPer(r), bytesStr(r.SteadyPer), bytesStr(r.PeakPer), peakRatio(r), bytesStr(r.RSSPer), bytesStr(r.HeapPer),
			gorStr(r), bytesStr(r.KernelPer), r.Closed)
	}
	w("\n")
	renderIdleNotes(b, rows, lim.MaxErr == "")

	const m = 1_000_000
	w("**What 1,000,000 idle sockets would need** (extrapolated from these rows, not measured): ")
	var parts []string
	for _, r := range rows {
		rss := float64(r.Base0RSS) + r.SteadyPer*m
		peak := float64(r.Base0RSS) + r.PeakPer*m
		kern := r.KernelPer / 2 * m // the server's end of each connection
		gor := float64(r.Base0Gor) + r.GorPer*m
		parts = append(parts, fmt.Sprintf("%s, %s of server RSS (%s at the peak of a ping round), about %s of kernel memory for the server's end of the connections, %s goroutines, and %s to connect them at this rate",
			r.Lib, bytesStr(rss), bytesStr(peak), bytesStr(kern), commas(int64(gor)), dur(time.Duration(float64(time.Second)*m/r.ConnectPerSec))))
	}
	w("%s. ", strings.Join(parts, "; "))
	pairs := (m + r0.Ports - 1) / max(1, r0.Ports)
	w("Either needs an open-file limit above 1,000,000 (fs.nr_open here: %s) and, from one client machine, at least %d (source address, server address) pairs of %s ephemeral ports (this bench has 32).\n\n", commas(int64(r0.NrOpen)), pairs, commas(int64(r0.Ports)))
}

// renderIdleForced renders the idle rows of an earlier run's JSON, which
// were read after FreeOSMemory only.
func renderIdleForced(b *strings.Builder, rows []IdleRow) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	n := rows[0].N
	w("## 3. Idle memory\n\n")
	w("%s open sockets, keepalive on where the contender has it, the client reading (so it answers pings). ", commas(int64(n)))
	w("The server is measured after `debug.FreeOSMemory()` (a forced GC that returns freed memory to the OS), before connecting (baseline) and with every socket open; per-socket figures are the difference over %s. ", commas(int64(n)))
	w("RSS includes what the Go runtime keeps; heap+stack is the Go heap in use plus goroutine stacks. Kernel socket buffers are in neither.\n\n")
	w("| contender | RSS/socket | (× coder-read / × best peer) | heap+stack/socket | (× coder-read / × best peer) | goroutines/socket | threads | RSS baseline → open | connects/s |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	name := func(r IdleRow) string { return r.Lib }
	rss := func(r IdleRow) float64 { return r.RSSPer }
	heap := func(r IdleRow) float64 { return r.HeapPer }
	for _, r := range rows {
		w("| %s | %s | %s | %s | %s | %.2f | %d | %s → %s | %s |\n", lib(r.Lib),
			bytesStr(r.RSSPer), ratios(rows, name, rss, r.RSSPer, false, false),
			bytesStr(r.HeapPer), ratios(rows, name, heap, r.HeapPer, false, false),
			r.GorPer, r.Threads, bytesStr(float64(r.BaseRSS)), bytesStr(float64(r.RSS)), num(r.ConnectPerSec))
	}
	w("\n")
}

// idleGoals adds the idle goals: issue 22's on the steady state with
// keepalive on, then the earlier one on the forced figure.
func idleGoals(g *goalTable, res *Results) {
	name := func(r IdleRow) string { return r.Lib }
	rows, scale := idleRows(res, false), idleRows(res, true)
	l, ok := find(rows, name, "laf")
	if !ok {
		return
	}
	if l.Ping == 0 { // an earlier run's JSON: the forced figure only
		if gw, ok := find(rows, name, "gws"); ok {
			g.add("idle", "idle RSS/socket ≤ 1.0× gws's, and ≤ 12 KiB",
				fmt.Sprintf("laf %s, gws %s (%.2f×); heap+stack %s and %s", bytesStr(l.RSSPer), bytesStr(gw.RSSPer), l.RSSPer/gw.RSSPer, bytesStr(l.HeapPer), bytesStr(gw.HeapPer)),
				l.RSSPer <= gw.RSSPer && l.RSSPer <= 12<<10)
		}
		g.add("idle-goroutines", "no goroutine held by an idle socket (Linux)", fmt.Sprintf("laf %.2f goroutines/socket", l.GorPer), l.GorPer <= 0.01)
		return
	}
	steadyGoal := func(key string, rows []IdleRow) {
		l, ok1 := find(rows, name, "laf")
		gw, ok2 := find(rows, name, "gws")
		if !ok1 || !ok2 || gw.SteadyPer <= 0 {
			return
		}
		x := l.SteadyPer / gw.SteadyPer
		g.add(key, fmt.Sprintf("steady-state idle RSS/socket at %s sockets, keepalive on (a ping every %s), ≤ 0.6× gws's and ≤ 5 KiB", commas(int64(l.N)), span(l.Ping)),
			fmt.Sprintf("laf %s, gws %s (%.2f×); forced (FreeOSMemory) %s and %s", bytesStr(l.SteadyPer), bytesStr(gw.SteadyPer), x, bytesStr(l.RSSPer), bytesStr(gw.RSSPer)),
			x <= 0.6 && l.SteadyPer <= 5<<10)
	}
	steadyGoal("idle-steady", rows)
	g.add("idle-peak", "peak RSS during a ping round ≤ 1.15× the steady state",
		fmt.Sprintf("laf %s at the peak, %s steady (%.2f×)", bytesStr(l.PeakPer), bytesStr(l.SteadyPer), peakRatio(l)), peakRatio(l) <= 1.15)
	extra := l.PeakGor - l.Base0Gor
	g.add("idle-ping-goroutines", fmt.Sprintf("goroutines during a ping round ≤ the sockets with data to read (idle: none, beyond a fixed %d for the Endpoint's own)", idleGorSlack),
		fmt.Sprintf("laf %s before connecting → %s steady → %s at the peak of the ping rounds (%+d, over %s sockets)",
			commas(int64(l.Base0Gor)), commas(l.SteadyGor), commas(int64(l.PeakGor)), extra, commas(int64(l.N))), extra <= idleGorSlack)
	g.add("idle-goroutines", "no goroutine held by an idle socket (Linux)", fmt.Sprintf("laf %.4f goroutines/socket in the steady state", l.GorPer), l.GorPer <= 0.01)
	if len(scale) > 0 {
		steadyGoal("idle-scale", scale)
	}
	if gw, ok := find(rows, name, "gws"); ok {
		g.add("idle", "idle RSS/socket after FreeOSMemory (the earlier goal's figure) ≤ 1.0× gws's, and ≤ 12 KiB",
			fmt.Sprintf("laf %s, gws %s (%.2f×); heap+stack %s and %s", bytesStr(l.RSSPer), bytesStr(gw.RSSPer), l.RSSPer/gw.RSSPer, bytesStr(l.HeapPer), bytesStr(gw.HeapPer)),
			l.RSSPer <= gw.RSSPer && l.RSSPer <= 12<<10)
	}
}
