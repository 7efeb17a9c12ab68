package laf

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// WithMaxSockets caps the Endpoint's open sockets at n: an upgrade over
// it gets 503 Service Unavailable with a Retry-After header, and is
// counted in Stats.CapRefused. A socket counts from the upgrade request's
// admission until its close event has returned. Zero or less (the
// default) means no cap.
func WithMaxSockets(n int) Option {
	return option(func(c *config) { c.maxSockets = n })
}

// WithMaxSocketsPerKey caps at n the open sockets that share a key, such
// as one client: an upgrade over it gets 429 Too Many Requests with a
// Retry-After header, and is counted in Stats.CapRefused. key returns the
// request's key; nil means the client's IP address from
// Request.RemoteAddr. Behind a proxy, RemoteAddr is the proxy's: pass a
// key that reads the header the proxy sets, which only the application
// knows to trust. An empty key is not capped. Zero or less (the default)
// means no cap.
func WithMaxSocketsPerKey(n int, key func(r *http.Request) string) Option {
	return option(func(c *config) { c.maxPerKey, c.capKey = n, key })
}

// RemoteIP returns the IP address of r.RemoteAddr, without the port: the
// default key of WithMaxSocketsPerKey.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// RateLimit bounds how fast each peer may send (see WithRateLimit). A zero
// rate does not limit.
type RateLimit struct {
	// Messages is the sustained messages per second a peer may send, and
	// MessageBurst how many it may send at once above that (at least 1).
	Messages     float64
	MessageBurst int
	// Bytes is the sustained payload bytes per second, and ByteBurst the
	// most at once (at least the read limit, so that any one message can
	// pass).
	Bytes     float64
	ByteBurst int
	// Policy says what happens to a message over the limit (default
	// CloseOverRate).
	Policy RatePolicy
}

// RatePolicy says what happens to a message over a socket's RateLimit.
type RatePolicy int

const (
	// CloseOverRate closes the socket with 1008 "rate limit" and cause
	// CausePolicy; the error event before it carries ErrRateLimited. It
	// is the default: a peer that floods is misbehaving.
	CloseOverRate RatePolicy = iota
	// DropOverRate drops the message, counted in Stats.RateDropped, and
	// keeps the socket open. The first message of each run of dropped
	// ones fires an error event with ErrRateLimited, which, unlike other
	// error events, is not followed by the close event.
	DropOverRate
)

// WithRateLimit bounds how fast each peer may send messages, with token
// buckets from golang.org/x/time/rate; a message over the limit is
// handled by l.Policy before the Func sees it. By default there is no
// limit.
func WithRateLimit(l RateLimit) Option {
	return option(func(c *config) { c.rateLimit = l })
}

// rateLimiter is one socket's buckets. Only its socket's goroutine uses
// it.
type rateLimiter struct {
	messages, bytes *rate.Limiter // nil where not limited
	dropping        bool          // the last message was dropped
}

func newRateLimiter(l RateLimit, readLimit int64) *rateLimiter {
	if l.Messages <= 0 && l.Bytes <= 0 {
		return nil
	}
	rl := new(rateLimiter)
	if l.Messages > 0 {
		rl.messages = rate.NewLimiter(rate.Limit(l.Messages), max(l.MessageBurst, 1))
	}
	if l.Bytes > 0 {
		burst := l.ByteBurst
		if readLimit > 0 {
			burst = max(burst, int(readLimit))
		}
		rl.bytes = rate.NewLimiter(rate.Limit(l.Bytes), max(burst, 1))
	}
	return rl
}

// allow reports whether a message of n bytes may pass now.
func (rl *rateLimiter) allow(n int) bool {
	now := time.Now()
	if rl.messages != nil && !rl.messages.AllowN(now, 1) {
		return false
	}
	return rl.bytes == nil || rl.bytes.AllowN(now, n)
}

// capacity counts the Endpoint's admitted sockets, in all and by key,
// for WithMaxSockets and WithMaxSocketsPerKey.
type capacity struct {
	total atomic.Int64
	mu    sync.Mutex
	byKey map[string]int
}

// admitCapacity counts a socket for r, or answers the refusal and reports
// false. The caller calls releaseCapacity(key) once the socket is done.
func (e *Endpoint) admitCapacity(w http.ResponseWriter, r *http.Request) (key string, ok bool) {
	cfg, c := &e.cfg, &e.capacity
	if n := c.total.Add(1); cfg.maxSockets > 0 && n > int64(cfg.maxSockets) {
		c.total.Add(-1)
		e.refuseOverCap(w, http.StatusServiceUnavailable, "laf: too many sockets")
		return "", false
	}
	if cfg.maxPerKey > 0 {
		keyOf := cfg.capKey
		if keyOf == nil {
			keyOf = RemoteIP
		}
		key = keyOf(r)
		if key != "" {
			c.mu.Lock()
			if c.byKey[key] >= cfg.maxPerKey {
				c.mu.Unlock()
				c.total.Add(-1)
				e.refuseOverCap(w, http.StatusTooManyRequests, "laf: too many sockets from this client")
				return "", false
			}
			if c.byKey == nil {
				c.byKey = make(map[string]int)
			}
			c.byKey[key]++
			c.mu.Unlock()
		}
	}
	return key, true
}

// releaseCapacity uncounts a socket admitted under key.
func (e *Endpoint) releaseCapacity(key string) {
	c := &e.capacity
	c.total.Add(-1)
	if key == "" {
		return
	}
	c.mu.Lock()
	if c.byKey[key]--; c.byKey[key] <= 0 {
		delete(c.byKey, key)
	}
	c.mu.Unlock()
}

// retryAfter is the Retry-After of a refusal over a cap, in seconds.
const retryAfter = 5

func (e *Endpoint) refuseOverCap(w http.ResponseWriter, status int, msg string) {
	e.stats.refused.Add(1)
	e.stats.capRefused.Add(1)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	http.Error(w, msg, status)
}
