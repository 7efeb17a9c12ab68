// Package bench is laf's benchmark suite, a module of its own so that the
// libraries it compares laf with never become dependencies of laf.
//
// In-process benchmarks (allocations per echoed message and per
// broadcast, over real loopback connections):
//
//	go test -run '^$' -bench . -benchmem
//
// The full comparison, one server process per contender, which writes
// BENCHMARKS.md at the repository root:
//
//	go run ./cmd/run          # or -quick
package bench
