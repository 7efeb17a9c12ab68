package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/natsbroker"
	"github.com/lafgo/laf/redisbroker"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// dialBroker returns the broker that rawURL names, on a connection named
// node, and a function that closes it and its connection, to call after
// the Endpoint has shut down. Neither client needs the broker to be up
// yet: both connect, and reconnect, by themselves, and laf retries its
// subscription until then.
func dialBroker(rawURL, channel, node string, logger *slog.Logger) (laf.Broker, func() error, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, nil, err
		}
		// At most once: no command is retried after Redis may have taken
		// it. laf's deadline (2 s) bounds the wait for Redis's answer, and
		// one dial of at most 500 ms a send while Redis refuses
		// connections, instead of go-redis's ~1.7 s. CLIENT LIST names
		// the node.
		opt.MaxRetries = -1
		opt.ContextTimeoutEnabled = true
		opt.DialerRetries = 1
		opt.DialTimeout = 500 * time.Millisecond
		opt.ClientName = node
		redis.SetLogger(redisbroker.SlogLogger(logger))
		client := redis.NewClient(opt)
		b := redisbroker.New(client, redisbroker.WithChannel(channel))
		return b, func() error {
			b.Close()
			return client.Close()
		}, nil
	case "nats", "tls":
		nc, err := nats.Connect(rawURL,
			nats.Name(node), // the server's connz names the node
			// laf needs the connection back after any outage: never give
			// up, and retry soon.
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond),
			nats.RetryOnFailedConnect(true),
			nats.ErrorHandler(natsbroker.SlogErrorHandler(logger)),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				logger.Warn("nats disconnected", "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
			}),
		)
		if err != nil {
			return nil, nil, err
		}
		b := natsbroker.New(nc, natsbroker.WithSubject(channel))
		return b, func() error {
			b.Close()
			nc.Close()
			return nil
		}, nil
	}
	return nil, nil, fmt.Errorf("broker %q: want a redis:// or nats:// URL", redact(rawURL))
}

// redact hides a password in a broker URL, for logs.
func redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
