package laf

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// ErrNoSubscriber is the Err of the *BrokerError a send returns when the
// broker took it but had no subscriber for it: nothing was delivered, so
// a retry is safe. It is not ErrNotFound because the broker's count
// cannot tell a node that is gone from one that is reconnecting, or from
// this node reconnecting itself; a node that is gone is answered
// ErrNotFound once it said goodbye or missed three heartbeats.
var ErrNoSubscriber = errors.New("laf: the broker has no subscriber for it now: gone or reconnecting")

// The channels laf uses; see Broker.
const allChannel = ""

func nodeChannel(node string) string { return "n." + node }

// keyChannel returns the channel of a room (op OpRoom) or an identity
// (OpIdentity). A key of up to 64 characters of [A-Za-z0-9_-] is used as
// it is, for readable channels; any other is hashed, under another
// prefix. Receivers check the key in the envelope, so a collision could
// only cost a node a message it then ignores.
func keyChannel(op wire.Op, key string) string {
	prefix := "r."
	if op == wire.OpIdentity {
		prefix = "i."
	}
	if plainToken(key) {
		return prefix + key
	}
	sum := sha256.Sum256([]byte(key))
	return strings.ToUpper(prefix) + hex.EncodeToString(sum[:16])
}

func plainToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newNodeID returns a node's id: 64 random bits, 11 characters of
// [A-Za-z0-9_-]. It is new for every process, so that a restarted node
// is never taken for the one before it.
func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nodeOf returns the node named in a socket id ("NODE.RANDOM"), or "".
func nodeOf(id string) string {
	node, _, ok := strings.Cut(id, ".")
	if !ok {
		return ""
	}
	return node
}

// publish encodes env and publishes it to channel, bounded by ctx and the
// broker timeout. It returns how many subscriptions took it (-1: the
// broker cannot tell) or the broker's error.
func (c *cluster) publish(ctx context.Context, channel string, env *wire.Envelope) (int, error) {
	env.Origin = c.id
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	n, err := c.broker.PublishTo(pctx, channel, wire.Append(nil, env))
	now := time.Now()
	if err != nil {
		if ctx.Err() == nil || c.ctx.Err() != nil {
			// The broker's fault, not a caller that gave up.
			c.health.published(now, n, err)
			c.fails.failed(c.logger, env.Op, err)
		}
		return n, err
	}
	if c.health.published(now, n, nil) {
		c.probeSoon()
	}
	if n >= 0 {
		c.fails.ok(c.logger)
	}
	return n, nil
}

// send publishes a send for other nodes and turns the broker's answer
// into one of the three outcomes: nil (the broker took it), a
// *BrokerError (nothing left: a retry is safe) or an
// *OutcomeUnknownError (it may have left). local is how many local
// sockets had it already.
func (c *cluster) send(ctx context.Context, channel string, env *wire.Envelope, local int) (int, error) {
	n, err := c.publish(ctx, channel, env)
	if err != nil {
		c.publishErrors.Add(1)
		if errors.Is(err, ErrOutcomeUnknown) {
			c.publishUnknown.Add(1)
			return n, &OutcomeUnknownError{Local: local, Err: err}
		}
		return n, &BrokerError{Local: local, Err: err}
	}
	return n, nil
}

// sendSocket publishes env (a send or a close) to the node that holds
// socket id. See Endpoint.SendSocket for what its answers mean.
func (c *cluster) sendSocket(ctx context.Context, id string, env *wire.Envelope) error {
	node := nodeOf(id)
	if node == "" || node == c.id {
		return ErrNotFound
	}
	r := c.members.reach(node, time.Now())
	if r == reachNo {
		return ErrNotFound
	}
	env.Target = id
	n, err := c.send(ctx, nodeChannel(node), env, 0)
	if err != nil {
		return err
	}
	if n == 0 {
		// A node this one never heard a beat from, while it hears itself,
		// is none: live nodes beat when a node joins. A node it knows may
		// be reconnecting: only its silence or goodbye says it is gone.
		if r == reachUnknown && !c.health.troubled(time.Now()) {
			return ErrNotFound
		}
		return &BrokerError{Err: ErrNoSubscriber}
	}
	return nil
}

func messageEnvelope(op wire.Op, target string, m Message) *wire.Envelope {
	return &wire.Envelope{Op: op, Target: target, Binary: m.binary, Data: m.data, Key: m.key}
}

// sendKey publishes m to the channel of a room (op OpRoom) or identity
// (OpIdentity); local is how many local sockets had it already. It
// returns ErrNotFound if there were none and the broker found no
// subscriber while this node and every other are known connected (no
// trouble since this node last heard itself, and every node has beaten
// since); otherwise a *BrokerError with ErrNoSubscriber.
func (c *cluster) sendKey(ctx context.Context, op wire.Op, key string, m Message, local int) error {
	n, err := c.send(ctx, keyChannel(op, key), messageEnvelope(op, key, m), local)
	if err != nil {
		return err
	}
	if local == 0 && n == 0 {
		now := time.Now()
		if !c.health.troubled(now) && c.members.settled(now) {
			return ErrNotFound
		}
		return &BrokerError{Err: ErrNoSubscriber}
	}
	return nil
}

// broadcast publishes m to every node.
func (c *cluster) broadcast(ctx context.Context, m Message, local int) error {
	_, err := c.send(ctx, allChannel, messageEnvelope(wire.OpBroadcast, "", m), local)
	return err
}

func (c *cluster) closeSocket(ctx context.Context, id string, code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	return c.sendSocket(ctx, id, &wire.Envelope{Op: wire.OpClose, Code: code, Reason: reason})
}

// failLog logs the broker's failures without flooding: the first, then at
// most one per interval with how many it did not log, and the recovery.
type failLog struct {
	every      time.Duration
	mu         sync.Mutex
	failing    bool
	last       time.Time
	suppressed int
	total      int
}

func (f *failLog) failed(l *slog.Logger, op wire.Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = true
	f.total++
	if !f.last.IsZero() && time.Since(f.last) < f.every {
		f.suppressed++
		return
	}
	outcome := "not delivered"
	if errors.Is(err, ErrOutcomeUnknown) {
		outcome = "unknown"
	}
	l.Warn("laf: broker publish failed", "op", op.String(), "outcome", outcome, "err", err, "unlogged", f.suppressed)
	f.last, f.suppressed = time.Now(), 0
}

func (f *failLog) ok(l *slog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing {
		return
	}
	l.Info("laf: broker publishes succeed again", "failed", f.total)
	f.failing, f.total, f.suppressed, f.last = false, 0, 0, time.Time{}
}
