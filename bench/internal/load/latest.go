package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lafgo/laf/bench/internal/hist"
	"github.com/lafgo/laf/bench/internal/servers"
	"github.com/lafgo/laf/bench/internal/wire"
)

// LatestConfig is the load of the latest-state scenario: Sockets sockets
// in the server's room (GET /latest), which sends them LatestHz frames a
// second; one in SlowEvery is slow.
type LatestConfig struct {
	Sockets   int
	SlowEvery int           // socket i is slow when i%SlowEvery == 0 (10: 10%)
	SlowRead  time.Duration // a slow socket reads one frame, then waits this long
	Warmup    time.Duration
	Dur       time.Duration // the measured window
	Sample    time.Duration // between readings of the server's queues
}

// LatestClass is what the fast or the slow sockets saw in the window.
type LatestClass struct {
	Sockets int
	Frames  uint64    // frames received
	Skipped uint64    // frames the sockets never received: gaps in the sequence numbers
	Age     hist.Hist // at receipt, now minus the time the server sent the frame
	Queue   []int     // the server's queue bytes of each socket at each sample
}

// LatestResult is the outcome of a latest-state run.
type LatestResult struct {
	Fast, Slow LatestClass
	Elapsed    time.Duration
	Sent       uint64 // frames the server sent to the room in the window
	Replaced   uint64 // frames replaced in the window, over every socket
	Closed     uint64 // sockets that closed during the window
	Open       int    // sockets in the room at the end of the window
	Errors     uint64 // client sockets that failed before the end
	Bad        uint64 // messages that were not frames
	Goroutines int    // the server's, in the middle of the window
}

// LatestStats reads the room's stats from the server.
func (t *Target) LatestStats() (servers.LatestStats, error) {
	var s servers.LatestStats
	resp, err := t.http.Get("http://" + t.Addrs[0] + "/latest/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("load: /latest/stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Latest runs the latest-state scenario: it dials cfg.Sockets sockets
// into the room (the slow ones with a 4 KiB receive buffer), reads frames
// on every socket, the fast ones as they come and the slow ones one per
// cfg.SlowRead, and after cfg.Warmup measures for cfg.Dur the age of the
// frames received and the server's per-socket queue bytes. mark is called
// at the start and the end of the window. It closes its sockets before
// returning.
func (t *Target) Latest(cfg LatestConfig, mark func(end bool)) (*LatestResult, error) {
	slow := func(i int) bool { return cfg.SlowEvery > 0 && i%cfg.SlowEvery == 0 }
	conns, err := dialMany(cfg.Sockets, func(ctx context.Context, i int) (*websocket.Conn, error) {
		if slow(i) {
			return t.dialPath(ctx, t.slowDialers[i%sourceIPs], i, "/latest", "slow=1")
		}
		return t.dialPath(ctx, t.dialers[i%sourceIPs], i, "/latest", "")
	})
	if err != nil {
		return nil, err
	}
	defer CloseAll(conns)

	var phase atomic.Int32
	hists := make([]hist.Hist, len(conns))
	frames := make([]uint64, len(conns))
	skipped := make([]uint64, len(conns))
	var errs, bad atomic.Uint64
	var wg sync.WaitGroup
	deadline := time.Now().Add(cfg.Warmup + cfg.Dur + time.Minute)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline)
			buf := make([]byte, servers.LatestSize+512)
			var last uint64
			for phase.Load() != phaseStop {
				var p []byte
				var err error
				if _, p, buf, err = readInto(c, buf); err != nil {
					if phase.Load() != phaseStop {
						errs.Add(1)
					}
					return
				}
				now := time.Now().UnixNano()
				kind, seq, sent, err := wire.Parse(p)
				if err != nil || kind != wire.Latest {
					bad.Add(1)
					continue
				}
				if phase.Load() == phaseMeasure {
					hists[i].Record(time.Duration(now - sent))
					frames[i]++
					if last != 0 && seq > last+1 {
						skipped[i] += seq - last - 1
					}
				}
				last = seq
				if slow(i) {
					time.Sleep(cfg.SlowRead)
				}
			}
		}()
	}
	stop := func() {
		phase.Store(phaseStop)
		CloseAll(conns)
		wg.Wait()
	}

	// Every socket in the room, then the warm-up.
	for wait := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		st, err := t.LatestStats()
		if err == nil && st.Sockets == cfg.Sockets {
			break
		}
		if time.Now().After(wait) {
			stop()
			if err == nil {
				err = fmt.Errorf("load: the room has %d sockets, want %d", st.Sockets, cfg.Sockets)
			}
			return nil, err
		}
	}
	time.Sleep(cfg.Warmup)

	res := &LatestResult{}
	before, err := t.LatestStats()
	if err != nil {
		stop()
		return nil, err
	}
	phase.Store(phaseMeasure)
	start := time.Now()
	mark(false)
	var samplingErr error
	for time.Since(start) < cfg.Dur {
		time.Sleep(min(cfg.Sample, cfg.Dur-time.Since(start)))
		st, err := t.LatestStats()
		if err != nil {
			samplingErr = err
			break
		}
		res.Slow.Queue = append(res.Slow.Queue, st.Slow...)
		res.Fast.Queue = append(res.Fast.Queue, st.Fast...)
		if res.Goroutines == 0 && time.Since(start) >= cfg.Dur/2 {
			if s, err := t.Stats(false); err == nil {
				res.Goroutines = s.Goroutines
			}
		}
	}
	mark(true)
	phase.Store(phaseStop)
	res.Elapsed = time.Since(start)
	after, err := t.LatestStats()
	stop()
	if samplingErr != nil {
		return nil, samplingErr
	}
	if err != nil {
		return nil, err
	}
	res.Sent = after.Frames - before.Frames
	res.Replaced = after.Replaced - before.Replaced
	res.Closed = after.Closed - before.Closed
	res.Open = after.Sockets
	res.Errors, res.Bad = errs.Load(), bad.Load()
	for i := range conns {
		cl := &res.Fast
		if slow(i) {
			cl = &res.Slow
		}
		cl.Sockets++
		cl.Frames += frames[i]
		cl.Skipped += skipped[i]
		cl.Age.Merge(&hists[i])
	}
	return res, nil
}
