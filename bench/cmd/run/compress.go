package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/lafgo/laf/bench/internal/load"
	"github.com/lafgo/laf/bench/internal/servers"
)

// ZEchoRow is one contender's compressed echo at one payload size.
type ZEchoRow struct {
	Lib         string
	Conns, Size int
	Rate        float64 // messages/s
	P50, P99    time.Duration
	// WireIn and WireOut are the bytes per echo the client's sockets read
	// (server to client) and wrote (client to server), counted on the
	// connections over the whole run, warm-up included, and divided by
	// every echo received.
	WireIn, WireOut float64
	CPUPer          time.Duration // server CPU per echo, over the window
	CPU             float64       // server CPU, cores
	// Compressions is the messages the server compressed per echo, over
	// the whole run, where the server counts them (laf), or nil.
	Compressions *float64
	Errors       uint64
	Foreign      float64
}

// ZBcastRow is one contender's compressed broadcast to N sockets.
type ZBcastRow struct {
	Lib         string
	N, Size     int
	Count       int // broadcasts timed
	Median, Max time.Duration
	Deliveries  float64 // per second: sockets / median
	Timeouts    int
	WireIn      float64       // bytes the sockets read per delivery
	CPUPer      time.Duration // server CPU per broadcast
	Compression *float64      // messages compressed per broadcast (laf), or nil
	Foreign     float64
}

// compressLibs returns the selected contenders that have a compressing
// server.
func (r *runner) compressLibs(what string) []string {
	var libs, skipped []string
	for _, name := range r.serverLibs() {
		if l, err := servers.Find(name); err == nil && l.NewCompressed != nil {
			libs = append(libs, name)
		} else {
			skipped = append(skipped, name)
		}
	}
	if len(skipped) > 0 {
		logf("  %s: skipping %s (no compressing server: only laf and gws run it)", what, strings.Join(skipped, ", "))
	}
	return libs
}

// compressed reads the server's count of compressed messages, or nil.
func compressed(s *server) *uint64 {
	st, err := s.t.Stats(false)
	if err != nil {
		return nil
	}
	return st.Compressed
}

// perMsg returns (b-a)/n, or nil without both counts.
func perMsg(a, b *uint64, n uint64) *float64 {
	if a == nil || b == nil || n == 0 {
		return nil
	}
	v := float64(*b-*a) / float64(n)
	return &v
}

func (r *runner) zecho() error {
	c := r.cfg
	libs := r.compressLibs("zecho")
	if len(libs) == 0 {
		return nil
	}
	best := map[[3]any]ZEchoRow{}
	for _, n := range c.ZEchoConns {
		for round := range c.Rounds {
			for _, lib := range rotated(libs, round) {
				rows, err := r.zechoOne(lib, n)
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
	for _, n := range c.ZEchoConns {
		for _, size := range c.ZEchoSizes {
			for _, lib := range libs {
				if row, ok := best[[3]any{lib, n, size}]; ok {
					r.res.ZEcho = append(r.res.ZEcho, row)
				}
			}
		}
	}
	return nil
}

func (r *runner) zechoOne(lib string, n int) ([]ZEchoRow, error) {
	c := r.cfg
	s, err := r.start(lib, "-compress")
	if err != nil {
		return nil, err
	}
	defer s.stop()
	conns, err := s.t.DialManyCompressed(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lib, err)
	}
	defer load.CloseAll(conns)
	if _, err := s.t.WaitConns(n, true, 30*time.Second); err != nil {
		return nil, fmt.Errorf("%s: %w", lib, err)
	}
	var rows []ZEchoRow
	for _, size := range c.ZEchoSizes {
		var tries []ZEchoRow
		r.retry(fmt.Sprintf("zecho %s %d x %d B", lib, n, size), s, func() float64 {
			m := &marker{s: s}
			za := compressed(s)
			inA, outA := load.WireBytes(conns)
			res := load.EchoClosedChat(conns, size, c.EchoWarm, c.EchoOn, m.mark)
			inB, outB := load.WireBytes(conns)
			zb := compressed(s)
			row := ZEchoRow{
				Lib: lib, Conns: n, Size: size,
				Rate: res.Rate(), P50: res.Lat.Quantile(0.5), P99: res.Lat.Quantile(0.99),
				CPU: m.cores(), Errors: res.Errors, Foreign: m.foreign(),
				Compressions: perMsg(za, zb, res.All),
			}
			if res.All > 0 {
				row.WireIn = float64(inB-inA) / float64(res.All)
				row.WireOut = float64(outB-outA) / float64(res.All)
			}
			if res.Messages > 0 {
				row.CPUPer = m.cpu() / time.Duration(res.Messages)
			}
			logf("  zecho %-6s %5d conns %6d B: %9.0f msg/s p50 %-9v p99 %-9v wire %.0f B/echo in, %.0f B/echo out, %v CPU/echo, cpu %.2f err %d, other jobs %.2f cores",
				lib, n, size, row.Rate, row.P50.Round(time.Microsecond), row.P99.Round(time.Microsecond),
				row.WireIn, row.WireOut, row.CPUPer.Round(100*time.Nanosecond), row.CPU, row.Errors, row.Foreign)
			tries = append(tries, row)
			if res.Errors > 0 {
				return 0 // the sockets are gone: no retry
			}
			return row.Foreign
		})
		row := leastDisturbed(tries, func(e ZEchoRow) float64 { return e.Foreign })
		rows = append(rows, row)
		if row.Errors > 0 || tries[len(tries)-1].Errors > 0 {
			break
		}
	}
	return rows, nil
}

func (r *runner) zbroadcast() error {
	c := r.cfg
	libs := r.compressLibs("zbroadcast")
	if len(libs) == 0 {
		return nil
	}
	for _, n := range c.ZBcastN {
		best := map[string]ZBcastRow{}
		for round := range c.BcastRounds {
			for _, lib := range rotated(libs, round) {
				s, err := r.start(lib, "-compress")
				if err != nil {
					return err
				}
				row, err := r.zbroadcastOne(s, n)
				s.stop()
				if err != nil {
					return fmt.Errorf("%s: %w", lib, err)
				}
				logf("  zbroadcast %-6s %5d sockets: median %v max %v, %.0f deliveries/s, wire %.0f B/delivery, %v CPU/broadcast, timeouts %d, other jobs %.2f cores",
					lib, n, row.Median.Round(time.Microsecond), row.Max.Round(time.Microsecond), row.Deliveries,
					row.WireIn, row.CPUPer.Round(time.Microsecond), row.Timeouts, row.Foreign)
				if old, ok := best[lib]; !ok || betterRound(row.Foreign, old.Foreign, row.Deliveries, old.Deliveries) {
					best[lib] = row
				}
			}
		}
		for _, lib := range libs {
			r.res.ZBcast = append(r.res.ZBcast, best[lib])
		}
	}
	return nil
}

func (r *runner) zbroadcastOne(s *server, n int) (ZBcastRow, error) {
	c := r.cfg
	count := c.ZBcastCount[n]
	row := ZBcastRow{Lib: s.lib, N: n, Size: c.ZBcastSize, Count: count}
	conns, err := s.t.DialManyCompressed(n)
	if err != nil {
		return row, err
	}
	rc := load.Receive(conns)
	defer rc.Stop()
	if _, err := s.t.WaitConns(n, true, time.Minute); err != nil {
		return row, err
	}
	// Warm up, then time.
	if _, err := s.t.BroadcastsChat(rc, 5, c.ZBcastSize, c.BcastTimout); err != nil {
		return row, err
	}
	var timed []ZBcastRow
	var berr error
	r.retry(fmt.Sprintf("zbroadcast %s %d", s.lib, n), s, func() float64 {
		m := &marker{s: s}
		za := compressed(s)
		inA, _ := load.WireBytes(conns)
		m.mark(false)
		res, err := s.t.BroadcastsChat(rc, count, c.ZBcastSize, c.BcastTimout)
		m.mark(true)
		inB, _ := load.WireBytes(conns)
		zb := compressed(s)
		if err != nil {
			berr = err
			return 0
		}
		t := row
		t.Median, t.Max, t.Deliveries, t.Timeouts = res.Median(), res.Max(), res.DeliveriesPerSec(), res.Timeouts
		t.CPUPer = m.cpu() / time.Duration(count)
		t.WireIn = float64(inB-inA) / float64(count*n)
		t.Compression = perMsg(za, zb, uint64(count))
		t.Foreign = m.foreign()
		timed = append(timed, t)
		return t.Foreign
	})
	if berr != nil {
		return row, berr
	}
	return leastDisturbed(timed, func(x ZBcastRow) float64 { return x.Foreign }), nil
}

func renderCompress(b *strings.Builder, res *Results) {
	if len(res.ZEcho) == 0 && len(res.ZBcast) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	c := res.Meta.Config
	w("\n## 9. Compression (permessage-deflate)\n\n")
	w("The echo and broadcast scenarios again, with permessage-deflate negotiated and JSON-like chat traffic as the payload (a header, then an array of chat messages with ids, users, rooms, URLs, timestamps and short texts from a small vocabulary; deflate at its fastest level shrinks 2 KiB of it about 4 times and 16 KiB about 6 times). ")
	w("Only laf and gws have a compressing server; both compress without context takeover, from %d B, at deflate's fastest level, with klauspost/compress:\n\n", servers.CompressThreshold)
	w("| contender | how the compressing server is built |\n|---|---|\n")
	seen := map[string]bool{}
	for _, name := range append(zechoLibs(res), zbcastLibs(res)...) {
		if l, err := servers.Find(name); err == nil && !seen[name] {
			seen[name] = true
			w("| %s | %s |\n", name, l.CompressedNotes)
		}
	}
	w("\nThe load client is gorilla/websocket's client with `EnableCompression`: it offers `permessage-deflate; server_no_context_takeover; client_no_context_takeover`, refuses to run unless the server accepts it, compresses what it sends (deflate level 1, as a browser compresses) and inflates what it gets, all on the same 2 cores as the server. ")
	w("*Wire* bytes are counted on the client's connections (a wrapper around each `net.Conn` that counts the bytes `Read` and `Write` carry: the TCP payload, so WebSocket frame headers included, IP and TCP headers not), over the whole run, warm-up included, and divided by the messages received in it; *ratio* is the payload over the wire bytes. ")
	w("Server CPU is utime+stime from /proc/PID/stat (10 ms ticks) over the measured window. *Compressions* is laf's `Stats.Compressed` per message (gws does not count).\n\n")

	if len(res.ZEcho) > 0 {
		w("### Echo, compressed\n\n")
		w("As section 1 (%s warm-up, %s measured, %s, the best shown), each socket echoing chat payloads: the client's message is inflated by the server, and the echo compressed again.\n\n", c.EchoWarm, c.EchoOn, roundsStr(c.Rounds))
		w("| sockets | payload | contender | msg/s | (× best peer) | p50 | p99 | wire B/echo, server→client | ratio | wire B/echo, client→server | server CPU/echo | (× best peer) | compressions/echo | server CPU | other jobs |\n")
		w("|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		name := func(r ZEchoRow) string { return r.Lib }
		rate := func(r ZEchoRow) float64 { return r.Rate }
		cpu := func(r ZEchoRow) float64 { return float64(r.CPUPer) }
		for _, n := range c.ZEchoConns {
			for _, size := range c.ZEchoSizes {
				var rows []ZEchoRow
				for _, r := range res.ZEcho {
					if r.Conns == n && r.Size == size {
						rows = append(rows, r)
					}
				}
				for _, r := range rows {
					errs := ""
					if r.Errors > 0 {
						errs = fmt.Sprintf(" (%d socket errors)", r.Errors)
					}
					w("| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f cores | %.2f |\n",
						commas(int64(n)), sizeStr(size), lib(r.Lib), errs, num(r.Rate), peerRatio(rows, name, rate, r.Rate, true),
						dur(r.P50), dur(r.P99), bytesStr(r.WireIn), ratio(float64(size), r.WireIn), bytesStr(r.WireOut),
						durFine(r.CPUPer), peerRatio(rows, name, cpu, cpu(r), false), perStr(r.Compressions), r.CPU, r.Foreign)
				}
			}
		}
		w("\n")
	}
	if len(res.ZBcast) > 0 {
		w("### Broadcast, compressed\n\n")
		w("As section 4 without the stuck socket: a %s chat payload broadcast to every socket, one broadcast after the other (after 5 untimed ones; %s timed), %s, the round that delivered most shown. ", sizeStr(c.ZBcastSize), countsStr(c.ZBcastCount), roundsStr(c.BcastRounds))
		w("Both compress a broadcast once for all its sockets; completion includes the client inflating it on every socket, on the same 2 cores, so server CPU per broadcast is the figure that tells the servers apart.\n\n")
		w("| sockets | contender | completion p50 | (× best peer) | max | deliveries/s | wire B/delivery | ratio | server CPU/broadcast | (× best peer) | server CPU/delivery | compressions/broadcast | other jobs | notes |\n")
		w("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		name := func(r ZBcastRow) string { return r.Lib }
		med := func(r ZBcastRow) float64 { return float64(r.Median) }
		cpu := func(r ZBcastRow) float64 { return float64(r.CPUPer) }
		for _, n := range c.ZBcastN {
			var rows []ZBcastRow
			for _, r := range res.ZBcast {
				if r.N == n {
					rows = append(rows, r)
				}
			}
			for _, r := range rows {
				notes := ""
				if r.Timeouts > 0 {
					notes = fmt.Sprintf("%d timed out", r.Timeouts)
				}
				perDelivery := time.Duration(0)
				if r.N > 0 {
					perDelivery = r.CPUPer / time.Duration(r.N)
				}
				w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s |\n",
					commas(int64(n)), lib(r.Lib), dur(r.Median), peerRatio(rows, name, med, med(r), false), dur(r.Max), num(r.Deliveries),
					bytesStr(r.WireIn), ratio(float64(r.Size), r.WireIn), dur(r.CPUPer), peerRatio(rows, name, cpu, cpu(r), false),
					durFine(perDelivery), perStr(r.Compression), r.Foreign, notes)
			}
		}
		w("\n")
	}
	w("Ratios `(× best peer)` divide by gws's figure; CPU per message is read to the tick, so at a few ticks a window it is coarse.\n\n")
}

// peerRatio formats v over the best peer's figure.
func peerRatio[T any](rows []T, name func(T) string, get func(T) float64, v float64, higher bool) string {
	_, p := bestPeer(rows, name, get, higher)
	return ratio(v, p)
}

// durFine formats a duration under a millisecond to a tenth of a
// microsecond.
func durFine(d time.Duration) string {
	if d > 0 && d < 100*time.Microsecond {
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
	return dur(d)
}

func perStr(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *v)
}

func zechoLibs(res *Results) []string {
	var l []string
	for _, r := range res.ZEcho {
		l = append(l, r.Lib)
	}
	return l
}

func zbcastLibs(res *Results) []string {
	var l []string
	for _, r := range res.ZBcast {
		l = append(l, r.Lib)
	}
	return l
}
