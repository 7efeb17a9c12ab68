package laf

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// membership is what this node knows of the other endpoints, from their
// beats, and its failure detection. A node is declared gone only on
// evidence that survives a broker reconnect: its goodbye, or three
// heartbeats without a beat counted while this node hears itself (its
// probes come back). A broker that finds no subscriber for a node's
// channel is no such evidence: the node may be reconnecting, as this one
// may be (see routing.go).
type membership struct {
	heartbeat time.Duration
	logger    *slog.Logger
	live      atomic.Int64 // other endpoints not silent, for Stats

	mu       sync.Mutex
	nodes    map[string]*peer
	gone     map[string]time.Time // nodes that said goodbye, never to return
	rejoined time.Time            // when this node last began to hear itself: its join, or the end of a cut
}

// peer is another endpoint, as its beats describe it.
type peer struct {
	name    string    // its WithNodeName, for logs
	beat    time.Time // its last beat
	seen    time.Time // its last beat, or this node's last rejoin if later: the start of its silence
	sockets int
	silent  bool // not heard for three heartbeats while this node heard itself
}

func (m *membership) init(heartbeat time.Duration, logger *slog.Logger) {
	m.heartbeat, m.logger = heartbeat, logger
	m.nodes = make(map[string]*peer)
	m.gone = make(map[string]time.Time)
}

// rejoin starts a fresh three heartbeats for every node: this node has
// just joined, or hears itself again after a cut, so their silence
// meanwhile was not theirs.
func (m *membership) rejoin(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejoined = now
	for _, n := range m.nodes {
		if !n.silent {
			n.seen = now
		}
	}
}

// heard takes a beat of node id, named name, with its socket count.
func (m *membership) heard(id, name string, sockets int, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.gone[id]; ok {
		return // a beat that overtook the goodbye
	}
	n := m.nodes[id]
	if n == nil {
		n = &peer{silent: true}
		m.nodes[id] = n
	}
	if n.silent {
		n.silent = false
		m.live.Add(1)
		m.logger.Info("laf: node joined", "peer", name, "peer_id", id)
	}
	n.name, n.beat, n.seen, n.sockets = name, now, now, sockets
}

// expire marks nodes silent for three heartbeats counted since this
// node last began hearing itself (since), if it hears itself now (else it
// keeps what it knew), and forgets goodbyes and silent nodes long past.
// It returns the nodes it silenced.
func (m *membership) expire(now, since time.Time, hearing bool) (silenced []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, n := range m.nodes {
		age := now.Sub(n.seen)
		if !n.silent {
			age = min(age, now.Sub(since))
		}
		switch {
		case hearing && !n.silent && age > 3*m.heartbeat:
			m.silence(id, n, "silent for three heartbeats")
			silenced = append(silenced, id)
		case n.silent && age > 20*m.heartbeat:
			delete(m.nodes, id)
		}
	}
	for id, at := range m.gone {
		if now.Sub(at) > 20*m.heartbeat {
			delete(m.gone, id)
		}
	}
	return silenced
}

// silence drops node id from presence until it beats again. m.mu is held.
func (m *membership) silence(id string, n *peer, why string) {
	if n.silent {
		return
	}
	n.silent = true
	m.live.Add(-1)
	m.logger.Info("laf: node left", "peer", n.name, "peer_id", id, "why", why)
}

// forget drops a node that said goodbye, for good. It reports whether
// the node was live.
func (m *membership) forget(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gone[id] = time.Now()
	n := m.nodes[id]
	if n == nil {
		return false
	}
	was := !n.silent
	m.silence(id, n, "goodbye")
	delete(m.nodes, id)
	return was
}

// Reachability of a node, for a send by socket id.
type reach int

const (
	reachNo      reach = iota // gone: said goodbye, or silent, or unknown long enough to be sure
	reachUnknown              // never heard of yet
	reachYes                  // live
)

// reach says whether sends to node id may be published. A node never
// heard of is worth a try for three heartbeats after this node joins:
// until then it may simply not have beaten yet.
func (m *membership) reach(id string, now time.Time) reach {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.gone[id]; ok {
		return reachNo
	}
	n := m.nodes[id]
	switch {
	case n == nil && now.Sub(m.rejoined) > 3*m.heartbeat:
		return reachNo
	case n == nil:
		return reachUnknown
	case n.silent:
		return reachNo
	}
	return reachYes
}

// settled reports whether every live node has beaten since this node
// last began hearing itself: only then can the broker's count of a
// room's subscribers be trusted to mean that nobody is in it.
func (m *membership) settled(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nodes {
		if !n.silent && !n.beat.After(m.rejoined) {
			return false
		}
	}
	return true
}

// live returns the ids of the live nodes.
func (m *membership) liveIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.nodes))
	for id, n := range m.nodes {
		if !n.silent {
			ids = append(ids, id)
		}
	}
	return ids
}

// sockets returns how many sockets the other live nodes hold, and how
// many nodes they are, from their beats.
func (m *membership) sockets() (sockets, nodes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nodes {
		if !n.silent {
			sockets += n.sockets
			nodes++
		}
	}
	return sockets, nodes
}
