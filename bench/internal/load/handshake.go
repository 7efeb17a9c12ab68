package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lafgo/laf/bench/internal/hist"
)

// HandshakeResult is the outcome of a handshake run.
type HandshakeResult struct {
	OK, Failed uint64
	Elapsed    time.Duration
	Lat        hist.Hist // dial: TCP connect + upgrade
}

// Rate returns completed handshakes per second.
func (h *HandshakeResult) Rate() float64 { return float64(h.OK) / h.Elapsed.Seconds() }

// Handshakes opens and closes sockets with workers goroutines for dur:
// each dials, then closes with a close handshake (close frame, the
// server's close frame, EOF).
func (t *Target) Handshakes(workers int, dur time.Duration, mark func(end bool)) *HandshakeResult {
	var ok, failed atomic.Uint64
	hists := make([]hist.Hist, workers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var seq atomic.Int64
	mark(false)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			closeMsg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			for !stop.Load() {
				i := int(seq.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t0 := time.Now()
				c, err := t.Dial(ctx, i)
				cancel()
				if err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				hists[w].Record(time.Since(t0))
				c.WriteControl(websocket.CloseMessage, closeMsg, time.Now().Add(5*time.Second))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					if _, _, err := c.NextReader(); err != nil {
						break
					}
				}
				c.Close()
				if !stop.Load() {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(dur)
	stop.Store(true)
	res := &HandshakeResult{Elapsed: time.Since(start)}
	mark(true)
	wg.Wait()
	res.OK, res.Failed = ok.Load(), failed.Load()
	for i := range hists {
		res.Lat.Merge(&hists[i])
	}
	return res
}
