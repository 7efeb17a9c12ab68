package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lafgo/laf/bench/internal/load"
	"github.com/lafgo/laf/bench/internal/servers"
)

// LatestRow is one contender's latest-state run.
type LatestRow struct {
	Lib        string
	Fast, Slow LatestClassRow
	Seconds    float64 // the window
	Sent       uint64  // frames the server sent to the room
	Replaced   uint64  // frames replaced before being written, over every socket
	Closed     uint64  // sockets that closed during the window
	Open       int     // sockets in the room at the end
	Errors     uint64  // client sockets that failed
	Goroutines int     // the server's
	CPU        float64 // server CPU, cores
	Foreign    float64
}

// LatestClassRow is what the fast or the slow sockets saw.
type LatestClassRow struct {
	Sockets                      int
	FramesPerSec                 float64 // received, per socket
	Skipped                      float64 // share of the frames sent that they never received
	AgeP50, AgeP99, AgeMax       time.Duration
	QueueP50, QueueP99, QueueMax int // bytes, per socket, over every sample
}

func latestClass(c *load.LatestClass, seconds float64) LatestClassRow {
	row := LatestClassRow{
		Sockets: c.Sockets,
		AgeP50:  c.Age.Quantile(0.5), AgeP99: c.Age.Quantile(0.99), AgeMax: c.Age.Max(),
	}
	if c.Sockets > 0 && seconds > 0 {
		row.FramesPerSec = float64(c.Frames) / float64(c.Sockets) / seconds
	}
	if got := c.Frames + c.Skipped; got > 0 {
		row.Skipped = float64(c.Skipped) / float64(got)
	}
	if len(c.Queue) > 0 {
		q := slices.Clone(c.Queue)
		slices.Sort(q)
		at := func(p float64) int { return q[min(len(q)-1, int(p*float64(len(q)-1)+0.5))] }
		row.QueueP50, row.QueueP99, row.QueueMax = at(0.5), at(0.99), q[len(q)-1]
	}
	return row
}

// latestLibs returns the contenders with a latest-state server.
func (r *runner) latestLibs() []string {
	var libs []string
	for _, name := range r.serverLibs() {
		if l, err := servers.Find(name); err == nil && l.NewLatest != nil {
			libs = append(libs, name)
		}
	}
	return libs
}

func (r *runner) latest() error {
	c := r.cfg
	libs := r.latestLibs()
	if len(libs) == 0 {
		logf("  latest: none of the contenders has a latest-state server (laf, gws)")
		return nil
	}
	for _, lib := range libs {
		s, err := r.start(lib, "-notsent-lowat", strconv.Itoa(servers.LatestLowat))
		if err != nil {
			return err
		}
		var tries []LatestRow
		var lerr error
		r.retry("latest "+lib, s, func() float64 {
			m := &marker{s: s}
			res, err := s.t.Latest(load.LatestConfig{
				Sockets: c.LatestN, SlowEvery: c.LatestSlowEvery, SlowRead: c.LatestSlowRead,
				Warmup: c.LatestWarm, Dur: c.LatestOn, Sample: c.LatestSample,
			}, m.mark)
			if err != nil {
				lerr = err
				return 0
			}
			secs := res.Elapsed.Seconds()
			row := LatestRow{
				Lib: lib, Seconds: secs,
				Fast: latestClass(&res.Fast, secs), Slow: latestClass(&res.Slow, secs),
				Sent: res.Sent, Replaced: res.Replaced, Closed: res.Closed, Open: res.Open,
				Errors: res.Errors, Goroutines: res.Goroutines, CPU: m.cores(), Foreign: m.foreign(),
			}
			logf("  latest %-8s %d sockets (%d slow): fast %.1f frames/s age p50 %v p99 %v queue p99 %d B; slow %.1f frames/s age p50 %v p99 %v queue p99 %d max %d B; sent %d replaced %d closed %d cpu %.2f, other jobs %.2f cores",
				lib, row.Fast.Sockets+row.Slow.Sockets, row.Slow.Sockets,
				row.Fast.FramesPerSec, row.Fast.AgeP50.Round(time.Microsecond), row.Fast.AgeP99.Round(time.Microsecond), row.Fast.QueueP99,
				row.Slow.FramesPerSec, row.Slow.AgeP50.Round(time.Microsecond), row.Slow.AgeP99.Round(time.Microsecond), row.Slow.QueueP99, row.Slow.QueueMax,
				row.Sent, row.Replaced, row.Closed, row.CPU, row.Foreign)
			tries = append(tries, row)
			return row.Foreign
		})
		s.stop()
		if lerr != nil {
			return fmt.Errorf("%s: %w", lib, lerr)
		}
		r.res.Latest = append(r.res.Latest, leastDisturbed(tries, func(x LatestRow) float64 { return x.Foreign }))
	}
	return nil
}

func renderLatest(b *strings.Builder, res *Results) {
	if len(res.Latest) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	c := res.Meta.Config
	slowPct := 0
	if c.LatestSlowEvery > 0 {
		slowPct = 100 / c.LatestSlowEvery
	}
	w("## 7. Latest state\n\n")
	w("Real-time state, such as a board's cursors or a game's positions: %s sockets in one room, to which the server sends a %s binary frame %d times a second, each carrying its sequence number and the time it was sent. ",
		commas(int64(c.LatestN)), sizeStr(servers.LatestSize), servers.LatestHz)
	w("Frames are conflated per socket: a frame still waiting for a socket is replaced by the next, so a slow reader gets the newest state, never a backlog. ")
	w("%d%% of the sockets are slow: they read one frame every %s (a third of the rate) with a 4 KiB receive buffer; the others read as frames come. ", slowPct, c.LatestSlowRead)
	w("The server sets TCP_NOTSENT_LOWAT to %s on its connections, as real-time servers do, so that what a slow socket has not taken waits in the server's queue, where it can be replaced, rather than in a send buffer that Linux grows to 4 MiB. ", sizeStr(servers.LatestLowat))
	w("%s warm-up, then %s measured; only laf and gws run it.\n\n", c.LatestWarm, c.LatestOn)
	w("| contender | how the latest-state server is built |\n|---|---|\n")
	for _, r := range res.Latest {
		if l, err := servers.Find(r.Lib); err == nil {
			w("| %s | %s |\n", r.Lib, l.LatestNotes)
		}
	}
	w("\n*Age* is, at receipt, the client's clock minus the frame's send time (one machine, one clock). ")
	w("*Queue* is the bytes the server holds for one socket, queued or being written (laf: `Socket.Buffered()`; gws: the slot's frame plus the one its writer is writing), read from the server's `/latest/stats` every %s, over every socket and sample. ", c.LatestSample)
	w("*Skipped* is the share of the frames sent that a socket never received. ")
	w("A slow socket's age is mostly the frames already past the server's queue (in the kernel's buffers on both sides and the client's read buffer), which no conflation can reach: it reads them one per %s.\n\n", c.LatestSlowRead)
	w("| contender | sockets | frames/s each | skipped | age p50 | age p99 | age max | queue p50 | queue p99 | queue max |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range res.Latest {
		for _, cl := range []struct {
			name string
			row  LatestClassRow
		}{{"fast", r.Fast}, {"slow", r.Slow}} {
			x := cl.row
			w("| %s | %s %s | %.1f | %.0f%% | %s | %s | %s | %s | %s | %s |\n", lib(r.Lib), commas(int64(x.Sockets)), cl.name,
				x.FramesPerSec, 100*x.Skipped, dur(x.AgeP50), dur(x.AgeP99), dur(x.AgeMax),
				bytesStr(float64(x.QueueP50)), bytesStr(float64(x.QueueP99)), bytesStr(float64(x.QueueMax)))
		}
	}
	w("\n| contender | frames sent | replaced | sockets closed | open at the end | server goroutines | server CPU | other jobs |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range res.Latest {
		closed := commas(int64(r.Closed))
		if r.Errors > 0 {
			closed += fmt.Sprintf(" (%d client errors)", r.Errors)
		}
		w("| %s | %s | %s | %s | %s | %s | %.2f cores | %.2f |\n", lib(r.Lib), commas(int64(r.Sent)), commas(int64(r.Replaced)),
			closed, commas(int64(r.Open)), commas(int64(r.Goroutines)), r.CPU, r.Foreign)
	}
	w("\n")
}
