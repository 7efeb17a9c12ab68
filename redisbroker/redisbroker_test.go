package redisbroker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/redisbroker"
	"github.com/redis/go-redis/v9"
)

// newClient returns a client of srv that the test closes at its end.
func newClient(t testing.TB, srv *redisServer) redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{srv.Addr()},
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
		DialTimeout:           500 * time.Millisecond,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// factory gives every node its own client; cut closes the Broker and
// that client, as the death of its process would, so the node can
// neither publish nor hear, and says no goodbye.
func factory(srv *redisServer, opts ...redisbroker.Option) laftest.BrokerFactory {
	return func(t testing.TB) (laf.Broker, func()) {
		c := newClient(t, srv)
		b := redisbroker.New(c, opts...)
		return b, func() { b.Close(); c.Close() }
	}
}

func TestBroker(t *testing.T) {
	laftest.TestBroker(t, factory(startRedis(t)))
}

func TestBrokerSharded(t *testing.T) {
	laftest.TestBroker(t, factory(startRedis(t), redisbroker.WithSharded(), redisbroker.WithChannel("laf-sharded")))
}

// TestSlogLogger routes go-redis's own messages into slog.
func TestSlogLogger(t *testing.T) {
	var buf bytes.Buffer
	l := redisbroker.SlogLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	redis.SetLogger(l)
	l.Printf(context.Background(), "pool: %d", 3)
	if !strings.Contains(buf.String(), "go-redis: pool: 3") || !strings.Contains(buf.String(), "WARN") {
		t.Fatalf("logged %q", buf.String())
	}
}

// TestChannelNames checks the Redis channels of laf's channels, plain and
// sharded (one hash tag).
func TestChannelNames(t *testing.T) {
	srv := startRedis(t)
	c := newClient(t, srv)
	for _, tc := range []struct {
		opts []redisbroker.Option
		want string
	}{
		{nil, "laf:n.node1"},
		{[]redisbroker.Option{redisbroker.WithSharded()}, "{laf}:n.node1"},
	} {
		b := redisbroker.New(c, tc.opts...)
		ctx, cancel := context.WithCancel(context.Background())
		chans, err := b.Open(ctx, func([]byte) {})
		if err != nil {
			t.Fatal(err)
		}
		if err := chans.Subscribe(context.Background(), "n.node1"); err != nil {
			t.Fatal(err)
		}
		var n int64
		if len(tc.opts) > 0 {
			n, err = c.SPublish(context.Background(), tc.want, "x").Result()
		} else {
			n, err = c.Publish(context.Background(), tc.want, "x").Result()
		}
		if err != nil || n != 1 {
			t.Fatalf("%s: %d subscribers, %v", tc.want, n, err)
		}
		cancel()
	}
}

// subscribe opens a set on b holding channel "" and calls fn with its
// messages until ctx is done.
func subscribe(ctx context.Context, b *redisbroker.Broker, fn func([]byte)) error {
	chans, err := b.Open(ctx, fn)
	if err != nil {
		return err
	}
	return chans.Subscribe(ctx, "")
}

// TestSubscribeIsActiveOnReturn publishes right after Subscribe returns:
// the message must arrive, so Subscribe waited for the confirmation.
func TestSubscribeIsActiveOnReturn(t *testing.T) {
	srv := startRedis(t)
	pub := redisbroker.New(newClient(t, srv))
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan []byte, 1)
		sub := redisbroker.New(newClient(t, srv), redisbroker.WithChannel(pub.Channel()))
		if err := subscribe(ctx, sub, func(msg []byte) { got <- msg }); err != nil {
			t.Fatal(err)
		}
		want := []byte{byte(i), 0, 'x'}
		if _, err := pub.PublishTo(context.Background(), "", want); err != nil {
			t.Fatal(err)
		}
		select {
		case msg := <-got:
			if string(msg) != string(want) {
				t.Fatalf("got %q, want %q", msg, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: message published after Subscribe returned was not delivered", i)
		}
		cancel()
	}
}

// TestSubscribeDown checks that Subscribe and PublishTo fail, rather than
// hang, when no server is listening, and that PublishTo's error says
// nothing left: not laf.ErrOutcomeUnknown.
func TestSubscribeDown(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), MaxRetries: -1, ContextTimeoutEnabled: true})
	defer c.Close()
	b := redisbroker.New(c, redisbroker.WithSubscribeTimeout(5*time.Second))
	if err := subscribe(context.Background(), b, func([]byte) {}); err == nil {
		t.Fatal("Subscribe with no server: no error")
	}
	_, err := b.PublishTo(context.Background(), "", []byte("x"))
	if err == nil {
		t.Fatal("PublishTo with no server: no error")
	}
	if errors.Is(err, laf.ErrOutcomeUnknown) {
		t.Fatalf("PublishTo with no server: %v, want an error that says nothing left", err)
	}
}

// TestStop checks that cancelling Open's context and closing the Broker
// stop delivery, and that a closed Broker refuses calls.
func TestStop(t *testing.T) {
	srv := startRedis(t)
	c := newClient(t, srv)
	b := redisbroker.New(c)
	var mu sync.Mutex
	counts := map[string]int{}
	sub := func(ctx context.Context, name string) {
		if err := subscribe(ctx, b, func([]byte) { mu.Lock(); counts[name]++; mu.Unlock() }); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(msg string) error {
		_, err := b.PublishTo(context.Background(), "", []byte(msg))
		return err
	}
	count := func(name string) int { mu.Lock(); defer mu.Unlock(); return counts[name] }
	ctx, cancel := context.WithCancel(context.Background())
	sub(ctx, "cancelled")
	sub(context.Background(), "closed")
	publish("1")
	eventually(t, "both subscribers get a message", func() bool { return count("cancelled") == 1 && count("closed") == 1 })

	cancel()
	// The server counts subscribers; wait until it has dropped one.
	eventually(t, "cancelled subscription gone", func() bool {
		n, err := c.PubSubNumSub(context.Background(), b.Channel()).Result()
		return err == nil && n[b.Channel()] == 1
	})
	publish("2")
	eventually(t, "closed gets the second message", func() bool { return count("closed") == 2 })
	if count("cancelled") != 1 {
		t.Fatalf("cancelled subscriber got %d messages, want 1", count("cancelled"))
	}

	b.Close()
	eventually(t, "subscriptions closed", func() bool {
		n, err := c.PubSubNumSub(context.Background(), b.Channel()).Result()
		return err == nil && n[b.Channel()] == 0
	})
	if err := publish("3"); !errors.Is(err, redisbroker.ErrClosed) {
		t.Fatalf("PublishTo after Close: %v, want ErrClosed", err)
	}
	if err := subscribe(context.Background(), b, func([]byte) {}); !errors.Is(err, redisbroker.ErrClosed) {
		t.Fatalf("Open after Close: %v, want ErrClosed", err)
	}
}

// TestRestart kills redis-server under two nodes and starts it again on
// the same port: local sends keep working meanwhile, publishes fail and
// are counted, and pushes across nodes resume by themselves.
func TestRestart(t *testing.T) {
	srv := startRedis(t)
	clients := []redis.UniversalClient{newClient(t, srv), newClient(t, srv)}
	laftest.TestBrokerOutage(t, redisbroker.New(clients[0]), redisbroker.New(clients[1]), func() {
		srv.kill()
		for _, c := range clients {
			eventually(t, "client sees Redis down", func() bool {
				return c.Ping(context.Background()).Err() != nil
			})
		}
	}, srv.start)
}
