package main

import "github.com/lafgo/laf"

// kind is a kind of client, named in the upgrade request's query (?k=),
// so that the Func knows what to do with the socket and the report can
// show how each kind's sockets closed.
type kind int

const (
	// Populations: a fixed number of each, reconnecting all the time.
	kEcho   kind = iota // steady echo
	kFlood              // over the rate limit
	kNoRead             // never reads while the server streams to it
	// Churn: one close path each, dialled in turn at the churn rate.
	kPeer      // closes with 1000 after a few echoes
	kDrop      // drops TCP (FIN or RST) without a close frame
	kServer    // asks the Func to call Socket.Close(4000)
	kError     // asks the Func to return an error
	kPanic     // asks the Func to panic
	kConnError // the connection event returns an error
	kConnPanic // the connection event panics
	kIdle      // reads, answers pings, sends nothing
	kNoPong    // raw client: reads everything, answers no ping
	kTooBig    // one message over the read limit
	kBadUTF8   // raw client: a text frame that is not UTF-8
	numKinds
)

// churnKinds are dialled in turn by the churn loop.
var churnKinds = []kind{kPeer, kDrop, kServer, kError, kPanic, kConnError, kConnPanic, kIdle, kNoPong, kTooBig, kBadUTF8}

type kindInfo struct {
	name string
	what string
	// want are the close causes this kind is built to get; the reaper
	// (CauseServer), the lifetime limit and the final Shutdown may close
	// any socket.
	want []laf.CloseCause
}

var kinds = [numKinds]kindInfo{
	kEcho:      {"echo", "steady echo client; closes itself (1000) at a random time, or reaches the lifetime limit", []laf.CloseCause{laf.CausePeer, laf.CauseLifetime}},
	kFlood:     {"flood", "sends as fast as it can, over the rate limit", []laf.CloseCause{laf.CausePolicy}},
	kNoRead:    {"noread", "raw client with a small receive buffer that never reads, while the Func streams to it", []laf.CloseCause{laf.CauseSlowConsumer, laf.CausePingTimeout}},
	kPeer:      {"peer", "a few echoes, then a close frame (1000)", []laf.CloseCause{laf.CausePeer}},
	kDrop:      {"drop", "raw client: two frames, then TCP close (FIN) or reset (RST)", []laf.CloseCause{laf.CauseAbnormal}},
	kServer:    {"server", "asks the Func to call Socket.Close(4000)", []laf.CloseCause{laf.CauseServer}},
	kError:     {"error", "asks the Func to return an error (1011)", []laf.CloseCause{laf.CauseHandlerError}},
	kPanic:     {"panic", "asks the Func to panic (1011)", []laf.CloseCause{laf.CauseHandlerError}},
	kConnError: {"connerror", "the connection event returns an error; the client sends anyway", []laf.CloseCause{laf.CauseHandlerError}},
	kConnPanic: {"connpanic", "the connection event panics; the client sends anyway", []laf.CloseCause{laf.CauseHandlerError}},
	kIdle:      {"idle", "reads and answers pings but sends nothing (read idle timeout)", []laf.CloseCause{laf.CauseIdle}},
	kNoPong:    {"nopong", "raw client: reads everything, answers no ping", []laf.CloseCause{laf.CausePingTimeout}},
	kTooBig:    {"toobig", "one message over the read limit (1009)", []laf.CloseCause{laf.CauseReadLimit}},
	kBadUTF8:   {"badutf8", "raw client: a text frame that is not UTF-8 (1007)", []laf.CloseCause{laf.CauseProtocol}},
}

func (k kind) String() string { return kinds[k].name }

// kindOf parses a kind's name; an unknown name is an echo client.
func kindOf(name string) kind {
	for k := range numKinds {
		if kinds[k].name == name {
			return k
		}
	}
	return kEcho
}

// pathCauses are the close causes the soak must see at least once.
var pathCauses = []laf.CloseCause{
	laf.CausePeer, laf.CauseAbnormal, laf.CauseServer, laf.CauseHandlerError,
	laf.CauseReadLimit, laf.CauseProtocol, laf.CauseSlowConsumer,
	laf.CausePingTimeout, laf.CauseIdle, laf.CauseLifetime, laf.CauseShutdown,
	laf.CausePolicy,
}
