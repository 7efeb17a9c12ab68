package laf

import (
	"context"
	"sync"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// queries are the presence questions this node asked and waits for.
type queries struct {
	mu      sync.Mutex
	pending map[uint64]*query
	next    uint64
}

// query is a presence question waiting for the answers of want.
type query struct {
	want    map[string]bool
	replies []*wire.Envelope
	done    chan struct{}
}

func (qs *queries) init() { qs.pending = make(map[uint64]*query) }

// add registers a query waiting for the nodes in want, and returns its
// number.
func (qs *queries) add(want []string) (uint64, *query) {
	q := &query{want: make(map[string]bool, len(want)), done: make(chan struct{})}
	for _, id := range want {
		q.want[id] = true
	}
	qs.mu.Lock()
	defer qs.mu.Unlock()
	qs.next++
	qs.pending[qs.next] = q
	return qs.next, q
}

// finish forgets query id and returns the answers it got.
func (qs *queries) finish(id uint64) []*wire.Envelope {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q := qs.pending[id]
	delete(qs.pending, id)
	return append([]*wire.Envelope(nil), q.replies...)
}

// unwait stops queries waiting for node id, which has left.
func (qs *queries) unwait(id string) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	for _, q := range qs.pending {
		if q.want[id] {
			delete(q.want, id)
			if len(q.want) == 0 {
				close(q.done)
			}
		}
	}
}

func (qs *queries) replied(env *wire.Envelope) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q := qs.pending[env.Query]
	if q == nil || !q.want[env.Origin] {
		return
	}
	delete(q.want, env.Origin)
	q.replies = append(q.replies, env)
	if len(q.want) == 0 {
		close(q.done)
	}
}

// answer replies to a presence query from this node's registry. A room or
// identity counts only once its channel is held, so that a send published
// after the answer reaches the members it named.
func (c *cluster) answer(q *wire.Envelope) {
	reply := &wire.Envelope{Op: wire.OpReply, Query: q.Query}
	switch q.Op {
	case wire.OpAskOnline:
		if _, ok := c.ep.Socket(q.Target); ok {
			reply.Count = 1
		}
	case wire.OpAskRoom:
		if c.interest.holds(keyChannel(wire.OpRoom, q.Target)) {
			reply.IDs = c.ep.reg.roomIDs(q.Target)
			reply.Count = uint64(len(reply.IDs))
		}
	case wire.OpAskIdentity:
		if c.interest.holds(keyChannel(wire.OpIdentity, q.Target)) {
			reply.Count = uint64(c.ep.reg.identityLen(q.Target))
		}
	}
	c.publishFor(nodeChannel(q.Origin), reply)
}

// ask publishes a query and waits for the answers: of node alone if it is
// not "", else of every live node. It returns the answers so far and an
// error if ctx ends first or the broker refuses the query.
func (c *cluster) ask(ctx context.Context, op wire.Op, target, node string) ([]*wire.Envelope, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, ErrNotReady
	}
	want := []string{node}
	if node == "" {
		want = c.members.liveIDs()
	}
	if len(want) == 0 {
		return nil, nil
	}
	id, q := c.queries.add(want)
	channel := allChannel
	if node != "" {
		channel = nodeChannel(node)
	}
	n, err := c.publish(ctx, channel, &wire.Envelope{Op: op, Target: target, Query: id})
	switch {
	case err != nil:
		c.queries.finish(id)
		return nil, &BrokerError{Err: err}
	case node != "" && n == 0:
		c.queries.finish(id)
		return nil, &BrokerError{Err: ErrNoSubscriber}
	}
	select {
	case <-q.done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.ctx.Done():
		err = ErrNotReady
	}
	return c.queries.finish(id), err
}

// online asks the node that holds socket id whether it is live.
func (c *cluster) online(ctx context.Context, id string) (bool, error) {
	node := nodeOf(id)
	if node == "" || node == c.id || c.members.reach(node, time.Now()) == reachNo {
		return false, nil
	}
	replies, err := c.ask(ctx, wire.OpAskOnline, id, node)
	return len(replies) > 0 && replies[0].Count > 0, err
}
