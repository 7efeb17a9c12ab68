package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a node's,
// a broker client's or the NATS server's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
