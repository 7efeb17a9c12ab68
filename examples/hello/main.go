// Command hello serves Laf's first __websocket__ function: it greets each
// socket on connection and acknowledges every message.
//
//	go build -o hello ./examples/hello && ./hello -addr localhost:8080
//
// Open http://localhost:8080/ for a browser client, or connect any
// WebSocket client to ws://localhost:8080/__websocket__.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
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

	// On SIGINT or SIGTERM: stop taking requests, close every socket with
	// 1001 "going away", and wait for their close events.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // once shutdown starts, a second signal kills at once
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	slog.Info("listening", "url", "http://"+ln.Addr().String()+"/")
	if err := serve(ctx, ln, mux, ep); err != nil {
		slog.Error("serve", "err", err)
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
