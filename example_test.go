package laf_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
)

// The seed's first function: greet on connection, acknowledge every
// message.
func ExampleHandler() {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		switch ctx.Method {
		case laf.MethodConnection:
			return ctx.Socket.Send("hi connection succeed")
		case laf.MethodMessage:
			return ctx.Socket.Send("I have received your message")
		}
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", ep)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/__websocket__", nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	_, greeting, _ := c.Read(ctx)
	c.Write(ctx, websocket.MessageText, []byte("hi"))
	_, ack, _ := c.Read(ctx)
	fmt.Println(string(greeting))
	fmt.Println(string(ack))
	// Output:
	// hi connection succeed
	// I have received your message
}

// Push to a socket by id from a plain HTTP handler, as Laf's demo does
// with cloud.shared.
func ExampleEndpoint_SendSocket() {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			return ctx.Socket.Send(ctx.Socket.ID()) // tell the client its id
		}
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", ep)
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := ep.SendSocket(r.Context(), r.URL.Query().Get("id"), laf.Text(string(body))); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	c, _, _ := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/__websocket__", nil)
	defer c.CloseNow()
	_, id, _ := c.Read(ctx)

	resp, _ := http.Post(srv.URL+"/push?id="+string(id), "text/plain", strings.NewReader("pushed"))
	resp.Body.Close()
	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg))

	resp, _ = http.Post(srv.URL+"/push?id=nobody", "text/plain", strings.NewReader("lost"))
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// pushed
	// 404 Not Found
}

// A *CloseError returned by the Func closes the socket with its code.
func ExampleCloseError() {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection && ctx.Request.URL.Query().Get("token") == "" {
			return &laf.CloseError{Code: 4401, Reason: "unauthorized"}
		}
		return nil
	})
	srv := httptest.NewServer(ep)
	defer srv.Close()

	ctx := context.Background()
	c, _, _ := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	defer c.CloseNow()
	_, _, err := c.Read(ctx)
	fmt.Println(websocket.CloseStatus(err))
	// Output:
	// StatusCode(4401)
}

// Rooms: every socket joins the room in its URL, and messages go to the
// room.
func ExampleSocket_Join() {
	var ep *laf.Endpoint
	ep = laf.Handler(func(ctx *laf.FunctionContext) error {
		room := ctx.Request.URL.Query().Get("room")
		switch ctx.Method {
		case laf.MethodConnection:
			ctx.Socket.Join(room)
		case laf.MethodMessage:
			return ep.SendRoom(ctx.Socket.Context(), room, laf.Text(ctx.Params.Data.String()))
		}
		return nil
	})
	srv := httptest.NewServer(ep)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	ctx := context.Background()
	alice, _, _ := websocket.Dial(ctx, url+"?room=red", nil)
	defer alice.CloseNow()
	bob, _, _ := websocket.Dial(ctx, url+"?room=red", nil)
	defer bob.CloseNow()
	for ep.RoomLen("red") < 2 {
		time.Sleep(time.Millisecond)
	}
	alice.Write(ctx, websocket.MessageText, []byte("hello red"))
	_, msg, _ := bob.Read(ctx)
	fmt.Println(string(msg))
	// Output:
	// hello red
}

// Stats as JSON on an HTTP endpoint, for a dashboard or a scraper.
func ExampleEndpoint_Stats() {
	ep := laf.Handler(func(*laf.FunctionContext) error { return nil })
	mux := http.NewServeMux()
	mux.Handle("/__websocket__", ep)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ep.Stats())
	})
	b, _ := json.Marshal(ep.Stats())
	fmt.Println(string(b))
	// Output:
	// {"live":0,"accepted":0,"refused":0,"cap_refused":0,"messages_in":0,"bytes_in":0,"messages_out":0,"bytes_out":0,"dropped":0,"replaced":0,"rate_dropped":0,"compressed":0,"slow_closed":0,"handler_errors":0,"panics":0,"publish_errors":0,"publish_unknown":0,"dropped_no_socket":0,"closes":{"peer":0,"abnormal":0,"server":0,"handler_error":0,"read_limit":0,"protocol":0,"slow_consumer":0,"ping_timeout":0,"idle":0,"lifetime":0,"shutdown":0,"policy":0}}
}

// Wire Shutdown to http.Server: the server stops taking requests, then
// every socket gets 1001 and its close event runs.
func ExampleEndpoint_Shutdown() {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodClose {
			fmt.Println("closed:", ctx.Params.Code, ctx.Params.Cause)
		}
		return nil
	})
	srv := httptest.NewServer(ep)
	ctx := context.Background()
	c, _, _ := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	defer c.CloseNow()
	go c.Read(ctx) // a live client answers the close handshake
	for ep.Len() == 0 {
		time.Sleep(time.Millisecond)
	}

	// http.Server.Shutdown does not wait for hijacked connections, so it
	// hands them to the Endpoint's Shutdown.
	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	srv.Config.RegisterOnShutdown(func() {
		defer close(done)
		ep.Shutdown(shutdownCtx)
	})
	srv.Config.Shutdown(shutdownCtx)
	<-done
	// Output:
	// closed: 1001 shutdown
}

// The Shared store with an atomic read-modify-write, as Laf's
// get-modify-set on cloud.shared should have been.
func ExampleShared_Update() {
	shared := laf.NewShared()
	for range 3 {
		shared.Update("visits", func(old any, _ bool) (any, bool) {
			n, _ := old.(int)
			return n + 1, true
		})
	}
	v, _ := shared.Get("visits")
	fmt.Println(v)
	// Output:
	// 3
}

// An echo that allocates nothing per message: the event and its Data are
// lent and reused, and Data goes back to its own socket without a copy.
// Anything kept beyond the call is copied first.
func ExampleWithLentData() {
	kept := make(chan string, 2)
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method != laf.MethodMessage {
			return nil
		}
		kept <- ctx.Params.Data.String() // a copy: Data itself is reused
		return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
	}, laf.WithLentData())
	srv := httptest.NewServer(ep)
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	for _, m := range []string{"one", "two"} {
		c.Write(ctx, websocket.MessageText, []byte(m))
		_, echo, _ := c.Read(ctx)
		fmt.Println(string(echo))
	}
	fmt.Println("kept:", <-kept, <-kept)
	// Output:
	// one
	// two
	// kept: one two
}
