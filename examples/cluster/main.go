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
// A node that stops says goodbye and leaves presence at once; one that
// dies leaves it within three heartbeats (-heartbeat, 5 s by default).
// If the broker goes away, each node keeps serving its own sockets, sends
// to other nodes fail (and count in /stats' publish_errors), and the
// nodes reconnect by themselves when it is back.
//
// # Behind a load balancer
//
// Any balancer that passes WebSocket upgrades through will do, with plain
// round robin. An nginx example:
//
//	upstream laf {
//	    server 127.0.0.1:8081;
//	    server 127.0.0.1:8082;
//	    server 127.0.0.1:8083;
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
//	        proxy_set_header Host $host;
//	        proxy_read_timeout 120s;  # above laf's 30 s ping interval
//	    }
//	}
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
//	GET  /stats                  this node's counters, as JSON.
//	GET  /healthz                200 while serving, for the balancer's checks.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lafgo/laf"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	brokerURL := flag.String("broker", "", "redis://HOST:PORT[/DB] or nats://HOST:PORT; empty runs a single node")
	channel := flag.String("channel", "laf", "Redis channel or NATS subject shared by the cluster")
	node := flag.String("node", "", "name of this node in welcome and chat messages (default: the listen address)")
	heartbeat := flag.Duration("heartbeat", laf.DefaultHeartbeat, "presence heartbeat; must be the same on every node")
	flag.Parse()
	if *node == "" {
		*node = *addr
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := []laf.Option{laf.WithLogger(logger), laf.WithHeartbeat(*heartbeat)}
	closeBroker := func() error { return nil }
	if *brokerURL != "" {
		b, closeFn, err := dialBroker(*brokerURL, *channel, logger)
		if err != nil {
			logger.Error("broker", "err", err)
			os.Exit(2)
		}
		opts = append(opts, laf.WithBroker(b))
		closeBroker = closeFn
	}

	a := newApp(*node, opts...)
	srv := &http.Server{Addr: *addr, Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}

	// On SIGINT or SIGTERM: stop taking requests, close every socket with
	// 1001, leave the cluster, then close the broker's connection.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdownDone := make(chan struct{})
	go func() {
		defer close(shutdownDone)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
		a.ep.Shutdown(shutdownCtx)
		closeBroker()
	}()

	logger.Info("listening", "node", *node, "url", "http://"+*addr+"/", "broker", redact(*brokerURL))
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
	<-shutdownDone
}
