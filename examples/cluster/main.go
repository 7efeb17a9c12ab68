// Command cluster is one node of a laf cluster: run several behind a
// load balancer, joined by Redis or NATS, and a push or a chat message
// reaches its socket whichever node holds it and whichever node took the
// request. No sticky sessions are needed. CLUSTER.md, at the top of the
// repository, is the operator's guide: broker, proxy, deploys, faults,
// capacity and what clients must do.
//
// # Running three nodes on one broker
//
// With Redis (apt-get install redis-server, or docker run -p 6379:6379 redis):
//
//	go build -o cluster .   # built, not go run: a signal to go run does not reach the node
//	./cluster -addr 127.0.0.1:8081 -broker redis://127.0.0.1:6379 &
//	./cluster -addr 127.0.0.1:8082 -broker redis://127.0.0.1:6379 &
//	./cluster -addr 127.0.0.1:8083 -broker redis://127.0.0.1:6379 &
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
// stops says goodbye and leaves presence at once, for good; a node that
// vanishes without a word leaves presence within three heartbeats
// (-heartbeat, 5 s by default). If the broker goes away or hangs, each
// node keeps serving its own sockets, /readyz answers 503 with the
// current reason, presence keeps the other nodes, and the nodes
// reconnect by themselves when it is back; sends to other nodes answer
// as below, within the broker timeout.
//
// # Behind a load balancer
//
// Any balancer that passes WebSocket upgrades through will do, with plain
// round robin. nginx.conf, beside this file, is a whole nginx config for
// the three nodes above, which TestNginx and TestRollingRestart run: no
// passive health checks (max_fails=0, which a rolling restart needs),
// worker_connections and the file limit sized for two connections per
// socket, timeouts above laf's ping interval, and $http_host so that the
// browser's Origin matches. Run it with
//
//	nginx -c "$PWD/nginx.conf"
//
// and connect to :8080. nginx passes an upgrade to the next node when a
// node refuses the connection (it is restarting) or answers 503 (it is
// draining); it never resends a POST that reached a node, so a push
// answered 503 or 504 comes back to its caller as is. Open-source nginx
// does not probe; nginx Plus, Kubernetes or another balancer can probe
// GET /readyz, which answers 503 while the node is not connected to its
// cluster or is draining, and GET /healthz, which answers 200 while the
// process serves. If the page is served from another origin than the
// one the browser connects to, list it with -origin. A refused origin is
// logged at level debug (-log-level debug).
//
// Sockets then spread over the nodes, and POST /push on :8080 reaches a
// socket held by any node: the node that takes the request publishes the
// push on the broker, and the node that holds the socket writes it.
// Sticky sessions matter only for state a node keeps in memory per
// client, which this app has none of.
//
// # Deploying
//
// SIGTERM (or SIGINT) drains the node: at once /readyz and new upgrades
// answer 503 (upgrades with Retry-After: 1), while pushes still reach
// its sockets; its sockets are sent 1012 "service restart" a few at a
// time over -drain (5 s), so that their clients reconnect to the other
// nodes without a stampede; then the node leaves the cluster, stops its
// HTTP server and exits. -shutdown-timeout bounds all of it; a second
// signal kills at once. Restart the nodes one at a time, each once the
// last is ready again (GET /readyz answers 200). A restarted node comes
// back empty, its clients now on the others; the sockets spread over
// every node again as they reach -max-lifetime (1 h, each socket's drawn
// between 0.9 and 1 times it), when they close with 1001 and reconnect
// through the balancer.
//
// Clients must reconnect by themselves on any close, after a random
// delay that grows with each failed attempt (exponential backoff with
// full jitter, as laf's browser client does), and must expect a new
// socket id on every connection: a push by an old id answers 404.
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
//	GET  /readyz                 200 while the node is connected to its cluster and not draining, else 503 and why (readiness).
//
// A push or broadcast answers 202 once the broker took it (delivered to
// the broker: each node with a recipient then writes it, at most once);
// 503 if it was refused before anything left (laf.BrokerError: nothing
// was delivered to other nodes, a retry is safe); 504 if the broker
// timeout passed after the message may have left (laf.ErrOutcomeUnknown:
// it may or may not arrive, and a retry may deliver it twice); 404 if no
// node has the socket. POST /broadcast answers 207 with
// {"local":N,"error":...} if this node's sockets got it but the broker
// refused it for the others: do not retry it, or they get it twice.
//
// # Flags
//
//	-addr, -broker, -channel, -node, -heartbeat   as above
//	-origin PATTERN       allow cross-origin sockets from PATTERN (repeatable; host or scheme://host, as laf.WithOriginPatterns)
//	-log-level LEVEL      debug, info (default), warn or error
//	-drain D              spread the sockets' closes over D on SIGTERM (default 5s; 0 closes them all at once)
//	-max-lifetime D       close each socket after between 0.9×D and D, so that sockets rebalance (default 1h; 0 turns it off)
//	-shutdown-timeout D   bound on the whole shutdown: the drain, the sockets' close handshakes, HTTP requests (default 15s)
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
	drain := flag.Duration("drain", 5*time.Second, "on SIGTERM, spread the sockets' closes (1012) over this window")
	maxLifetime := flag.Duration("max-lifetime", time.Hour, "close each socket (1001) after between 0.9 and 1 times this, so that sockets rebalance; 0 turns it off")
	shutdownTimeout := flag.Duration("shutdown-timeout", 15*time.Second, "bound on the whole shutdown, drain included")
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
	opts := []laf.Option{laf.WithLogger(logger), laf.WithHeartbeat(*heartbeat), laf.WithMaxLifetime(*maxLifetime)}
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
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	logger.Info("listening", "node", *node, "url", "http://"+*addr+"/", "broker", redact(*brokerURL))
	if err := serve(ctx, srv, a.ep, closeBroker, *drain, *shutdownTimeout, logger); err != nil {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
}

// serve runs srv until ctx is done, then drains: the Endpoint refuses
// new sockets (503, Retry-After) and fails /readyz while srv still
// serves, so that pushes keep reaching the sockets not yet closed, and
// closes its sockets with 1012 spread over drain, then leaves the
// cluster. Only then does srv shut down, and last the broker's
// connection closes. timeout bounds the whole.
func serve(ctx context.Context, srv *http.Server, ep *laf.Endpoint, closeBroker func() error, drain, timeout time.Duration, logger *slog.Logger) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ListenAndServe() }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("draining", "window", drain, "timeout", timeout, "sockets", ep.Len())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := ep.Drain(shutdownCtx, drain); err != nil {
		logger.Warn("sockets still open at the shutdown timeout; dropped", "err", err)
	}
	logger.Info("drained; stopping the HTTP server")
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("HTTP requests still under way at the shutdown timeout", "err", err)
	}
	closeBroker()
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
