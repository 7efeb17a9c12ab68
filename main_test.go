package laf_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a socket's,
// a writer, the late flusher, a poller, a keepalive or a cluster's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
