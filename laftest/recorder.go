package laftest

import (
	"testing"
	"time"

	"github.com/lafgo/laf"
)

// Event is one call of a laf.Func, as a Recorder saw it.
type Event struct {
	Method   string
	SocketID string
	Params   laf.Params
}

// Recorder is a laf.Func that records every event and then calls an inner
// Func. Tests read the events back in order with Next.
type Recorder struct {
	inner  laf.Func
	events chan Event
}

// NewRecorder returns a Recorder calling inner (which may be nil) after
// recording each event. It holds up to 100,000 unread events; past that
// the Func blocks until the test reads.
func NewRecorder(inner laf.Func) *Recorder {
	return &Recorder{inner: inner, events: make(chan Event, 100_000)}
}

// Func is the laf.Func to give to laf.Handler or NewServer.
func (r *Recorder) Func(ctx *laf.FunctionContext) error {
	r.events <- Event{Method: ctx.Method, SocketID: ctx.Socket.ID(), Params: ctx.Params}
	if r.inner == nil {
		return nil
	}
	return r.inner(ctx)
}

// Next returns the next event, failing t if none comes within
// DefaultTimeout.
func (r *Recorder) Next(t testing.TB) Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(DefaultTimeout):
		t.Fatalf("laftest: no event within %v", DefaultTimeout)
		return Event{}
	}
}

// Expect returns the next event, failing t unless its method is method.
func (r *Recorder) Expect(t testing.TB, method string) Event {
	t.Helper()
	ev := r.Next(t)
	if ev.Method != method {
		t.Fatalf("laftest: got event %s %+v, want %s", ev.Method, ev.Params, method)
	}
	return ev
}

// Pending returns how many recorded events have not been read.
func (r *Recorder) Pending() int { return len(r.events) }
