package redisbroker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a
// subscription of the broker, go-redis's or laf's. go-redis's redial loop
// (started when dials fail, as they do while a test has Redis killed)
// sleeps a second between tries and ends at its first wake after the
// client is closed, so it may still be asleep at the end of the run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}
