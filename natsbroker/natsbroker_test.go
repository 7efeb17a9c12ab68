package natsbroker_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/lafgo/laf/natsbroker"
	"github.com/nats-io/nats.go"
)

// factory gives every node its own connection; cut closes it, so the
// node can neither publish nor hear, and says no goodbye.
func factory(srv *natsServer, opts ...natsbroker.Option) laftest.BrokerFactory {
	return func(t testing.TB) (laf.Broker, func()) {
		nc := connect(t, srv.URL())
		b := natsbroker.New(nc, opts...)
		return b, func() { b.Close(); nc.Close() }
	}
}

func TestBroker(t *testing.T) {
	laftest.TestBroker(t, factory(startNATS(t)))
}

func TestBrokerPublishFlush(t *testing.T) {
	laftest.TestBroker(t, factory(startNATS(t), natsbroker.WithPublishFlush(), natsbroker.WithSubject("laf.flush")))
}

// subscribe opens a set on b holding channel "" and calls fn with its
// messages until ctx is done.
func subscribe(ctx context.Context, b *natsbroker.Broker, fn func([]byte)) error {
	chans, err := b.Open(ctx, fn)
	if err != nil {
		return err
	}
	return chans.Subscribe(ctx, "")
}

func publish(b *natsbroker.Broker, msg string) error {
	_, err := b.PublishTo(context.Background(), "", []byte(msg))
	return err
}

// TestSubscribeIsActiveOnReturn publishes right after Subscribe returns,
// from another connection: the message must arrive, so Subscribe waited
// until the server had registered the subscription.
func TestSubscribeIsActiveOnReturn(t *testing.T) {
	srv := startNATS(t)
	pub := natsbroker.New(connect(t, srv.URL()))
	sub := natsbroker.New(connect(t, srv.URL()))
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan []byte, 1)
		if err := subscribe(ctx, sub, func(msg []byte) { got <- msg }); err != nil {
			t.Fatal(err)
		}
		want := []byte{byte(i), 0, 'x'}
		if err := publish(pub, string(want)); err != nil {
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

// TestDisconnected checks that Subscribe and PublishTo fail, rather than
// hang or report a success that nats.go has only buffered, while the
// connection is not up, and that PublishTo's error then says nothing
// left: not laf.ErrOutcomeUnknown.
func TestDisconnected(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// With RetryOnFailedConnect, Connect returns a connection that is
	// still trying.
	nc := connect(t, "nats://127.0.0.1:"+strconv.Itoa(port), nats.RetryOnFailedConnect(true))
	b := natsbroker.New(nc, natsbroker.WithBrokerTimeout(200*time.Millisecond))
	defer b.Close()
	if err := subscribe(context.Background(), b, func([]byte) {}); err == nil {
		t.Fatal("Subscribe with no server: no error")
	}
	for _, ch := range []string{"", "n.node"} {
		_, err := b.PublishTo(context.Background(), ch, []byte("x"))
		if !errors.Is(err, natsbroker.ErrDisconnected) || errors.Is(err, laf.ErrOutcomeUnknown) {
			t.Fatalf("PublishTo %q with no server: %v, want ErrDisconnected", ch, err)
		}
	}
	nc.Close()
	if err := publish(b, "x"); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("PublishTo on a closed connection: %v, want nats.ErrConnectionClosed", err)
	}
}

// TestStop checks that cancelling Open's context and closing the Broker
// stop delivery, and that a closed Broker refuses calls.
func TestStop(t *testing.T) {
	srv := startNATS(t)
	b := natsbroker.New(connect(t, srv.URL()))
	var mu sync.Mutex
	counts := map[string]int{}
	sub := func(ctx context.Context, name string) {
		if err := subscribe(ctx, b, func([]byte) { mu.Lock(); counts[name]++; mu.Unlock() }); err != nil {
			t.Fatal(err)
		}
	}
	count := func(name string) int { mu.Lock(); defer mu.Unlock(); return counts[name] }
	// The server counts subscriptions of its own too.
	base := srv.server().NumSubscriptions()
	ctx, cancel := context.WithCancel(context.Background())
	sub(ctx, "cancelled")
	sub(context.Background(), "closed")
	publish(b, "1")
	eventually(t, "both subscribers get a message", func() bool { return count("cancelled") == 1 && count("closed") == 1 })

	cancel()
	eventually(t, "cancelled subscription gone", func() bool { return srv.server().NumSubscriptions() == base+1 })
	publish(b, "2")
	eventually(t, "closed gets the second message", func() bool { return count("closed") == 2 })
	if count("cancelled") != 1 {
		t.Fatalf("cancelled subscriber got %d messages, want 1", count("cancelled"))
	}

	b.Close()
	eventually(t, "subscriptions closed", func() bool { return srv.server().NumSubscriptions() == base })
	if err := publish(b, "3"); !errors.Is(err, natsbroker.ErrClosed) {
		t.Fatalf("PublishTo after Close: %v, want ErrClosed", err)
	}
	if err := subscribe(context.Background(), b, func([]byte) {}); !errors.Is(err, natsbroker.ErrClosed) {
		t.Fatalf("Open after Close: %v, want ErrClosed", err)
	}
}

// TestRestart shuts the NATS server down under two nodes and starts it
// again on the same port: local sends keep working meanwhile, publishes
// fail and are counted, and pushes across nodes resume by themselves.
func TestRestart(t *testing.T) {
	srv := startNATS(t)
	conns := []*nats.Conn{connect(t, srv.URL()), connect(t, srv.URL())}
	laftest.TestBrokerOutage(t, natsbroker.New(conns[0]), natsbroker.New(conns[1]), func() {
		srv.stop()
		for _, nc := range conns {
			eventually(t, "client sees NATS down", func() bool { return !nc.IsConnected() })
		}
	}, srv.start)
	for _, nc := range conns {
		if nc.Stats().Reconnects == 0 {
			t.Fatal("connection did not reconnect")
		}
	}
}
