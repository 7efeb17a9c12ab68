// Command cluster is one node of a laf cluster: run several behind a
// load balancer, joined by Redis or NATS, and a push or a chat message
// reaches its socket whichever node holds it and whichever node took the
// request. No sticky sessions are needed.
//
// # Running three nodes on one broker
//
// With Redis (apt-get install redis-server, or docker run -p 6379:6379 redis):
//
//	go run . -addr 127.0.0.1:8081 -broker redis://127.0.0.1:6379 &
//	go run . -addr 127.0.0.1:8082 -broker redis://127.0.0.1:6379 &
//	go run . -addr 127.0.0.1:8083 -broker redis://127.0.0.1:6379 &
//
// or with NATS (nats-server -a 127.0.0.1 -p 4222), -broker nats://127.0.0.1:4222.
// Then connect a socket to one node and push to it through another:
//
//	websocat 'ws://127.0.0.1:8081/ws?name=alice&room=lobby'   # prints {"type":"welcome","id":"ID",...}
//	curl -d 'hello' 'http://127.0.0.1:8083/push?id=ID'
//	curl -d 'to everyone' http://127.0.0.1:8082/broadcast
//	curl http://127.0.0.1:8082/presence                        # {"node":...,"nodes":3,"sockets":1,...}
//
// A socket's id names its node, so a push by id goes to that node alone;
// a message to a room goes only to the nodes with members. A node that
// stops says goodbye and leaves presence at once, for good; a push to a
// socket of a node that was killed is refused (404) as soon as the broker
// sees its connection close, and a node that vanishes without a word
// leaves presence within three heartbeats (-heartbeat, 5 s by default).
// If the broker goes away, each node keeps serving its own sockets, sends
// to other nodes answer 503 with the broker's error (and count in /stats'
// publish_errors), /readyz answers 503, presence keeps the other nodes,
// and the nodes reconnect by themselves when it is back.
//
// # Behind a load balancer
//
// Any balancer that passes WebSocket upgrades through will do, with plain
// round robin. An nginx example, which TestNginx runs with nginx and the
// Origin header a browser sends:
//
//	upstream laf {
//	    server 127.0.0.1:8081 max_fails=1 fail_timeout=5s;
//	    server 127.0.0.1:8082 max_fails=1 fail_timeout=5s;
//	    server 127.0.0.1:8083 max_fails=1 fail_timeout=5s;
//	    # no ip_hash or sticky: a push may land on any node
//	}
//	map $http_upgrade $connection_upgrade {
//	    default upgrade;
//	    ''      close;
//	}
//	server {
//	    listen 8080;
//	    location / {
//	        proxy_pass http://laf;
//	        proxy_http_version 1.1;
//	        proxy_set_header Upgrade $http_upgrade;
//	        proxy_set_header Connection $connection_upgrade;
//	        # $http_host, not $host: $host drops the port, and the
//	        # browser's Origin (http://HOST:8080) then fails the same-origin
//	        # check with 403.
//	        proxy_set_header Host $http_host;
//	        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//	        proxy_read_timeout 120s;  # above laf's 30 s ping interval
//	        proxy_next_upstream error timeout http_503;
//	    }
//	}
//
// Open-source nginx checks upstreams passively (max_fails above, and
// proxy_next_upstream retries a 503 from a node that is shutting down);
// nginx Plus or another balancer can probe GET /readyz, which answers 503
// while the node is not connected to its cluster, and GET /healthz, which
// answers 200 while the process serves. If the page is served from
// another origin than the one the browser connects to, list it with
// -origin. A refused origin is logged at level debug (-log-level debug).
//
// Sockets then spread over the nodes, and POST /push on :8080 reaches a
// socket held by any node: the node that takes the request publishes the
// push on the broker, and the node that holds the socket writes it.
// Sticky sessions matter only for state a node keeps in memory per
// client, which this app has none of.
//
// # Endpoints
//
//	GET  /ws?name=N&room=R       the WebSocket; first message {"type":"welcome","id":ID,"node":NODE,"room":R}.
//	                             Text "/join R2" moves to room R2; any other text goes to the room as
//	                             {"type":"chat","from":N,"room":R,"text":TEXT,"node":NODE}.
//	POST /push?id=ID             the body goes to socket ID as a text message; 404 if no node has it.
//	POST /push?user=N            ... to every socket of user N; POST /push?room=R to room R.
//	POST /broadcast              the body goes to every socket on every node.
//	GET  /presence[?id=&room=&user=]  the cluster's presence, as JSON.
//	GET  /stats                  this node's counters, as JSON, with "broker" ("up", "down", "starting") and "nodes".
//	GET  /healthz                200 while the process serves (liveness).
//	GET  /readyz                 200 while the node is connected to its cluster, else 503 and why (readiness).
//
// POST /broadcast answers 202 once the broker took it; if the broker
// refused it after this node's sockets got it, 207 with
// {"local":N,"error":...}: do not retry it, or they get it twice.
//
// # Flags
//
//	-addr, -broker, -channel, -node, -heartbeat   as above
//	-origin PATTERN       allow cross-origin sockets from PATTERN (repeatable; host or scheme://host, as laf.WithOriginPatterns)
//	-log-level LEVEL      debug, info (default), warn or error
//	-shutdown-timeout D   how long SIGTERM waits for sockets to close (default 10s)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lafgo/laf"
)

// originFlag collects -origin patterns.
type originFlag []string

func (o *originFlag) String() string     { return strings.Join(*o, ",") }
func (o *originFlag) Set(v string) error { *o = append(*o, v); return nil }

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	brokerURL := flag.String("broker", "", "redis://HOST:PORT[/DB] or nats://HOST:PORT; empty runs a single node")
	channel := flag.String("channel", "laf", "Redis channel or NATS subject shared by the cluster")
	node := flag.String("node", "", "name of this node in welcome and chat messages (default: the listen address)")
	heartbeat := flag.Duration("heartbeat", laf.DefaultHeartbeat, "presence heartbeat; must be the same on every node")
	var origins originFlag
	flag.Var(&origins, "origin", "allow cross-origin sockets from this host or scheme://host pattern (repeatable)")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	shutdownTimeout := flag.Duration("shutdown-timeout", 10*time.Second, "how long SIGTERM waits for sockets to close")
	flag.Parse()
	if *node == "" {
		*node = *addr
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: -log-level:", err)
		os.Exit(2)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := []laf.Option{laf.WithLogger(logger), laf.WithHeartbeat(*heartbeat)}
	if len(origins) > 0 {
		opts = append(opts, laf.WithOriginPatterns(origins...))
	}
	closeBroker := func() error { return nil }
	if *brokerURL != "" {
		b, closeFn, err := dialBroker(*brokerURL, *channel, *node, logger)
		if err != nil {
			logger.Error("broker", "err", err)
			os.Exit(2)
		}
		opts = append(opts, laf.WithBroker(b))
		closeBroker = closeFn
	}

	a := newApp(*node, opts...)
	srv := &http.Server{Addr: *addr, Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("listening", "node", *node, "url", "http://"+*addr+"/", "broker", redact(*brokerURL))
	if err := serve(ctx, srv, a.ep, closeBroker, *shutdownTimeout, logger); err != nil {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
}

// serve runs srv until ctx is done, then shuts down in the order the
// Endpoint's doc asks for: the Endpoint's Shutdown starts from the
// server's (RegisterOnShutdown), so every socket gets its 1001 at once
// rather than after idle keep-alive connections time out; then the node
// leaves the cluster, and last the broker's connection closes.
func serve(ctx context.Context, srv *http.Server, ep *laf.Endpoint, closeBroker func() error, timeout time.Duration, logger *slog.Logger) error {
	epDone := make(chan struct{})
	var shutdownCtx context.Context
	var cancel context.CancelFunc = func() {}
	srv.RegisterOnShutdown(func() {
		defer close(epDone)
		if err := ep.Shutdown(shutdownCtx); err != nil {
			logger.Warn("sockets still open at the shutdown timeout; dropped", "err", err)
		}
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ListenAndServe() }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", timeout)
	shutdownCtx, cancel = context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	<-epDone
	closeBroker()
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
