// Command notify is a notification service: every browser tab of a user
// holds a socket, and any backend reaches all of them with one request.
//
//	go build -o notify ./examples/notify && ./notify -addr localhost:8080
//
// Open http://localhost:8080/?user=alice in a tab or two, then:
//
//	curl -d '{"title":"hello"}' 'http://localhost:8080/notify?user=alice'
//
// Endpoints:
//
//	GET  /ws?user=NAME      the socket of user NAME (401 without one); its first message is
//	                        {"type":"connected","user":NAME}, then what it missed since the
//	                        positions laf's browser client sent (laf_since), then laf's
//	                        {"laf":"recovered",...} notice, and {"type":"snapshot","user":NAME}
//	                        if it did not recover. Sending "join:ROOM" joins ROOM.
//	POST /notify?user=NAME  publishes the JSON body to NAME's room "user:NAME", with history:
//	                        every tab gets it, and a tab that reconnects within 2 minutes
//	                        gets what it missed, once (202 even if no tab is open now);
//	POST /notify?room=ROOM  or sends it to every socket in ROOM now (404 if none);
//	                        400 if the body is not JSON
//	POST /disconnect?user=NAME  closes every tab of NAME with 1012 "service restart", as a
//	                        deploy would; laf's browser client reconnects and catches up
//	GET  /stats             the endpoint's counters, as JSON
//	GET  /laf.js            laf's browser client
//	GET  /                  a page using it (?user=NAME&room=ROOM)
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
	"unicode/utf8"

	"github.com/lafgo/laf"
)

type app struct {
	ep  *laf.Endpoint
	mux *http.ServeMux
}

func newApp(opts ...laf.Option) *app {
	a := &app{mux: http.NewServeMux()}
	a.ep = laf.Handler(ws, append([]laf.Option{laf.WithAuth(identify), laf.WithHistory(100, 2*time.Minute)}, opts...)...)
	a.mux.Handle("GET /ws", a.ep)
	a.mux.Handle("GET /laf.js", laf.ClientScript())
	a.mux.HandleFunc("POST /notify", a.notify)
	a.mux.HandleFunc("POST /disconnect", a.disconnect)
	a.mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a.ep.Stats())
	})
	a.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	return a
}

// identify is the AuthFunc: the socket's identity is its user. A real
// service would take it from a session cookie, not the URL.
func identify(r *http.Request) (string, error) {
	if u := r.URL.Query().Get("user"); u != "" {
		return u, nil
	}
	return "", &laf.HTTPError{Status: http.StatusUnauthorized, Message: "connect to /ws?user=NAME"}
}

// ws is the endpoint's Func.
func ws(ctx *laf.FunctionContext) error {
	switch ctx.Method {
	case laf.MethodConnection:
		if err := ctx.Socket.SendJSON(map[string]string{"type": "connected", "user": ctx.Socket.Identity()}); err != nil {
			return err
		}
		// Join the user's room from where this tab left off, if it is
		// reconnecting: it gets what it missed, once. If that is gone (a
		// first visit, a restart, a tab away too long), tell the tab to
		// load its state afresh, as a real service would from its store.
		recovered, err := ctx.Socket.Resume(ctx, userRoom(ctx.Socket.Identity()))
		if err != nil || recovered {
			return err
		}
		return ctx.Socket.SendJSON(map[string]string{"type": "snapshot", "user": ctx.Socket.Identity()})
	case laf.MethodMessage:
		room, ok := strings.CutPrefix(ctx.Params.Data.String(), "join:")
		if !ok || room == "" {
			return ctx.Socket.SendJSON(map[string]string{"type": "error", "error": `send "join:ROOM"`})
		}
		ctx.Socket.Join(room)
		return ctx.Socket.SendJSON(map[string]string{"type": "joined", "room": room})
	}
	return nil
}

// userRoom is the room of user's tabs, where its notifications are
// published.
func userRoom(user string) string { return "user:" + user }

// notify handles POST /notify?user=NAME and POST /notify?room=ROOM.
func (a *app) notify(w http.ResponseWriter, r *http.Request) {
	user, room := r.URL.Query().Get("user"), r.URL.Query().Get("room")
	if (user == "") == (room == "") {
		http.Error(w, "notify ?user=NAME or ?room=ROOM", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		http.Error(w, "the body must be JSON", http.StatusBadRequest)
		return
	}
	if user != "" {
		// Published with a position and kept, so that a tab that is
		// reconnecting right now still gets it. The body goes into the
		// envelope as the JSON it is.
		m, _ := laf.JSON(json.RawMessage(body))
		if _, err := a.ep.Publish(r.Context(), userRoom(user), m); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// The body is handed over and sent as it is, to every socket in the
	// room now, without a copy.
	switch err := a.ep.SendRoom(r.Context(), room, laf.Owned(body, false)); {
	case errors.Is(err, laf.ErrNotFound):
		http.Error(w, "nobody to notify: "+room+" has no socket open", http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

// disconnect handles POST /disconnect?user=NAME.
func (a *app) disconnect(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	n := 0
	a.ep.Range(func(s *laf.Socket) bool {
		if s.Identity() == user && s.Close(1012, "service restart") == nil {
			n++
		}
		return true
	})
	if n == 0 {
		http.Error(w, "no tab of "+user+" is open", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a := newApp(laf.WithLogger(logger))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // once shutdown starts, a second signal kills at once
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		logger.Error("listen", "err", err)
		os.Exit(1)
	}
	logger.Info("listening", "url", "http://"+ln.Addr().String()+"/?user=alice")
	if err := serve(ctx, ln, a.mux, a.ep); err != nil {
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

const page = `<!doctype html>
<meta charset="utf-8">
<title>laf notify</title>
<p id="status">connecting…</p>
<p>Notify this user's tabs: <code id="curl"></code></p>
<ul id="log"></ul>
<script type="module">
import { LafSocket } from "/laf.js";
const q = new URLSearchParams(location.search);
const user = q.get("user") || "alice", room = q.get("room");
const ws = new LafSocket("/ws?user=" + encodeURIComponent(user));
window.lafSocket = ws;
window.notifications = [];
window.recoveries = [];
window.closes = [];
window.snapshots = 0;
const status = (s) => { document.getElementById("status").textContent = s; };
document.getElementById("curl").textContent =
  "curl -d '{\"title\":\"hello\"}' '" + location.origin + "/notify?user=" + encodeURIComponent(user) + "'";
const log = (text) => {
  const li = document.createElement("li");
  li.textContent = text;
  document.getElementById("log").prepend(li);
};
ws.addEventListener("open", () => { status("connected as " + user); if (room) ws.send("join:" + room); });
ws.addEventListener("close", (e) => {
  window.closes.push(e.detail);
  status("closed " + e.detail.code + (e.detail.reconnecting ? ", reconnecting" : ""));
});
ws.addEventListener("recovered", (e) => {
  window.recoveries.push(e.detail);
  log(e.detail.recovered ? "caught up" : "new history: " + (e.detail.pos || "none yet"));
});
ws.addEventListener("message", (e) => {
  if (e.detail.room) window.notifications.push({ pos: e.detail.pos, data: e.detail.data });
  if (e.detail.data.startsWith?.('{"type":"snapshot"')) window.snapshots++;
  log(typeof e.detail.data === "string" ? e.detail.data : JSON.stringify(e.detail.data));
});
</script>
`
