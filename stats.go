package laf

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
)

// Stats is a snapshot of an Endpoint's counters, from Endpoint.Stats.
// Counters count from the Endpoint's creation and never go down, except
// Live.
type Stats struct {
	Live          int64  `json:"live"`           // sockets open now: Endpoint.Len, read without a lock
	Accepted      uint64 `json:"accepted"`       // upgrades accepted
	Refused       uint64 `json:"refused"`        // upgrades refused: bad request, origin, auth, a cap or shutdown
	CapRefused    uint64 `json:"cap_refused"`    // of those, refused by WithMaxSockets or WithMaxSocketsPerKey
	MessagesIn    uint64 `json:"messages_in"`    // messages delivered to the Func
	BytesIn       uint64 `json:"bytes_in"`       // their payload bytes
	MessagesOut   uint64 `json:"messages_out"`   // messages written to peers
	BytesOut      uint64 `json:"bytes_out"`      // their payload bytes
	Dropped       uint64 `json:"dropped"`        // messages dropped by DropNewest or DropOldest
	Replaced      uint64 `json:"replaced"`       // queued Latest messages replaced by a newer one of the same key
	RateDropped   uint64 `json:"rate_dropped"`   // incoming messages dropped by WithRateLimit's DropOverRate
	Compressed    uint64 `json:"compressed"`     // outbound messages compressed, once however many sockets they went to
	SlowClosed    uint64 `json:"slow_closed"`    // sockets closed by CloseSlow
	HandlerErrors uint64 `json:"handler_errors"` // errors returned by the Func
	Panics        uint64 `json:"panics"`         // panics recovered from the Func
	PublishErrors uint64 `json:"publish_errors"` // sends to other nodes that failed: a *BrokerError or an *OutcomeUnknownError
	// PublishUnknown counts, of PublishErrors, the sends whose outcome is
	// unknown (OutcomeUnknownError): they may have been delivered.
	PublishUnknown uint64 `json:"publish_unknown"`
	// DroppedNoSocket counts messages from other nodes that found no
	// socket here: a push or close for a socket that had closed by the
	// time it arrived, or a room or identity send whose last local member
	// had left.
	DroppedNoSocket uint64 `json:"dropped_no_socket"`
	// Node is this node's name (WithNodeName, else its id); "" without a
	// broker.
	Node string `json:"node,omitempty"`
	// Broker is the broker's state as this node sees it: "" without a
	// broker, "starting" until its channels are held, "up", or "down"
	// while publishes fail or time out, or the broker does not echo this
	// node's probes (see Endpoint.Ready).
	Broker string `json:"broker,omitempty"`
	// Nodes is how many endpoints this node knows of, itself included, as
	// Presence().Nodes() says; 0 without a broker.
	Nodes int `json:"nodes,omitempty"`
	// Closes counts closed sockets by the cause of their close event:
	// Closes[CauseIdle] is how many closed idle. It answers "why do my
	// sockets drop?".
	Closes CloseCounts `json:"closes"`
}

// CloseCounts counts closes by CloseCause, indexed by the cause. It
// encodes to JSON as an object keyed by the causes' names.
type CloseCounts [causeCount]uint64

// MarshalJSON encodes c as {"peer": n, "abnormal": n, ...}, every cause
// included, named as CloseCause.String names it with "_" for spaces
// ("slow_consumer").
func (c CloseCounts) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for cause := CausePeer; cause < causeCount; cause++ {
		if cause > CausePeer {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, strings.ReplaceAll(cause.String(), " ", "_"))
		b = append(b, ':')
		b = strconv.AppendUint(b, c[cause], 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes what MarshalJSON encodes, so that a Stats served
// as JSON can be read back. Names it does not know are ignored.
func (c *CloseCounts) UnmarshalJSON(b []byte) error {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for cause := CausePeer; cause < causeCount; cause++ {
		c[cause] = m[strings.ReplaceAll(cause.String(), " ", "_")]
	}
	return nil
}

type counters struct {
	live                          atomic.Int64
	accepted, refused, capRefused atomic.Uint64
	rateDropped, compressed       atomic.Uint64
	dropped, replaced, slowClosed atomic.Uint64
	handlerErrors, panics         atomic.Uint64
	droppedNoSocket               atomic.Uint64
	closes                        [causeCount]atomic.Uint64
	// Per-message counters are striped over cache lines, so that sockets
	// on different cores do not fight over one line; each socket uses one
	// stripe.
	traffic [trafficStripes]traffic
}

const trafficStripes = 8

type traffic struct {
	messagesIn, bytesIn, messagesOut, bytesOut atomic.Uint64
	_                                          [32]byte // to a 64-byte line
}

// Stats returns the Endpoint's counters. It does not allocate, and takes
// no lock but, with a broker, the cluster's health lock for a moment, so
// it is cheap to call often. Each counter is read atomically;
// the set is not one instant's.
func (e *Endpoint) Stats() Stats {
	c := &e.stats
	var t struct{ messagesIn, bytesIn, messagesOut, bytesOut uint64 }
	for i := range c.traffic {
		s := &c.traffic[i]
		t.messagesIn += s.messagesIn.Load()
		t.bytesIn += s.bytesIn.Load()
		t.messagesOut += s.messagesOut.Load()
		t.bytesOut += s.bytesOut.Load()
	}
	var closes CloseCounts
	for i := range c.closes {
		closes[i] = c.closes[i].Load()
	}
	return Stats{
		Live:            c.live.Load(),
		Accepted:        c.accepted.Load(),
		Refused:         c.refused.Load(),
		CapRefused:      c.capRefused.Load(),
		MessagesIn:      t.messagesIn,
		BytesIn:         t.bytesIn,
		MessagesOut:     t.messagesOut,
		BytesOut:        t.bytesOut,
		Dropped:         c.dropped.Load(),
		Replaced:        c.replaced.Load(),
		RateDropped:     c.rateDropped.Load(),
		Compressed:      c.compressed.Load(),
		SlowClosed:      c.slowClosed.Load(),
		HandlerErrors:   c.handlerErrors.Load(),
		Panics:          c.panics.Load(),
		PublishErrors:   e.publishErrors(),
		PublishUnknown:  e.publishUnknown(),
		DroppedNoSocket: c.droppedNoSocket.Load(),
		Node:            e.nodeName(),
		Broker:          e.brokerState(),
		Nodes:           e.nodes(),
		Closes:          closes,
	}
}

func (e *Endpoint) publishErrors() uint64 {
	if e.cluster == nil {
		return 0
	}
	return e.cluster.publishErrors.Load()
}

func (e *Endpoint) publishUnknown() uint64 {
	if e.cluster == nil {
		return 0
	}
	return e.cluster.publishUnknown.Load()
}

func (e *Endpoint) nodeName() string {
	if e.cluster == nil {
		return ""
	}
	return e.cluster.name
}
