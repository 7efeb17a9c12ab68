package laftest

import (
	"bytes"
	"testing"
	"time"

	"github.com/lafgo/laf"
)

// Event is one call of a laf.Func, as a Recorder saw it.
type Event struct {
	// Method is the event's method, such as laf.MethodMessage.
	Method string
	// SocketID is the id of the socket the event is for.
	SocketID string
	// Params are the event's parameters. Params.Data is the Recorder's own
	// copy, valid even when the endpoint lends Data (laf.WithLentData).
	Params laf.Params
}

// Recorder records every event of a laf.Func, for the test to read back
// in order with Next and Expect. Its Func records and then calls the
// inner Func given to NewRecorder; Wrap records around any Func. It is
// safe for concurrent use by every socket of any number of endpoints.
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

// Func is the laf.Func to give to laf.Handler or NewServer: it records
// each event and then calls the inner Func, returning what that returns.
func (r *Recorder) Func(ctx *laf.FunctionContext) error {
	r.record(ctx)
	if r.inner == nil {
		return nil
	}
	return r.inner(ctx)
}

// Wrap returns a laf.Func that records each event, as Func does, and then
// calls fn (not the inner Func of NewRecorder), returning what fn
// returns; fn may be nil. Its signature is that of a middleware, so an
// app that builds its own Endpoint can take one and let a test record
// what its Func sees:
//
//	func NewApp(wrap func(laf.Func) laf.Func) *App {
//		a := &App{Mux: http.NewServeMux()}
//		a.Endpoint = laf.Handler(wrap(a.ws))
//		a.Mux.Handle("/ws", a.Endpoint)
//		return a
//	}
//
//	func TestApp(t *testing.T) {
//		rec := laftest.NewRecorder(nil)
//		app := NewApp(rec.Wrap)
//		srv := laftest.ServeHandler(t, app.Mux, app.Endpoint)
//		srv.DialPath(t, "/ws", nil)
//		rec.Expect(t, laf.MethodConnection)
//	}
func (r *Recorder) Wrap(fn laf.Func) laf.Func {
	return func(ctx *laf.FunctionContext) error {
		r.record(ctx)
		if fn == nil {
			return nil
		}
		return fn(ctx)
	}
}

// record queues ctx's event, with a copy of its Data.
func (r *Recorder) record(ctx *laf.FunctionContext) {
	p := ctx.Params
	p.Data = bytes.Clone(p.Data)
	r.events <- Event{Method: ctx.Method, SocketID: ctx.Socket.ID(), Params: p}
}

// Next returns the next event, failing t if none comes within
// DefaultTimeout.
func (r *Recorder) Next(t testing.TB) Event {
	t.Helper()
	timer := time.NewTimer(DefaultTimeout)
	defer timer.Stop()
	select {
	case ev := <-r.events:
		return ev
	case <-timer.C:
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
