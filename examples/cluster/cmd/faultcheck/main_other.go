//go:build !unix

// Command faultcheck needs SIGSTOP: it runs on Unix only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "faultcheck: Unix only (it stops the broker with SIGSTOP)")
	os.Exit(2)
}
