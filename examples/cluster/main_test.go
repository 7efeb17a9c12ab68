package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/nats-io/nats-server/v2/server"
)

const timeout = 10 * time.Second

// startNATS runs an in-process NATS server on a free loopback port.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(timeout) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// startNode runs one node on a loopback server, joined through the
// broker at brokerURL as main does it.
func startNode(t *testing.T, name, brokerURL string) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	b, closeBroker, err := dialBroker(brokerURL, "laf-example-test", name, logger)
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(name, laf.WithBroker(b), laf.WithLogger(logger), laf.WithHeartbeat(200*time.Millisecond))
	hs := httptest.NewServer(a.handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		hs.Close()
		a.ep.Shutdown(ctx)
		closeBroker()
	})
	return hs
}

// client is a WebSocket on one node.
type client struct {
	t    *testing.T
	ws   *websocket.Conn
	id   string
	node string
}

func dial(t *testing.T, hs *httptest.Server, query string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &client{t: t, ws: ws}
	w := c.read()
	if w.Type != "welcome" || w.ID == "" {
		t.Fatalf("first message %+v, want a welcome", w)
	}
	c.id, c.node = w.ID, w.Node
	return c
}

// read returns the next message, which may be app JSON or a raw push.
func (c *client) read() chatMsg {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m chatMsg
	if json.Unmarshal(data, &m) != nil {
		m = chatMsg{Type: "raw", Text: string(data)}
	}
	return m
}

func (c *client) expect(typ, text string) chatMsg {
	c.t.Helper()
	m := c.read()
	if m.Type != typ || m.Text != text {
		c.t.Fatalf("got %+v, want type %q text %q", m, typ, text)
	}
	return m
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func getPresence(t *testing.T, url string) presenceReply {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p presenceReply
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCluster runs three nodes on one in-process NATS server and checks
// that pushes, room chat and broadcasts cross nodes through any node's
// HTTP API, and that presence agrees everywhere.
func TestCluster(t *testing.T) {
	natsURL := startNATS(t)
	nodes := []*httptest.Server{
		startNode(t, "n1", natsURL), startNode(t, "n2", natsURL), startNode(t, "n3", natsURL),
	}
	alice := dial(t, nodes[0], "name=alice&room=lobby")
	bob := dial(t, nodes[1], "name=bob&room=lobby")
	if alice.node != "n1" || bob.node != "n2" {
		t.Fatalf("welcome nodes %q, %q", alice.node, bob.node)
	}
	eventually(t, "every node sees both sockets", func() bool {
		for _, n := range nodes {
			p := getPresence(t, n.URL+"/presence?id="+alice.id+"&room=lobby&user=bob")
			if p.Nodes != 3 || p.Sockets != 2 || !*p.Online || len(p.RoomMembers) != 2 || *p.UserSockets != 1 {
				return false
			}
		}
		return true
	})

	// A push by id through node 3, which holds neither socket.
	if code := post(t, nodes[2].URL+"/push?id="+alice.id, "hello alice"); code != http.StatusAccepted {
		t.Fatalf("push: HTTP %d", code)
	}
	alice.expect("raw", "hello alice")
	if code := post(t, nodes[2].URL+"/push?id=nobody", "x"); code != http.StatusNotFound {
		t.Fatalf("push to an unknown id: HTTP %d, want 404", code)
	}
	if code := post(t, nodes[0].URL+"/push?user=bob", "hello bob"); code != http.StatusAccepted {
		t.Fatalf("push to a user: HTTP %d", code)
	}
	bob.expect("raw", "hello bob")

	// Room chat from node 1 reaches bob on node 2, and alice herself.
	if err := writeText(alice.ws, "hi lobby"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if m := c.expect("chat", "hi lobby"); m.From != "alice" || m.Node != "n1" {
			t.Fatalf("chat %+v", m)
		}
	}

	// A broadcast through node 3 reaches both.
	if code := post(t, nodes[2].URL+"/broadcast", "to all"); code != http.StatusAccepted {
		t.Fatalf("broadcast: HTTP %d", code)
	}
	alice.expect("raw", "to all")
	bob.expect("raw", "to all")
}

func writeText(ws *websocket.Conn, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, []byte(text))
}

// TestDialBroker checks the URL schemes main accepts, without a server:
// neither client needs its broker to be up to start.
func TestDialBroker(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, u := range []string{"redis://127.0.0.1:1/0", "nats://127.0.0.1:1"} {
		b, closeFn, err := dialBroker(u, "laf", "test-node", logger)
		if err != nil || b == nil {
			t.Fatalf("%s: %v", u, err)
		}
		closeFn()
	}
	if _, _, err := dialBroker("amqp://user:secret@host", "laf", "test-node", logger); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unknown scheme: %v", err)
	}
}

// TestSignalDrains checks main's signal path: the node drains while it
// still serves HTTP. Its sockets get 1012 one after the other, across the
// window; meanwhile /readyz answers 503, an upgrade 503 with Retry-After,
// and a push still reaches the socket not yet closed; then serve returns.
// A browser's spare connection, open with no request, holds nothing back
// (B2: http.Server.Shutdown waits up to 5 s for those).
func TestSignalDrains(t *testing.T) {
	a := newApp("n1", laf.WithLogger(slog.New(slog.DiscardHandler)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := &http.Server{Addr: addr, Handler: a.handler()}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	const window = 4 * time.Second // the second close at 2 s: time for the checks between
	go func() {
		done <- serve(ctx, srv, a.ep, func() error { return nil }, window, timeout, slog.New(slog.DiscardHandler))
	}()
	eventually(t, "server up", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	base := "http://" + addr
	hs := &httptest.Server{URL: base}
	first, second := dial(t, hs, "name=a"), dial(t, hs, "name=b")
	// A browser's spare connection: open, no request.
	spare, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()

	stop()
	// The drain closes one socket at once and the other half a window
	// later, in either order.
	type end struct {
		c    *client
		code websocket.StatusCode
		got  []string
	}
	ends := make(chan end, 2)
	for _, c := range []*client{first, second} {
		go func() {
			e := end{c: c}
			for {
				_, data, err := c.ws.Read(context.Background())
				if err != nil {
					e.code = websocket.CloseStatus(err)
					ends <- e
					return
				}
				e.got = append(e.got, string(data))
			}
		}()
	}
	e := <-ends
	open := first
	if e.c == first {
		open = second
	}
	if e.code != 1012 {
		t.Fatalf("first close %d, want 1012", e.code)
	}
	if code := status(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d, want 503", code)
	}
	resp, err := http.Get(base + "/ws?name=late")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upgrade while draining: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := post(t, base+"/push?id="+open.id, "still here"); code != http.StatusAccepted {
		t.Fatalf("push to a socket not yet drained: %d", code)
	}
	e = <-ends
	if e.c != open || e.code != 1012 {
		t.Fatalf("second close %d, want 1012 on the other socket", e.code)
	}
	if len(e.got) != 1 || e.got[0] != "still here" {
		t.Fatalf("the socket not yet drained got %q, want the push before its close", e.got)
	}
	spare.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReadyAndBrokerErrors checks /readyz and /stats through an outage of
// NATS, and that /broadcast says what this node's sockets got rather than
// inviting a retry.
func TestReadyAndBrokerErrors(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(timeout) {
		t.Fatal("nats-server not ready")
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	n1, n2 := startNode(t, "n1", s.ClientURL()), startNode(t, "n2", s.ClientURL())
	alice := dial(t, n1, "name=alice")
	eventually(t, "ready", func() bool {
		return status(t, n1.URL+"/readyz") == http.StatusOK && stats(t, n1.URL).Nodes == 2 && stats(t, n2.URL).Nodes == 2
	})
	if st := stats(t, n1.URL); st.Broker != "up" {
		t.Fatalf("stats broker %q", st.Broker)
	}
	if code := post(t, n2.URL+"/push?id="+alice.id, "via n2"); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	alice.expect("raw", "via n2")

	s.Shutdown()
	s.WaitForShutdown()
	eventually(t, "not ready", func() bool { return status(t, n1.URL+"/readyz") == http.StatusServiceUnavailable })
	resp, err := http.Post(n1.URL+"/broadcast", "text/plain", strings.NewReader("during outage"))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Local int    `json:"local"`
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus || body.Local != 1 || body.Error == "" {
		t.Fatalf("broadcast during outage: %d %+v, want 207 with local 1", resp.StatusCode, body)
	}
	alice.expect("raw", "during outage")
	if code := post(t, n2.URL+"/push?id="+alice.id, "lost"); code != http.StatusServiceUnavailable {
		t.Fatalf("push during outage: %d, want 503 (the broker's error, not 404)", code)
	}
	if st := stats(t, n2.URL); st.Broker != "down" || st.Nodes != 2 {
		t.Fatalf("stats during outage: broker %q, nodes %d", st.Broker, st.Nodes)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// nodeStats is what the tests read of GET /stats.
type nodeStats struct {
	Broker string `json:"broker"`
	Nodes  int    `json:"nodes"`
}

func stats(t *testing.T, base string) nodeStats {
	t.Helper()
	resp, err := http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st nodeStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
