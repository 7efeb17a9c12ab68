// Command chat is a multi-room chat: each socket joins the room named in
// its URL, and every message goes to everyone in that room. It shows
// rooms, room sends, identities from an auth hook, stats, and graceful
// shutdown.
//
//	go run ./examples/chat -addr localhost:8080
//
// Open http://localhost:8080/?room=lobby&name=alice in two tabs.
//
// Protocol: connect to /__websocket__?room=R&name=N. A text message that
// is a JSON object is relayed to the room as
// {"type":"json","from":N,"data":OBJECT}; any other text as
// {"type":"text","from":N,"text":TEXT}. Joins and leaves are announced as
// {"type":"join"|"leave","from":N}. "/join R2" moves the socket to room R2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lafgo/laf"
)

type chatMsg struct {
	Type string          `json:"type"`
	From string          `json:"from"`
	Room string          `json:"room,omitempty"`
	Text string          `json:"text,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// room returns the room the socket is in; chat keeps one per socket.
func room(s *laf.Socket) string {
	if r := s.Rooms(); len(r) > 0 {
		return r[0]
	}
	return ""
}

func chat(ep func() *laf.Endpoint) laf.Func {
	announce := func(ctx *laf.FunctionContext, m chatMsg) error {
		msg, err := laf.JSON(m)
		if err != nil {
			return err
		}
		return ep().SendRoom(ctx.Socket.Context(), m.Room, msg)
	}
	return func(ctx *laf.FunctionContext) error {
		name := ctx.Socket.Identity()
		switch ctx.Method {
		case laf.MethodConnection:
			r := ctx.Request.URL.Query().Get("room")
			if r == "" {
				r = "lobby"
			}
			ctx.Socket.Join(r)
			return announce(ctx, chatMsg{Type: "join", From: name, Room: r})
		case laf.MethodMessage:
			text := ctx.Params.Data.String()
			if next, ok := strings.CutPrefix(text, "/join "); ok {
				old := room(ctx.Socket)
				ctx.Socket.Leave(old)
				if err := announce(ctx, chatMsg{Type: "leave", From: name, Room: old}); err != nil {
					return err
				}
				ctx.Socket.Join(next)
				return announce(ctx, chatMsg{Type: "join", From: name, Room: next})
			}
			m := chatMsg{Type: "text", From: name, Room: room(ctx.Socket), Text: text}
			if ctx.Params.IsBinary {
				m.Text = ""
				m.Type = "binary"
			} else if json.Valid(ctx.Params.Data) && strings.HasPrefix(strings.TrimSpace(text), "{") {
				m.Type, m.Text, m.Data = "json", "", json.RawMessage(ctx.Params.Data)
			}
			return announce(ctx, m)
		case laf.MethodClose:
			// The socket has left its rooms by now; tell the room it was in.
			if r := ctx.Request.URL.Query().Get("room"); r != "" {
				m, _ := laf.JSON(chatMsg{Type: "leave", From: name, Room: r})
				ep().SendRoom(context.Background(), r, m)
			}
		}
		return nil
	}
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

func newChat(opts ...laf.Option) (*laf.Endpoint, http.Handler) {
	var ep *laf.Endpoint
	ep = laf.Handler(chat(func() *laf.Endpoint { return ep }), append([]laf.Option{laf.WithAuth(identify)}, opts...)...)
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", ep)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ep.Stats())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	return ep, mux
}

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	origins := flag.String("origins", "", "comma-separated origin patterns allowed to connect cross-origin")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := []laf.Option{laf.WithLogger(logger)}
	if *origins != "" {
		opts = append(opts, laf.WithOriginPatterns(strings.Split(*origins, ",")...))
	}
	ep, handler := newChat(opts...)
	srv := &http.Server{Addr: *addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	// http.Server.Shutdown does not wait for hijacked connections, so the
	// endpoint's own Shutdown sends 1001 and waits for the close events.
	srv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ep.Shutdown(ctx)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	logger.Info("listening", "url", "http://"+*addr+"/?room=lobby&name=alice")
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
	<-ctx.Done()
	// RegisterOnShutdown's function runs in its own goroutine: wait for it.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep.Shutdown(shutdownCtx)
}
