// Package wscases is a protocol case suite for WebSocket echo servers, in
// the spirit of Autobahn|Testsuite: raw-TCP cases, each with the bytes or
// close code it expects written down, derived from RFC 6455 and RFC 7692
// rather than from what any implementation does.
//
// The server under test echoes every text message as text and every
// binary message as binary, with the read limit and compression its
// Target describes. Cases are numbered as Autobahn numbers its sections
// (1 framing, 2 pings and pongs, 3 reserved bits, 4 opcodes, 5
// fragmentation, 6 UTF-8, 7 close, 9 limits, 12 and 13 compression), and
// X.n for findings of their own. Where the RFCs allow several behaviours
// a case accepts all of them, and its Desc says so.
//
// A case that expects the server to close with a code C reads the
// server's stream frame by frame: it must hold nothing the case does not
// allow (no echo of a bad frame, no pong to a ping after it), and its
// first close frame must carry C, within 5 s (2 s where the case says
// so). The client then answers with its own close frame, unless it sent
// one already, as RFC 6455 §5.5.1 has it, and reads until the server
// closes the TCP connection, which it must within 3 s (§7.1.1; a reset
// counts): nothing at all may follow the close frame, and the whole
// stream must pass rawws.Parse (with no extension) and
// rawws.CheckClosed. A case that expects echoes checks them byte for
// byte, reassembled from the server's frames and inflated if
// compressed, and then closes with 1000 and expects the same of the
// server's answer.
package wscases

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// Target is what the server under test was configured with.
type Target struct {
	// URL is the echo endpoint, ws://host:port/path on a loopback host.
	URL string
	// ReadLimit is the largest message the server accepts, in bytes of
	// its inflated size; a larger one is to be refused with 1009. A
	// negative value means no limit (the limit cases are skipped).
	ReadLimit int64
	// MaxRequestBytes is the limit on the URL and header bytes of the
	// upgrade request above which it is refused with 431; 0 means not to
	// test it.
	MaxRequestBytes int
	// Compression is set if the server negotiates permessage-deflate.
	Compression bool
}

// Case is one protocol case.
type Case struct {
	ID      string // as Autobahn numbers its sections: "2.4", or "X.1.2"
	Section string // the RFC section that says what is expected
	Desc    string // what is sent and what is expected
	Run     func(ctx context.Context, t Target) error
}

// ErrSkip is wrapped by the error of a case that does not apply to the
// Target (compression off, a size above its limit).
var ErrSkip = errors.New("wscases: skipped")

func skipf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSkip, fmt.Sprintf(format, args...))
}

// caseTimeout bounds one case, whatever it waits for.
const caseTimeout = 30 * time.Second

// Parallel is how many cases Run and RunAll run at once. Most of a case's
// time is spent waiting on the server, so it is more than the cores.
const Parallel = 8

// Result is the outcome of one case.
type Result struct {
	Case    Case
	Err     error // nil if it passed; wraps ErrSkip if it was skipped
	Elapsed time.Duration
}

// Passed reports whether the case passed.
func (r Result) Passed() bool { return r.Err == nil }

// Skipped reports whether the case was skipped.
func (r Result) Skipped() bool { return errors.Is(r.Err, ErrSkip) }

// runCase runs c with its own deadline, turning a panic into an error.
func runCase(ctx context.Context, c Case, tg Target) (res Result) {
	ctx, cancel := context.WithTimeout(ctx, caseTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			res.Err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
		res.Case, res.Elapsed = c, time.Since(start)
	}()
	return Result{Err: c.Run(ctx, tg)}
}

// Run runs cases against tg, Parallel at a time, and returns their
// results in the order of cases. It asserts nothing: a reference run
// against another server reports with it.
func Run(ctx context.Context, tg Target, cases []Case) []Result {
	results := make([]Result, len(cases))
	sem := make(chan struct{}, Parallel)
	var wg sync.WaitGroup
	for i, c := range cases {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = runCase(ctx, c, tg)
		})
	}
	wg.Wait()
	return results
}

// RunAll runs every case of Cases against tg, each as a subtest named by
// its ID, and fails each subtest whose case fails, naming the case's RFC
// section. Cases run Parallel at a time.
//
// The subtests are parallel ones, so they finish only after the calling
// test function returns: call RunAll inside a t.Run of its own, or stop
// the server with t.Cleanup, not defer.
func RunAll(t *testing.T, tg Target) { RunCases(t, tg, Cases()) }

// RunCases is RunAll for the given cases (a subset of Cases, say); it
// too returns before the cases finish.
func RunCases(t *testing.T, tg Target, cases []Case) {
	t.Helper()
	sem := make(chan struct{}, Parallel)
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			// The case starts now, on its own goroutine, so that cases run
			// Parallel at a time whatever -test.parallel is; the subtest
			// only waits for it (t.Parallel lets the loop go on).
			done := make(chan Result, 1)
			go func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				done <- runCase(context.Background(), c, tg)
			}()
			t.Parallel()
			r := <-done
			switch {
			case r.Skipped():
				t.Skip(strings.TrimPrefix(r.Err.Error(), ErrSkip.Error()+": "))
			case r.Err != nil:
				t.Errorf("case %s failed (%s): %s\n\t%v", c.ID, c.Section, c.Desc, r.Err)
			}
		})
	}
}

// Filter returns the cases whose ID starts with one of prefixes, each
// prefix a whole component ("9" matches "9.1.2", not "91").
func Filter(cases []Case, prefixes ...string) []Case {
	var out []Case
	for _, c := range cases {
		for _, p := range prefixes {
			if c.ID == p || strings.HasPrefix(c.ID, p+".") {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// Cases returns every case, in order.
func Cases() []Case {
	var all []Case
	for _, section := range [][]Case{
		framingCases(),
		pingCases(),
		rsvCases(),
		opcodeCases(),
		fragmentCases(),
		utf8Cases(),
		closeCases(),
		limitCases(),
		negotiationCases(),
		compressedCases(),
		findingCases(),
	} {
		all = append(all, section...)
	}
	return all
}

// Table returns results as a markdown table: case, result, what it
// checks, and the failure.
func Table(results []Result) string {
	var sb strings.Builder
	pass, fail, skip := 0, 0, 0
	sb.WriteString("| case | result | time | RFC | description | failure |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		status, msg := "pass", ""
		switch {
		case r.Skipped():
			status, msg = "skip", strings.TrimPrefix(r.Err.Error(), ErrSkip.Error()+": ")
			skip++
		case r.Err != nil:
			status, msg = "**FAIL**", r.Err.Error()
			fail++
		default:
			pass++
		}
		fmt.Fprintf(&sb, "| %s | %s | %.2fs | %s | %s | %s |\n", r.Case.ID, status, r.Elapsed.Seconds(), cell(r.Case.Section), cell(r.Case.Desc), cell(msg))
	}
	fmt.Fprintf(&sb, "\n%d passed, %d failed, %d skipped of %d cases.\n", pass, fail, skip, len(results))
	return sb.String()
}

// cell makes s fit in one markdown table cell.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", `\|`)
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
