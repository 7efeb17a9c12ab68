package redisbroker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a
// subscription of the broker, go-redis's or laf's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
