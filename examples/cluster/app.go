package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/lafgo/laf"
)

// app is one node of the cluster example.
type app struct {
	node string
	ep   *laf.Endpoint
}

// chatMsg is every message the app sends to sockets as JSON.
type chatMsg struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	From string `json:"from,omitempty"`
	Room string `json:"room,omitempty"`
	Text string `json:"text,omitempty"`
	Node string `json:"node"`
}

// newApp returns a node named node, with the Endpoint's options. The
// name is the node's in laf's logs and Stats too (laf.WithNodeName), and
// its broker connection's (dialBroker).
func newApp(node string, opts ...laf.Option) *app {
	a := &app{node: node}
	a.ep = laf.Handler(a.function, append([]laf.Option{laf.WithAuth(identify), laf.WithNodeName(node)}, opts...)...)
	return a
}

// identify takes the user's name from the URL: a real app would check a
// session cookie or token here. The name is the socket's identity, which
// POST /push?user= sends to on every node.
func identify(r *http.Request) (string, error) {
	name := r.URL.Query().Get("name")
	if len(name) > 32 {
		return "", &laf.HTTPError{Status: http.StatusBadRequest, Message: "name is over 32 bytes"}
	}
	return name, nil
}

// function is the __websocket__ function: welcome, then room chat.
func (a *app) function(ctx *laf.FunctionContext) error {
	s := ctx.Socket
	switch ctx.Method {
	case laf.MethodConnection:
		room := ctx.Request.URL.Query().Get("room")
		if room == "" {
			room = "lobby"
		}
		s.Join(room)
		return s.SendJSON(chatMsg{Type: "welcome", ID: s.ID(), Room: room, Node: a.node})
	case laf.MethodMessage:
		rooms := s.Rooms()
		if len(rooms) == 0 {
			return nil
		}
		text := ctx.Params.Data.String()
		if next, ok := strings.CutPrefix(text, "/join "); ok && next != "" {
			s.Leave(rooms[0])
			s.Join(next)
			return s.SendJSON(chatMsg{Type: "joined", Room: next, Node: a.node})
		}
		m, err := laf.JSON(chatMsg{Type: "chat", From: s.Identity(), Room: rooms[0], Text: text, Node: a.node})
		if err != nil {
			return err
		}
		// SendRoom reaches the room's members on every node; a broker
		// error only means other nodes missed it, so keep the socket.
		if err := a.ep.SendRoom(s.Context(), rooms[0], m); err != nil {
			return s.SendJSON(chatMsg{Type: "error", Text: err.Error(), Node: a.node})
		}
	}
	return nil
}

// handler returns the node's routes.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", a.ep)
	mux.HandleFunc("POST /push", a.push)
	mux.HandleFunc("POST /broadcast", a.broadcast)
	mux.HandleFunc("GET /presence", a.presence)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.ep.Stats())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.ep.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// readBody reads a request body of up to 64 KiB.
func readBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return "", false
	}
	return string(body), true
}

// push handles POST /push?id=ID, ?user=NAME or ?room=ROOM.
func (a *app) push(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	q, m := r.URL.Query(), laf.Text(body)
	var err error
	switch {
	case q.Has("id"):
		err = a.ep.SendSocket(r.Context(), q.Get("id"), m)
	case q.Has("user"):
		err = a.ep.SendIdentity(r.Context(), q.Get("user"), m)
	case q.Has("room"):
		err = a.ep.SendRoom(r.Context(), q.Get("room"), m)
	default:
		http.Error(w, "want ?id=, ?user= or ?room=", http.StatusBadRequest)
		return
	}
	reply(w, err)
}

// broadcast handles POST /broadcast.
func (a *app) broadcast(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	reply(w, a.ep.Broadcast(r.Context(), laf.Text(body)))
}

// reply answers a send with one of its outcomes:
//
//   - 202 once the broker took it for the other nodes;
//   - 404 if no node has the socket, room or user;
//   - 503 when nothing left for the other nodes (the broker refused it,
//     was not connected, or had no subscriber for it), so that a retry is
//     safe;
//   - 504 when the broker timeout passed after the send may have left: it
//     may arrive or not, now or late, and a retry may deliver it twice;
//   - 207 with {"local":N,"error":...,"outcome":"not delivered"|"unknown"}
//     when this node's sockets got it but the broker failed it for the
//     others, so that the caller does not retry (they would get it twice).
func reply(w http.ResponseWriter, err error) {
	var be *laf.BrokerError
	var ue *laf.OutcomeUnknownError
	local, outcome := 0, "not delivered"
	switch {
	case errors.As(err, &ue):
		local, outcome = ue.Local, "unknown"
	case errors.As(err, &be):
		local = be.Local
	}
	switch {
	case local > 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMultiStatus)
		json.NewEncoder(w).Encode(struct {
			Local   int    `json:"local"`
			Outcome string `json:"outcome"`
			Error   string `json:"error"`
		}{local, outcome, err.Error()})
	case errors.Is(err, laf.ErrNotFound):
		http.Error(w, "no socket with that id on any node", http.StatusNotFound)
	case errors.Is(err, laf.ErrOutcomeUnknown):
		http.Error(w, "outcome unknown, a retry may deliver it twice: "+err.Error(), http.StatusGatewayTimeout)
	case err != nil:
		http.Error(w, "not delivered, a retry is safe: "+err.Error(), http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "queued\n")
	}
}

// presenceReply is GET /presence's answer. Online, RoomMembers and
// UserSockets are set when the matching query parameter is.
type presenceReply struct {
	Node        string   `json:"node"`
	Nodes       int      `json:"nodes"`
	Sockets     int      `json:"sockets"`
	Local       int      `json:"local"`
	Online      *bool    `json:"online,omitempty"`
	RoomMembers []string `json:"room_members,omitzero"`
	UserSockets *int     `json:"user_sockets,omitempty"`
}

// presence handles GET /presence[?id=ID][&room=R][&user=N].
func (a *app) presence(w http.ResponseWriter, r *http.Request) {
	p, q := a.ep.Presence(), r.URL.Query()
	out := presenceReply{Node: a.node, Nodes: p.Nodes(), Sockets: p.Count(), Local: a.ep.Len()}
	if q.Has("id") {
		online := p.Online(q.Get("id"))
		out.Online = &online
	}
	if q.Has("room") {
		out.RoomMembers = p.RoomMembers(q.Get("room"))
		if out.RoomMembers == nil {
			out.RoomMembers = []string{}
		}
	}
	if q.Has("user") {
		n := p.IdentitySockets(q.Get("user"))
		out.UserSockets = &n
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
