// Command push is Laf's push demo: a client connects and learns its
// socket id; any other code can then push to it by id, here through a
// plain HTTP endpoint.
//
//	go build -o push ./examples/push && ./push -addr localhost:8080
//
// Endpoints:
//
//	GET  /__websocket__   the WebSocket; the first message is {"type":"welcome","id":"…"}
//	POST /push?id=ID      body is pushed to socket ID as a text message; 400 if it is
//	                      empty or not UTF-8, 404 if there is no socket ID
//	GET  /events?id=ID    the events the function saw for socket ID, as JSON
//	GET  /stats           the endpoint's counters, as JSON
//	GET  /                a browser client
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/lafgo/laf"
)

// event is what the function saw, kept for GET /events.
type event struct {
	Method string `json:"method"`
	Data   string `json:"data,omitempty"`
	Binary bool   `json:"binary,omitempty"`
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	Cause  string `json:"cause,omitempty"`
	Err    string `json:"err,omitempty"`
}

// app holds the push demo's state.
type app struct {
	ep  *laf.Endpoint
	log *eventLog
}

// function is the __websocket__ function.
func (a *app) function(ctx *laf.FunctionContext) error {
	ev := event{Method: ctx.Method, Binary: ctx.Params.IsBinary, Code: ctx.Params.Code, Reason: ctx.Params.Reason}
	if ctx.Method == laf.MethodMessage && !ctx.Params.IsBinary {
		ev.Data = ctx.Params.Data.String()
	}
	if ctx.Method == laf.MethodClose {
		ev.Cause = ctx.Params.Cause.String()
	}
	if ctx.Params.Err != nil {
		ev.Err = ctx.Params.Err.Error()
	}
	a.log.add(ctx.Socket.ID(), ev)

	switch ctx.Method {
	case laf.MethodConnection:
		// Laf's demo keeps a Map of sockets in cloud.shared; laf's
		// registry does that, so the Shared store just counts visitors.
		ctx.Shared.Update("visitors", func(old any, _ bool) (any, bool) {
			n, _ := old.(int)
			return n + 1, true
		})
		return ctx.Socket.SendJSON(map[string]string{"type": "welcome", "id": ctx.Socket.ID()})
	case laf.MethodMessage:
		return ctx.Socket.SendJSON(map[string]any{
			"type": "ack", "binary": ctx.Params.IsBinary, "size": len(ctx.Params.Data), "data": ev.Data,
		})
	}
	return nil
}

// push handles POST /push?id=ID.
func (a *app) push(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	case len(body) == 0:
		http.Error(w, "empty body: nothing to push", http.StatusBadRequest)
		return
	case !utf8.Valid(body):
		http.Error(w, "the body must be UTF-8 text", http.StatusBadRequest)
		return
	}
	err = a.ep.SendSocket(r.Context(), r.URL.Query().Get("id"), laf.Text(string(body)))
	switch {
	case errors.Is(err, laf.ErrNotFound):
		http.Error(w, "no socket with that id", http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		io.WriteString(w, "queued\n")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// newApp builds the demo's routes with the endpoint's options.
func newApp(opts ...laf.Option) (*app, http.Handler) {
	a := &app{log: newEventLog(1000)}
	a.ep = laf.Handler(a.function, opts...)
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", a.ep)
	mux.HandleFunc("POST /push", a.push)
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.log.get(r.URL.Query().Get("id")))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.ep.Stats())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	return a, mux
}

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	origins := flag.String("origins", "", "comma-separated origin patterns allowed to connect cross-origin")
	readLimit := flag.Int64("read-limit", laf.DefaultReadLimit, "largest incoming message in bytes")
	ping := flag.Duration("ping", laf.DefaultPingInterval, "keepalive ping interval (0 disables)")
	pong := flag.Duration("pong", laf.DefaultPongTimeout, "how long to wait for a pong")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := []laf.Option{
		laf.WithLogger(logger),
		laf.WithReadLimit(*readLimit),
		laf.WithPing(*ping, *pong),
	}
	if *origins != "" {
		opts = append(opts, laf.WithOriginPatterns(strings.Split(*origins, ",")...))
	}
	a, handler := newApp(opts...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // once shutdown starts, a second signal kills at once
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		logger.Error("listen", "err", err)
		os.Exit(1)
	}
	logger.Info("listening", "url", "http://"+ln.Addr().String()+"/")
	if err := serve(ctx, ln, handler, a.ep); err != nil {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
}

// serve serves h on ln until ctx is done, then shuts down: new upgrades
// get 503, every socket 1001, and serve returns once every close event
// has returned, or after 10 s.
func serve(ctx context.Context, ln net.Listener, h http.Handler, ep *laf.Endpoint) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// http.Server.Shutdown does not wait for WebSockets, and it first waits
	// for idle connections: start the endpoint's Shutdown from it, so that
	// sockets get 1001 at once, and wait for it, as it runs in a goroutine
	// of its own.
	epDone := make(chan error, 1)
	srv.RegisterOnShutdown(func() { epDone <- ep.Shutdown(ctx) })
	err := srv.Shutdown(ctx)
	return errors.Join(err, <-epDone)
}

// eventLog keeps the events of the last max sockets.
type eventLog struct {
	mu    sync.Mutex
	max   int
	order []string
	byID  map[string][]event
}

func newEventLog(max int) *eventLog {
	return &eventLog{max: max, byID: make(map[string][]event)}
}

func (l *eventLog) add(id string, ev event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.byID[id]; !ok {
		l.order = append(l.order, id)
		if len(l.order) > l.max {
			delete(l.byID, l.order[0])
			l.order = l.order[1:]
		}
	}
	l.byID[id] = append(l.byID[id], ev)
}

func (l *eventLog) get(id string) []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]event{}, l.byID[id]...)
}

const page = `<!doctype html>
<meta charset="utf-8">
<title>laf push</title>
<p>Your socket id: <code id="id">…</code></p>
<p>Push to yourself: <code id="curl"></code></p>
<pre id="log"></pre>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/__websocket__");
ws.onmessage = (m) => {
  try {
    const msg = JSON.parse(m.data);
    if (msg.type === "welcome") {
      document.getElementById("id").textContent = msg.id;
      document.getElementById("curl").textContent =
        "curl -d hello '" + location.origin + "/push?id=" + msg.id + "'";
      return;
    }
  } catch (e) {}
  log("received: " + m.data);
};
ws.onclose = (e) => log("closed " + e.code + " " + e.reason);
</script>
`
