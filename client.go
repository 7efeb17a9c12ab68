package laf

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

//go:embed client/laf.js
var clientScript []byte

// ClientScript returns an http.Handler that serves laf's browser client,
// an ES module with no dependencies (client/laf.js): a WebSocket that
// reconnects with exponential backoff and full jitter, remembers the
// position of the last published message it got from each room, sends
// those positions when it reconnects (see Since), and tells the page,
// per room, whether the server recovered what it missed (see
// Socket.Resume). Mount it where the page imports it from:
//
//	mux.Handle("GET /laf.js", laf.ClientScript())
//
//	import { LafSocket } from '/laf.js';
//	const ws = new LafSocket('/ws');
//	ws.addEventListener('message', (e) => show(e.detail.data));
func ClientScript() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "laf.js", time.Time{}, bytes.NewReader(clientScript))
	})
}

// SinceParam is the query parameter in which the browser client sends,
// when it reconnects, the position of the last published message it got
// from each room: a JSON object from room to "EPOCH:OFFSET".
const SinceParam = "laf_since"

// Since returns the positions the browser client sent in r's SinceParam,
// by room: none if it sent none, an error if they do not parse.
func Since(r *http.Request) (map[string]Position, error) {
	raw := r.URL.Query().Get(SinceParam)
	if raw == "" {
		return nil, nil
	}
	var byRoom map[string]string
	if err := json.Unmarshal([]byte(raw), &byRoom); err != nil {
		return nil, fmt.Errorf("laf: %s is not a JSON object of positions: %w", SinceParam, err)
	}
	out := make(map[string]Position, len(byRoom))
	for room, s := range byRoom {
		p, err := ParsePosition(s)
		if err != nil {
			return nil, err
		}
		out[room] = p
	}
	return out, nil
}

// Resume joins room from the position the browser client says it last
// got from it (see Since; the zero Position if it sent none), as
// JoinSince does, and then tells the client whether it recovered, in a
// text message
//
//	{"laf": "recovered", "room": ROOM, "recovered": BOOL, "pos": "EPOCH:OFFSET"}
//
// where pos is the room's position once the socket has joined ("" if
// nothing was ever published to it). The message follows the recovered
// messages; the client emits it as its "recovered" event. When recovered
// is false, send the socket a snapshot of the room's state: the client
// then goes on from pos.
func (s *Socket) Resume(ctx context.Context, room string) (recovered bool, err error) {
	since, err := Since(s.req)
	if err != nil {
		return false, err
	}
	// The notice is queued before any later message of the room, so that
	// the position it carries never follows a newer one.
	recovered, _, err = s.joinSince(ctx, room, since[room], func(recovered bool, at Position) error {
		notice, err := json.Marshal(struct {
			Laf       string `json:"laf"`
			Room      string `json:"room"`
			Recovered bool   `json:"recovered"`
			Pos       string `json:"pos"`
		}{"recovered", room, recovered, at.String()})
		if err != nil {
			return err
		}
		return s.out.enqueue(Message{data: notice, json: true})
	})
	return recovered, err
}
