package laf

import (
	"context"
	"sync"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// interests are the room and identity channels this node holds: the
// channel of every room and identity with a local member, and of no
// other. The registry reports changes (queue); reconcile subscribes and
// unsubscribes.
type interests struct {
	wake chan struct{} // interest changed

	mu      sync.Mutex
	dirty   map[interest]struct{} // rooms and identities to reconcile
	held    map[string]bool       // room and identity channels subscribed
	failErr error                 // why a subscription failed, while it is retried; nil once all succeed
}

// interest is a room (op OpRoom) or identity (OpIdentity) whose channel
// this node should hold while it has a local member.
type interest struct {
	op  wire.Op
	key string
}

func (in *interests) init() {
	in.wake = make(chan struct{}, 1)
	in.dirty = make(map[interest]struct{})
	in.held = make(map[string]bool)
}

// failure returns why subscriptions are failing, or nil.
func (in *interests) failure() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.failErr
}

// holds reports whether this node holds channel ch, confirmed.
func (in *interests) holds(ch string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.held[ch]
}

// queue is the registry's notify hook, called under its lock: op OpBeat
// for a change of the socket count, OpRoom or OpIdentity for a room or
// identity that got its first local member or lost its last. It never
// blocks.
func (c *cluster) queue(op wire.Op, key string) {
	if op == wire.OpBeat {
		c.beatSoon()
		return
	}
	in := &c.interest
	in.mu.Lock()
	in.dirty[interest{op, key}] = struct{}{}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// reconcile holds the channel of every room and identity with a local
// member, and of no other, subscribing and unsubscribing as they change.
// It works from the registry's state when it runs, so changes that undo
// each other cost nothing.
func (c *cluster) reconcile() {
	defer c.wg.Done()
	in := &c.interest
	var retry <-chan time.Time
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-in.wake:
		case <-retry:
		}
		retry = nil
		in.mu.Lock()
		batch := in.dirty
		in.dirty = make(map[interest]struct{})
		in.mu.Unlock()
		failed := 0
		var lastErr error
		for k := range batch {
			if c.ctx.Err() != nil {
				return
			}
			if err := c.reconcileOne(k); err != nil {
				failed++
				lastErr = err
				in.mu.Lock()
				in.dirty[k] = struct{}{}
				in.mu.Unlock()
			}
		}
		in.mu.Lock()
		wasFailing := in.failErr != nil
		in.failErr = lastErr
		in.mu.Unlock()
		if failed > 0 {
			c.logger.Warn("laf: broker subscribe failed; retrying", "channels", failed, "err", lastErr, "in", backoff)
			retry = time.After(backoff)
			backoff = min(2*backoff, c.heartbeat)
		} else {
			if wasFailing {
				c.logger.Info("laf: subscriptions recovered")
			}
			backoff = 50 * time.Millisecond
		}
	}
}

func (c *cluster) reconcileOne(k interest) error {
	in := &c.interest
	var want bool
	if k.op == wire.OpRoom {
		want = c.ep.reg.roomLen(k.key) > 0
	} else {
		want = c.ep.reg.identityLen(k.key) > 0
	}
	ch := keyChannel(k.op, k.key)
	in.mu.Lock()
	have := in.held[ch]
	if !want {
		delete(in.held, ch) // answer no query for it from now on
	}
	in.mu.Unlock()
	if want == have {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, max(c.timeout, time.Second))
	defer cancel()
	if !want {
		return c.chans.Unsubscribe(ctx, ch)
	}
	if err := c.chans.Subscribe(ctx, ch); err != nil {
		return err
	}
	in.mu.Lock()
	in.held[ch] = true
	in.mu.Unlock()
	return nil
}
