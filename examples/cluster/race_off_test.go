//go:build !race

package main

// raceEnabled says whether the tests run with the race detector, so
// that the nodes they build run with it too.
const raceEnabled = false
