package laftest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lafgo/laf"
)

// The heartbeat and broker timeout TestBrokerHang runs its nodes with.
const (
	HangHeartbeat     = time.Second
	HangBrokerTimeout = 500 * time.Millisecond
)

// HangReport is what TestBrokerHang measured, for an operator's table.
type HangReport struct {
	Pushes, Delivered, Refused, Unknown int // pushes during the hang, by the answer they got
	Arrived, Lost, Duplicated           int // of those, how many arrived, how many that were answered nil did not, and arrivals beyond the first
	UnknownArrived                      int // pushes answered "outcome unknown" that arrived (at most once each)
	MaxBlock                            time.Duration
	NotReadyAfter                       time.Duration // from the hang to both nodes not ready
	ReadyAfter                          time.Duration // from the resume to both nodes ready
	FirstPushAfter                      time.Duration // from the resume to the first push delivered
}

func (r HangReport) String() string {
	return fmt.Sprintf("%d pushes during the hang: %d nil, %d BrokerError, %d OutcomeUnknown (%d of those arrived); "+
		"lost %d, duplicated %d; longest send %v; not ready %v after the hang; ready %v and pushes through %v after the resume",
		r.Pushes, r.Delivered, r.Refused, r.Unknown, r.UnknownArrived, r.Lost, r.Duplicated,
		r.MaxBlock.Round(time.Millisecond), r.NotReadyAfter.Round(time.Millisecond),
		r.ReadyAfter.Round(time.Millisecond), r.FirstPushAfter.Round(time.Millisecond))
}

// TestBrokerHang checks two endpoints, on a and b (two clients of one
// broker), through a broker that hangs: hang makes it accept connections
// and bytes but answer nothing (SIGSTOP, or a proxy that stops
// forwarding), for four heartbeats, and resume lets it go on where it
// stopped (SIGCONT). Meanwhile four goroutines push from one node to a
// socket on the other. It checks the answers of the API:
//
//   - no push blocks longer than the broker timeout (plus a margin);
//   - no push answers ErrNotFound: the socket is live;
//   - a push answered nil arrives exactly once, one answered with a
//     *laf.BrokerError never arrives (a retry would be safe), one answered
//     laf.ErrOutcomeUnknown arrives at most once, and nothing arrives twice;
//   - both nodes are not ready within a heartbeat of the hang (plus a
//     margin), and ready again within a heartbeat of the resume, and
//     count each other all along.
//
// It returns what it measured. Adapters call it from their own tests.
func TestBrokerHang(t *testing.T, a, b laf.Broker, hang, resume func()) HangReport {
	opts := []laf.Option{laf.WithHeartbeat(HangHeartbeat), laf.WithBrokerTimeout(HangBrokerTimeout)}
	nodes, socks := startPair(t, opts, a, b)
	from, to := nodes[0], socks[1]
	push(t, from, to, "before")
	to.expect(t, "before")
	for i, n := range nodes {
		waitWithin(t, fmt.Sprintf("node %d ready", i), DefaultTimeout, func() bool { return n.Endpoint.Ready() == nil })
	}

	var r HangReport
	hangAt := time.Now()
	hang()
	answers := make(map[string]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("p%d-%d", g, i)
				start := time.Now()
				err := from.Endpoint.SendSocket(context.Background(), to.id, laf.Text(text))
				took := time.Since(start)
				mu.Lock()
				answers[text] = err
				r.MaxBlock = max(r.MaxBlock, took)
				mu.Unlock()
			}
		}()
	}
	// Readiness and presence while the broker hangs.
	notReady := waitWithin(t, "both nodes not ready on a hung broker", HangHeartbeat+readyMargin, func() bool {
		return nodes[0].Endpoint.Ready() != nil && nodes[1].Endpoint.Ready() != nil
	})
	r.NotReadyAfter = time.Since(hangAt)
	t.Logf("not ready %v after the hang: %v", notReady, nodes[0].Endpoint.Ready())
	for time.Since(hangAt) < 4*HangHeartbeat {
		for i, n := range nodes {
			if got := n.Endpoint.Presence().Nodes(); got != 2 {
				t.Errorf("node %d counts %d nodes on a hung broker, want 2", i, got)
			}
			if n.Endpoint.Ready() == nil {
				t.Errorf("node %d ready on a hung broker", i)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	resumeAt := time.Now()
	resume()
	r.ReadyAfter = waitWithin(t, "both nodes ready after the resume", HangHeartbeat+readyMargin, func() bool {
		return nodes[0].Endpoint.Ready() == nil && nodes[1].Endpoint.Ready() == nil
	})
	// Pushes flow again: a marker, retried while the answer is a safe one.
	for {
		err := from.Endpoint.SendSocket(context.Background(), to.id, laf.Text("after"))
		if err == nil {
			break
		}
		var be *laf.BrokerError
		if !errors.As(err, &be) || errors.Is(err, laf.ErrNotFound) {
			t.Fatalf("push after the resume: %v", err)
		}
		if time.Since(resumeAt) > DefaultTimeout {
			t.Fatalf("pushes refused %v after the resume: %v", DefaultTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.FirstPushAfter = time.Since(resumeAt)

	// Everything that arrives, up to the marker and a quiet spell after it
	// for anything a hung broker delivers late.
	got := make(map[string]int)
	for marker := false; ; {
		select {
		case m := <-to.msgs:
			if m == "after" {
				marker = true
				continue
			}
			got[m]++
		case <-time.After(2 * HangBrokerTimeout):
			if marker {
				goto tally
			}
		case <-time.After(DefaultTimeout):
			t.Fatalf("the marker pushed after the resume never arrived")
		}
	}
tally:
	for text, err := range answers {
		n := got[text]
		r.Pushes++
		if n > 0 {
			r.Arrived++
		}
		if n > 1 {
			r.Duplicated += n - 1
			t.Errorf("%s arrived %d times (answer: %v)", text, n, err)
		}
		var be *laf.BrokerError
		switch {
		case err == nil:
			r.Delivered++
			if n == 0 {
				r.Lost++
				t.Errorf("%s answered nil and never arrived", text)
			}
		case errors.Is(err, laf.ErrOutcomeUnknown):
			r.Unknown++
			if n > 0 {
				r.UnknownArrived++
			}
		case errors.As(err, &be):
			r.Refused++
			if n > 0 {
				t.Errorf("%s answered a BrokerError (nothing delivered: retry is safe) and arrived: %v", text, err)
			}
		case errors.Is(err, laf.ErrNotFound):
			t.Errorf("%s: ErrNotFound for a live socket", text)
		default:
			t.Errorf("%s: unexpected answer %v", text, err)
		}
	}
	for text := range got {
		if _, ok := answers[text]; !ok && text != "before" {
			t.Errorf("unexpected message %q", text)
		}
	}
	if r.MaxBlock > HangBrokerTimeout+blockMargin {
		t.Errorf("a push blocked %v, over the broker timeout %v plus %v", r.MaxBlock, HangBrokerTimeout, blockMargin)
	}
	t.Log(r)
	return r
}
