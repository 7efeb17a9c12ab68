// Command soak runs an in-process laf server under every kind of traffic
// at once, for a bounded time, and checks that nothing leaks and that
// every socket's events keep their guarantees.
//
//	cd bench && go run ./cmd/soak -d 60s [-out DIR]
//
// The server (one laf.Endpoint on 127.0.0.1, with a rate limit, read idle,
// idle and lifetime limits, pings at a short interval and a small send
// queue) serves, all at once for the duration:
//
//   - steady echo clients, which check that their echoes come back in
//     order, and which close themselves at random times or reach the
//     lifetime limit;
//   - a broadcast to every socket every -broadcast;
//   - connect and close churn by every close path: peer close, TCP drop
//     (FIN or RST), Socket.Close from the Func, Endpoint.CloseSocket from
//     outside, a handler error, a handler panic, an error and a panic in
//     the connection event, the read idle timeout, the lifetime limit, a
//     raw client that answers no ping, a message over the read limit, a
//     text message that is not UTF-8;
//   - peers that never read while the Func streams to them (slow
//     consumers);
//   - peers over the rate limit (1008).
//
// At the end it shuts the Endpoint down (1001 to the sockets left) and
// checks: one connection event and one close event per socket, tracked by
// id in the Func; no event after a socket's close event, and no send
// after it that succeeds; Stats agreeing with what the Func saw; every
// close path seen; goroutines and heap back near the baseline; resident
// memory flat over the second half of the run. It writes summary.md,
// rss.svg (RSS, heap, goroutines and live sockets over time) and
// samples.csv to -out, prints the summary, and exits with status 1 if an
// invariant failed.
//
// It listens on 127.0.0.1 only and dials only that address. Every loop is
// bounded: by -d (at most 24 h), by -max-opened sockets, and by the
// populations' and churn's sizes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is the soak's settings; the flags set it.
type config struct {
	Duration  time.Duration
	MaxOpened uint64

	Echo          int
	EchoRate      float64
	EchoSize      int
	Broadcast     time.Duration
	BroadcastSize int
	Churn         float64
	ChurnConc     int
	NoRead        int
	NoReadEvery   time.Duration
	StreamSize    int
	Flood         int
	FloodMax      int
	FloodPause    time.Duration
	Reap          time.Duration

	Rate         float64
	RateBurst    int
	RateBytes    float64
	Ping, Pong   time.Duration
	ReadIdle     time.Duration
	Idle         time.Duration
	Lifetime     time.Duration
	CloseTimeout time.Duration
	QueueMsgs    int
	QueueBytes   int
	ReadLimit    int64
	MaxSockets   int

	Sample time.Duration
	Seed   uint64
	Out    string

	// Bounds of the end checks.
	GoroutineSlack int     // goroutines over the baseline allowed at the end
	HeapSlack      int64   // heap bytes over the baseline allowed at the end
	RSSGrowth      float64 // RSS growth over the second half allowed, as a fraction of its mean...
	RSSSlack       int64   // ...plus this many bytes
	// RSSNotJudged, if set, says why the RSS check is reported but does
	// not fail the run (the race detector's own memory grows with every
	// goroutine created).
	RSSNotJudged string
}

func defaultConfig() config {
	return config{
		Duration:      60 * time.Second,
		MaxOpened:     2_000_000,
		Echo:          64,
		EchoRate:      20,
		EchoSize:      64,
		Broadcast:     100 * time.Millisecond,
		BroadcastSize: 256,
		Churn:         40,
		ChurnConc:     200,
		NoRead:        4,
		NoReadEvery:   250 * time.Millisecond,
		StreamSize:    16 << 10,
		Flood:         2,
		FloodMax:      100_000,
		FloodPause:    500 * time.Millisecond,
		Reap:          time.Second,

		Rate:         100,
		RateBurst:    50,
		RateBytes:    1 << 20,
		Ping:         time.Second,
		Pong:         2 * time.Second,
		ReadIdle:     4 * time.Second,
		Idle:         8 * time.Second,
		Lifetime:     15 * time.Second,
		CloseTimeout: 2 * time.Second,
		QueueMsgs:    32,
		QueueBytes:   64 << 10,
		ReadLimit:    32 << 10,
		MaxSockets:   2000,

		Sample: time.Second,
		Seed:   1,
		Out:    "soak-out",

		GoroutineSlack: 2,
		HeapSlack:      4 << 20,
		RSSGrowth:      0.10,
		RSSSlack:       8 << 20,
	}
}

func (c *config) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Duration, "d", c.Duration, "how long the load runs (at most 24h); the drain and checks follow")
	fs.Uint64Var(&c.MaxOpened, "max-opened", c.MaxOpened, "stop early once this many sockets have been opened")
	fs.IntVar(&c.Echo, "echo", c.Echo, "steady echo clients")
	fs.Float64Var(&c.EchoRate, "echo-rate", c.EchoRate, "messages per second per echo client (under -rate)")
	fs.IntVar(&c.EchoSize, "echo-size", c.EchoSize, "echo message size, bytes")
	fs.DurationVar(&c.Broadcast, "broadcast", c.Broadcast, "time between broadcasts to every socket")
	fs.IntVar(&c.BroadcastSize, "broadcast-size", c.BroadcastSize, "broadcast message size, bytes")
	fs.Float64Var(&c.Churn, "churn", c.Churn, "churn connections per second, cycling through the close paths")
	fs.IntVar(&c.ChurnConc, "churn-conc", c.ChurnConc, "churn sockets open at once, at most")
	fs.IntVar(&c.NoRead, "noread", c.NoRead, "peers that never read (the Func streams to them)")
	fs.IntVar(&c.Flood, "flood", c.Flood, "peers over the rate limit")
	fs.DurationVar(&c.Reap, "reap", c.Reap, "time between Endpoint.CloseSocket calls on a random socket (0: none)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "server rate limit, messages per second per socket")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "server rate limit burst, messages")
	fs.DurationVar(&c.Ping, "ping", c.Ping, "server ping interval")
	fs.DurationVar(&c.Pong, "pong", c.Pong, "server pong timeout")
	fs.DurationVar(&c.ReadIdle, "read-idle", c.ReadIdle, "server read idle timeout")
	fs.DurationVar(&c.Idle, "idle", c.Idle, "server idle timeout (broadcasts keep it from firing)")
	fs.DurationVar(&c.Lifetime, "lifetime", c.Lifetime, "server maximum socket lifetime")
	fs.DurationVar(&c.CloseTimeout, "close-timeout", c.CloseTimeout, "server close timeout")
	fs.IntVar(&c.QueueMsgs, "queue-msgs", c.QueueMsgs, "server send queue, messages")
	fs.IntVar(&c.QueueBytes, "queue-bytes", c.QueueBytes, "server send queue, bytes")
	fs.Int64Var(&c.ReadLimit, "read-limit", c.ReadLimit, "server read limit, bytes")
	fs.IntVar(&c.MaxSockets, "max-sockets", c.MaxSockets, "server socket cap (WithMaxSockets, and per client kind WithMaxSocketsPerKey)")
	fs.DurationVar(&c.Sample, "sample", c.Sample, "sampling interval of RSS, heap and goroutines")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.StringVar(&c.Out, "out", c.Out, "directory for summary.md, rss.svg and samples.csv (\"\": none)")
	fs.IntVar(&c.GoroutineSlack, "goroutine-slack", c.GoroutineSlack, "goroutines over the baseline allowed at the end")
	fs.Int64Var(&c.HeapSlack, "heap-slack", c.HeapSlack, "heap bytes over the baseline allowed at the end")
	fs.Float64Var(&c.RSSGrowth, "rss-growth", c.RSSGrowth, "RSS growth allowed over the second half, as a fraction of its mean (plus -rss-slack)")
	fs.Int64Var(&c.RSSSlack, "rss-slack", c.RSSSlack, "RSS growth allowed over the second half, bytes, on top of -rss-growth")
}

// validate keeps every setting within bounds.
func (c *config) validate() error {
	switch {
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return errors.New("-d must be in (0, 24h]")
	case c.Echo < 0 || c.Echo > 2000, c.NoRead < 0 || c.NoRead > 100, c.Flood < 0 || c.Flood > 100:
		return errors.New("-echo must be in [0, 2000], -noread and -flood in [0, 100]")
	case c.Churn < 0 || c.Churn > 500, c.ChurnConc < 1 || c.ChurnConc > 1000:
		return errors.New("-churn must be in [0, 500], -churn-conc in [1, 1000]")
	case c.EchoRate <= 0 || c.EchoRate > 1000 || c.Rate > 0 && c.EchoRate*1.5 > c.Rate:
		return errors.New("-echo-rate must be in (0, 1000] and leave a margin under -rate")
	case c.Broadcast < time.Millisecond, c.Sample < 10*time.Millisecond:
		return errors.New("-broadcast must be at least 1ms, -sample at least 10ms")
	case c.EchoSize < 24 || int64(c.EchoSize) > c.ReadLimit, c.BroadcastSize < 24 || c.BroadcastSize > 1<<20:
		return errors.New("-echo-size must be in [24, read limit], -broadcast-size in [24, 1 MiB]")
	case c.Ping <= 0 || c.Pong <= 0 || c.ReadIdle <= 0 || c.Idle <= 0 || c.Lifetime <= 0 || c.CloseTimeout <= 0:
		return errors.New("the server's timeouts must be positive")
	case c.ReadLimit < 1024 || c.ReadLimit > 16<<20:
		return errors.New("-read-limit must be in [1 KiB, 16 MiB]")
	case c.MaxSockets < 1:
		return errors.New("-max-sockets must be positive")
	}
	return nil
}

func main() {
	cfg := defaultConfig()
	cfg.flags(flag.CommandLine)
	flag.Parse()
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "soak: running for %v on 127.0.0.1 (Ctrl-C stops early and still checks)\n", cfg.Duration)
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	md := res.markdown("rss.svg")
	fmt.Print(md)
	if cfg.Out != "" {
		if err := res.write(cfg.Out, md); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "soak: wrote %s/summary.md, rss.svg and samples.csv\n", cfg.Out)
	}
	if !res.ok() {
		fmt.Fprintln(os.Stderr, "soak: FAIL:", res.failed())
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "soak: PASS")
}
