// Command chat is a multi-room chat: each socket joins the room named in
// its URL, and every message goes to everyone in that room. It shows
// rooms, room sends, identities from an auth hook, per-socket values,
// stats, and graceful shutdown.
//
//	go build -o chat ./examples/chat && ./chat -addr localhost:8080
//
// Open http://localhost:8080/?room=lobby&name=alice in two tabs.
//
// Protocol: connect to /__websocket__?room=R&name=N. A text message that
// is a JSON object is relayed to the room as
// {"type":"json","from":N,"room":R,"data":OBJECT}; any other text as
// {"type":"text","from":N,"room":R,"text":TEXT}. Joins and leaves are
// announced to the room as {"type":"join"|"leave","from":N,"room":R}.
// "/join R2" moves the socket to room R2: R hears that it left, R2 that
// it joined. When the socket closes, the room it was in hears that it
// left. Every message a socket gets names the room it is in.
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
	"syscall"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/lafprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type chatMsg struct {
	Type string          `json:"type"`
	From string          `json:"from"`
	Room string          `json:"room,omitempty"`
	Text string          `json:"text,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// chat is the endpoint's Func. Each socket is in one room at a time,
// which it keeps in its "room" value.
func chat(ctx *laf.FunctionContext) error {
	name := ctx.Socket.Identity()
	switch ctx.Method {
	case laf.MethodConnection:
		r := ctx.Request.URL.Query().Get("room")
		if r == "" {
			r = "lobby"
		}
		return join(ctx, r)
	case laf.MethodMessage:
		text := ctx.Params.Data.String()
		current := room(ctx.Socket)
		if next, ok := strings.CutPrefix(text, "/join "); ok && !ctx.Params.IsBinary {
			if next = strings.TrimSpace(next); next == "" || next == current {
				return nil
			}
			ctx.Socket.Leave(current)
			if err := announce(ctx, chatMsg{Type: "leave", From: name, Room: current}); err != nil {
				return err
			}
			return join(ctx, next)
		}
		m := chatMsg{Type: "text", From: name, Room: current, Text: text}
		if ctx.Params.IsBinary {
			m.Type, m.Text = "binary", ""
		} else if json.Valid(ctx.Params.Data) && strings.HasPrefix(strings.TrimSpace(text), "{") {
			m.Type, m.Text, m.Data = "json", "", json.RawMessage(ctx.Params.Data)
		}
		return announce(ctx, m)
	case laf.MethodClose:
		// The socket has left its rooms by now; Rooms still names them.
		for _, r := range ctx.Socket.Rooms() {
			if err := announce(ctx, chatMsg{Type: "leave", From: name, Room: r}); err != nil {
				return err
			}
		}
	}
	return nil
}

// join puts the socket in room r and tells r, the socket included.
func join(ctx *laf.FunctionContext, r string) error {
	ctx.Socket.Join(r)
	ctx.Socket.Set("room", r)
	return announce(ctx, chatMsg{Type: "join", From: ctx.Socket.Identity(), Room: r})
}

// room returns the room the socket is in.
func room(s *laf.Socket) string {
	v, _ := s.Get("room")
	r, _ := v.(string)
	return r
}

// announce sends m to everyone in m.Room. A room nobody is left in is not
// an error.
func announce(ctx *laf.FunctionContext, m chatMsg) error {
	msg, err := laf.JSON(m)
	if err != nil {
		return err
	}
	if err := ctx.Endpoint.SendRoom(ctx, m.Room, msg); err != nil && !errors.Is(err, laf.ErrNotFound) {
		return err
	}
	return nil
}

// identify takes the user's name from the URL: a real app would check a
// session cookie or token here and refuse with 401.
func identify(r *http.Request) (string, error) {
	name := r.URL.Query().Get("name")
	if name == "" || len(name) > 32 {
		return "", &laf.HTTPError{Status: http.StatusBadRequest, Message: "name must be 1 to 32 bytes"}
	}
	return name, nil
}

// newChat serves fn (chat, or a test's wrapper of it) with the chat's
// routes.
func newChat(fn laf.Func, opts ...laf.Option) (*laf.Endpoint, http.Handler) {
	ep := laf.Handler(fn, append([]laf.Option{laf.WithAuth(identify)}, opts...)...)
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", ep)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ep.Stats())
	})
	// The same counters for Prometheus, on a registry of the chat's own.
	reg := prometheus.NewRegistry()
	reg.MustRegister(lafprom.NewCollector(ep))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	return ep, mux
}

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	origins := flag.String("origins", "", "comma-separated origin patterns allowed to connect cross-origin")
	compress := flag.Bool("compress", false, "negotiate permessage-deflate and compress messages of 512 bytes or more")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := []laf.Option{laf.WithLogger(logger)}
	if *origins != "" {
		opts = append(opts, laf.WithOriginPatterns(strings.Split(*origins, ",")...))
	}
	if *compress {
		opts = append(opts, laf.WithCompression(0))
	}
	ep, handler := newChat(chat, opts...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // once shutdown starts, a second signal kills at once
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		logger.Error("listen", "err", err)
		os.Exit(1)
	}
	logger.Info("listening", "url", "http://"+ln.Addr().String()+"/?room=lobby&name=alice")
	if err := serve(ctx, ln, handler, ep); err != nil {
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
