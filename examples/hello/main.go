// Command hello serves Laf's first __websocket__ function: it greets each
// socket on connection and acknowledges every message.
//
//	go run ./examples/hello -addr localhost:8080
//
// Open http://localhost:8080/ for a browser client, or connect any
// WebSocket client to ws://localhost:8080/__websocket__.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lafgo/laf"
)

// hello is the seed's function, line for line.
func hello(ctx *laf.FunctionContext) error {
	switch ctx.Method {
	case laf.MethodConnection:
		return ctx.Socket.Send("hi connection succeed")
	case laf.MethodMessage:
		slog.Info("message", "data", ctx.Params.Data.String())
		return ctx.Socket.Send("I have received your message")
	}
	return nil
}

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	origins := flag.String("origins", "", "comma-separated origin patterns allowed to connect cross-origin")
	ping := flag.Duration("ping", laf.DefaultPingInterval, "keepalive ping interval (0 disables)")
	flag.Parse()

	opts := []laf.Option{
		laf.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
		laf.WithPing(*ping, laf.DefaultPongTimeout),
	}
	if *origins != "" {
		opts = append(opts, laf.WithOriginPatterns(strings.Split(*origins, ",")...))
	}
	ep := laf.Handler(hello, opts...)
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", ep)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})
	slog.Info("listening", "url", "http://"+*addr+"/")
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// http.Server.Shutdown does not close WebSockets, and it can wait
	// seconds for HTTP connections a browser opened but never used: start
	// the endpoint's shutdown with it, so sockets get 1001 at once.
	srv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ep.Shutdown(ctx)
	})

	// On SIGINT or SIGTERM: stop taking requests, close every socket with
	// 1001 "going away", and wait for their close events.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case err := <-served:
		slog.Error("serve", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	ep.Shutdown(shutdownCtx) // waits for the close events
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		slog.Error("serve", "err", err)
	}
}

// page runs the seed's browser client verbatim, with only the URL changed,
// and shows what it logs.
const page = `<!doctype html>
<meta charset="utf-8">
<title>laf hello</title>
<pre id="log"></pre>
<script>
const logged = [];
const show = (...args) => {
  logged.push(args.join(" "));
  document.getElementById("log").textContent = logged.join("\n");
};
const console = { log: show };
window.logged = logged;
const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/__websocket__";

const wss = new WebSocket(url);
wss.onopen = (socket) => { console.log("connected"); wss.send("hi"); };
wss.onmessage = (res) => { console.log("Received a new message..."); console.log(res.data); };
wss.onclose = () => { console.log("closed"); };
</script>
`
