package laf

// Presence answers who is connected: on one node from its registry, and
// across a cluster from what every node publishes through the broker.
// Cluster answers are eventually consistent: a socket's arrival, rooms
// and departure reach other nodes after the broker's latency, and a node
// that dies silently drops out within three heartbeats (see
// WithHeartbeat). All methods are safe for concurrent use.
type Presence struct {
	ep *Endpoint // nil for an Emitter
	c  *cluster  // nil without a broker
}

// Presence returns the Endpoint's view of presence.
func (e *Endpoint) Presence() Presence { return Presence{ep: e, c: e.cluster} }

// Count returns the number of live sockets: the Endpoint's Len plus, with
// a broker, the sockets presence knows on other nodes.
func (p Presence) Count() int {
	n := 0
	if p.ep != nil {
		n = p.ep.Len()
	}
	if p.c != nil {
		p.c.live(func(ns *nodeState) { n += len(ns.sockets) })
	}
	return n
}

// Online reports whether a socket with the given id is live.
func (p Presence) Online(id string) bool {
	if p.ep != nil {
		if _, ok := p.ep.Socket(id); ok {
			return true
		}
	}
	return p.c != nil && p.c.remoteOnline(id)
}

// IdentitySockets returns how many live sockets carry identity: 0 when
// that user is offline.
func (p Presence) IdentitySockets(identity string) int {
	n := 0
	if p.ep != nil {
		n = p.ep.reg.identityLen(identity)
	}
	if p.c != nil {
		p.c.live(func(ns *nodeState) { n += ns.identities[identity] })
	}
	return n
}

// RoomMembers returns the ids of the sockets in room, in no particular
// order.
func (p Presence) RoomMembers(room string) []string {
	var ids []string
	if p.ep != nil {
		ids = p.ep.reg.roomIDs(room)
	}
	if p.c != nil {
		p.c.live(func(ns *nodeState) {
			for id := range ns.rooms[room] {
				ids = append(ids, id)
			}
		})
	}
	return ids
}

// Nodes returns the number of endpoints presence knows of, this one
// included. Emitters do not count.
func (p Presence) Nodes() int {
	n := 0
	if p.ep != nil {
		n = 1
	}
	if p.c != nil {
		p.c.live(func(ns *nodeState) { n++ })
	}
	return n
}
