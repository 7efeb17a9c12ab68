package load

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lafgo/laf/bench/internal/hist"
	"github.com/lafgo/laf/bench/internal/wire"
)

// Window is a measured interval; the caller samples the server at its
// start and end.
type Window struct {
	Start, End time.Time
}

// EchoResult is the outcome of an echo run.
type EchoResult struct {
	Messages uint64        // echoes received within the window
	All      uint64        // closed loop: echoes received in every phase, warm-up and drain included
	Elapsed  time.Duration // the window
	Lat      hist.Hist     // round-trip (closed loop) or from intended send time (open loop)
	Service  hist.Hist     // open loop: from the actual write
	Errors   uint64        // sockets that failed
	Sent     uint64        // open loop: messages sent whose intended time was in the window
}

// Rate returns messages per second.
func (r *EchoResult) Rate() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// EchoClosed runs a closed loop on conns: each socket sends a text
// message of size bytes, waits for its echo, and sends the next. After
// warmup, it measures for dur; mark is called at the start and the end of
// the measured window (to sample the server).
func EchoClosed(conns []*websocket.Conn, size int, warmup, dur time.Duration, mark func(end bool)) *EchoResult {
	return echoClosed(conns, size, wire.New, warmup, dur, mark)
}

// EchoClosedChat is EchoClosed with chat traffic (wire.NewChat) as the
// payload.
func EchoClosedChat(conns []*websocket.Conn, size int, warmup, dur time.Duration, mark func(end bool)) *EchoResult {
	return echoClosed(conns, size, wire.NewChat, warmup, dur, mark)
}

func echoClosed(conns []*websocket.Conn, size int, payload func(kind byte, size int, seq uint64, nanos int64) []byte,
	warmup, dur time.Duration, mark func(end bool)) *EchoResult {
	var phase atomic.Int32
	hists := make([]hist.Hist, len(conns))
	counts := make([]uint64, len(conns))
	all := make([]uint64, len(conns))
	var errs atomic.Uint64
	var wg sync.WaitGroup
	deadline := time.Now().Add(warmup + dur + 30*time.Second)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline)
			c.SetWriteDeadline(deadline)
			msg := payload(wire.Echo, size, uint64(i), 0)
			buf := make([]byte, size+512)
			h := &hists[i]
			var n uint64
			for phase.Load() != phaseStop {
				t0 := time.Now()
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					errs.Add(1)
					return
				}
				var err error
				var p []byte
				if _, p, buf, err = readInto(c, buf); err != nil || len(p) != len(msg) {
					errs.Add(1)
					return
				}
				all[i]++
				d := time.Since(t0)
				if phase.Load() == phaseMeasure {
					h.Record(d)
					n++
				}
			}
			counts[i] = n
		}()
	}
	time.Sleep(warmup)
	var w Window
	w.Start = time.Now()
	mark(false)
	phase.Store(phaseMeasure)
	time.Sleep(dur)
	phase.Store(phaseStop)
	w.End = time.Now()
	mark(true)
	wg.Wait()
	res := &EchoResult{Elapsed: w.End.Sub(w.Start), Errors: errs.Load()}
	for i := range hists {
		res.Lat.Merge(&hists[i])
		res.Messages += counts[i]
		res.All += all[i]
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Time{})
		c.SetWriteDeadline(time.Time{})
	}
	return res
}

// EchoOpen runs an open loop on conns: one sender writes rate messages
// per second in total, round-robin over the sockets, each stamped with
// the time it was due; each socket's reader measures from that time, so
// a stall of the server or of the sender counts against the latency
// (no coordinated omission). Only messages due within the measured
// window count.
func EchoOpen(conns []*websocket.Conn, size, rate int, warmup, dur time.Duration, mark func(end bool)) *EchoResult {
	interval := time.Second / time.Duration(rate)
	total := int((warmup + dur) / interval)
	hists := make([]hist.Hist, len(conns))
	service := make([]hist.Hist, len(conns))
	counts := make([]uint64, len(conns))
	var errs atomic.Uint64
	var wg sync.WaitGroup

	start := time.Now().Add(50 * time.Millisecond)
	winStart := start.Add(warmup).UnixNano()
	winEnd := start.Add(warmup + dur).UnixNano()
	deadline := start.Add(warmup + dur + 30*time.Second)
	grace := 3 * time.Second

	var sentInWindow atomic.Uint64
	expected := make([]atomic.Int64, len(conns)) // per socket: messages sent
	got := make([]atomic.Int64, len(conns))
	var senderDone atomic.Bool
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline)
			buf := make([]byte, size+512)
			h, sh := &hists[i], &service[i]
			var n uint64
			for {
				var err error
				var p []byte
				if _, p, buf, err = readInto(c, buf); err != nil {
					if !senderDone.Load() {
						errs.Add(1)
					}
					break
				}
				now := time.Now().UnixNano()
				got[i].Add(1)
				_, wrote, due, err := wire.Parse(p)
				if err != nil {
					errs.Add(1)
					break
				}
				if due >= winStart && due < winEnd {
					h.Record(time.Duration(now - due))
					sh.Record(time.Duration(now - int64(wrote)))
					n++
				}
			}
			counts[i] = n
		}()
	}

	msg := wire.New(wire.Echo, size, 0, 0)
	marked := false
	for k := 0; k < total; {
		now := time.Now()
		if !marked && now.UnixNano() >= winStart {
			mark(false)
			marked = true
		}
		for ; k < total; k++ {
			due := start.Add(time.Duration(k) * interval)
			if due.After(now) {
				break
			}
			i := k % len(conns)
			c := conns[i]
			// The sequence field carries the actual write time.
			wire.Stamp(msg, uint64(time.Now().UnixNano()), due.UnixNano())
			c.SetWriteDeadline(deadline)
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				errs.Add(1)
				continue
			}
			expected[i].Add(1)
			if d := due.UnixNano(); d >= winStart && d < winEnd {
				sentInWindow.Add(1)
			}
		}
		if k < total {
			time.Sleep(time.Until(start.Add(time.Duration(k) * interval)))
		}
	}
	mark(true)
	senderDone.Store(true)
	// Wait for the last echoes, for at most grace, then stop the readers.
	// (A read deadline ends a gorilla connection: conns are not reused.)
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		all := true
		for i := range got {
			if got[i].Load() < expected[i].Load() {
				all = false
				break
			}
		}
		if all {
			break
		}
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now())
	}
	wg.Wait()
	res := &EchoResult{Elapsed: time.Duration(winEnd - winStart), Errors: errs.Load(), Sent: sentInWindow.Load()}
	for i := range hists {
		res.Lat.Merge(&hists[i])
		res.Service.Merge(&service[i])
		res.Messages += counts[i]
	}
	return res
}
