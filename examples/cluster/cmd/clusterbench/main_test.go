package main

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestRun runs the benchmark small, on the brokers that need nothing
// installed, and checks the table and that nothing is left running.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := config{nodes: 3, pushes: 50, warmup: 10, sockets: 30, broadcasts: 20, batch: 10, size: 1024, timeout: 30 * time.Second}
	var results []result
	for _, name := range []string{"nats", "nats-flush", "local"} {
		r, err := run(name, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.p50 <= 0 || r.p99 < r.p50 || r.deliveriesPerSec <= 0 {
			t.Fatalf("%s: implausible result %+v", name, r)
		}
		results = append(results, r)
	}
	table := markdown(cfg, results)
	for _, want := range []string{"| Adapter |", "| nats | nats-server v", "| local |", "- Go: go"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if _, err := run("nope", cfg); err == nil {
		t.Error("unknown adapter: no error")
	}
}
