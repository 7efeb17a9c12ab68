package laf

import (
	"fmt"
	"sync"
	"time"
)

// Broker states, as Stats.Broker names them.
const (
	stateNone     int32 = iota // no broker
	stateStarting              // subscribing
	stateUp
	stateDown // publishes fail, or the broker does not echo this node's probes
)

var stateNames = [...]string{"", "starting", "up", "down"}

// health says whether the broker takes this node's messages and echoes
// them back, from evidence with a time: the last publish that failed and
// the last that the broker confirmed, and the probe this node is waiting
// to hear. It is judged when asked, so that it is never older than the
// question: a node whose broker hangs is not ready half a heartbeat after
// its next probe, without any goroutine having to notice.
type health struct {
	echoWait time.Duration // how long a probe may go unanswered

	mu       sync.Mutex
	joinedAt time.Time // zero while starting
	joinErr  error     // why the last attempt to join failed
	okAt     time.Time // the last publish the broker confirmed
	failAt   time.Time // the last publish that failed for the broker's sake
	failErr  error
	seq      uint64    // the last probe's number
	waitFrom time.Time // when the oldest probe not yet echoed was sent; zero if none
	deafAt   time.Time // when this node was last found not hearing itself; zero while it hears
	cutAt    time.Time // when this node's present trouble began (deaf, or a publish failed); zero if none
	backAt   time.Time // when this node joined, or last heard itself again after trouble
}

func (h *health) init(heartbeat time.Duration) {
	h.echoWait = heartbeat / 2
}

func (h *health) joinFailed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.joinErr = err
}

func (h *health) joined(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.joinedAt, h.joinErr, h.backAt = now, nil, now
}

// published records a publish's outcome. A confirmed one is a publish
// that counted its subscribers (receivers ≥ 0): one that only handed the
// message to a client's buffer proves nothing. It reports whether this
// one is the first confirmed since trouble began: time to probe again.
func (h *health) published(now time.Time, receivers int, err error) (recovered bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil:
		h.failAt, h.failErr = now, err
		if h.cutAt.IsZero() {
			h.cutAt = now
		}
	case receivers >= 0:
		recovered = !h.cutAt.IsZero() && !h.okAt.After(h.cutAt)
		h.okAt = now
	}
	return recovered
}

// probing numbers a new probe, sent now.
func (h *health) probing(now time.Time) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	if h.waitFrom.IsZero() {
		h.waitFrom = now
	}
	return h.seq
}

// echoed takes the echo of probe seq. It reports whether this node had
// trouble with the broker (it stopped hearing itself, or a publish
// failed), and since how long: the broker is back.
func (h *health) echoed(seq uint64, now time.Time) (gap time.Duration, back bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkDeaf(now)
	if seq != h.seq {
		return 0, false // an older probe: wait for the last one
	}
	// The echo proves the probe was published, whether or not its
	// PublishTo has returned yet.
	h.waitFrom, h.deafAt, h.okAt = time.Time{}, time.Time{}, now
	if h.cutAt.IsZero() {
		return 0, false
	}
	gap = now.Sub(h.cutAt)
	h.cutAt, h.backAt = time.Time{}, now
	return gap, true
}

// checkDeaf notes when the node was found not hearing itself. h.mu is held.
func (h *health) checkDeaf(now time.Time) {
	if h.deafAt.IsZero() && !h.waitFrom.IsZero() && now.Sub(h.waitFrom) > h.echoWait {
		h.deafAt = h.waitFrom
		if h.cutAt.IsZero() {
			h.cutAt = h.waitFrom
		}
	}
}

// troubled reports whether this node has had trouble with the broker
// since it last heard itself: it may be reconnecting, so the broker's
// count of subscribers is not to be trusted.
func (h *health) troubled(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkDeaf(now)
	return !h.cutAt.IsZero()
}

// hearing reports whether the broker echoes this node's probes, and since
// when: the other nodes' silence since then is theirs.
func (h *health) hearing(now time.Time) (since time.Time, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkDeaf(now)
	return h.backAt, !h.joinedAt.IsZero() && h.deafAt.IsZero()
}

// state returns the state for Stats.
func (h *health) state(now time.Time) int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.joinedAt.IsZero():
		return stateStarting
	case h.problem(now) != fine:
		return stateDown
	}
	return stateUp
}

// What is wrong with the broker now.
const (
	fine    = iota
	failing // the last publish failed for the broker's sake
	deaf    // a probe went unanswered for half a heartbeat
)

// problem says what is wrong now. h.mu is held.
func (h *health) problem(now time.Time) int {
	h.checkDeaf(now)
	switch {
	case h.failAt.After(h.okAt):
		return failing
	case !h.deafAt.IsZero():
		return deaf
	}
	return fine
}

// readyErr says why the node is not ready now, with the error of now,
// never one from an earlier fault; or returns nil. subErr is the
// interest's subscription error, if any.
func (h *health) readyErr(now time.Time, subErr error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.joinedAt.IsZero() {
		return &readyError{why: "subscribing", err: h.joinErr}
	}
	switch h.problem(now) {
	case failing:
		return &readyError{why: "broker publishes failing", err: h.failErr}
	case deaf:
		return &readyError{why: fmt.Sprintf("the broker has not echoed this node's probe for %v", now.Sub(h.deafAt).Round(time.Millisecond))}
	}
	if subErr != nil {
		return &readyError{why: "some subscriptions failed", err: subErr}
	}
	return nil
}

type readyError struct {
	why string
	err error
}

func (e *readyError) Error() string {
	if e.err != nil {
		return "laf: not ready: " + e.why + ": " + e.err.Error()
	}
	return "laf: not ready: " + e.why
}

func (e *readyError) Is(target error) bool { return target == ErrNotReady }
func (e *readyError) Unwrap() error        { return e.err }

// readyErr says why this node is not ready, or returns nil.
func (c *cluster) readyErr() error {
	return c.health.readyErr(time.Now(), c.interest.failure())
}
