package laf_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// snippetFile holds the compiled copies of README.md's Go snippets.
const snippetFile = "readme_snippets_test.go"

// TestREADMESnippetsCompile fails unless every ```go block of README.md
// appears, as a contiguous run of lines, in snippetFile, which this
// package's tests compile. The run must be exactly one copy, fenced there
// by a "// ```go" and a "// ```" comment line, so that a snippet cut
// short is caught too, and every copy must be in README.md, in the same
// order, so that none is left stale. Lines are compared with leading and
// trailing white space ignored and inner runs of it collapsed, so
// indentation, the alignment of comments and blank lines at the end do
// not matter; any other change does, other blank lines included.
func TestREADMESnippetsCompile(t *testing.T) {
	blocks := fencedBlocks(t, "README.md", "```go", "```")
	copies := fencedBlocks(t, snippetFile, "// ```go", "// ```")
	// A parser that found nothing would pass anything.
	require.GreaterOrEqual(t, len(blocks), 5, "README.md's ```go blocks")

	for i, b := range blocks {
		if i < len(copies) && slices.Equal(b.lines, copies[i].lines) {
			continue
		}
		t.Errorf("README.md:%d: this ```go block is not the %s copy of %s (%s):\n%s",
			b.start, ordinal(i+1), snippetFile, closest(b, copies), strings.Join(b.raw, "\n"))
	}
	for _, c := range copies[min(len(blocks), len(copies)):] {
		t.Errorf("%s:%d: a copy of no ```go block of README.md", snippetFile, c.start)
	}
}

// TestREADMESnippetCheckCatchesEdits checks the comparison: a snippet with
// any one line changed, left out or added is not its copy.
func TestREADMESnippetCheckCatchesEdits(t *testing.T) {
	for _, b := range fencedBlocks(t, "README.md", "```go", "```") {
		for i, line := range b.lines {
			changed := slices.Clone(b.lines)
			changed[i] = line + "x"
			assert.False(t, slices.Equal(b.lines, changed))
			assert.False(t, slices.Equal(b.lines, slices.Delete(slices.Clone(b.lines), i, i+1)))
			assert.False(t, slices.Equal(b.lines, slices.Insert(slices.Clone(b.lines), i, "x")))
		}
		assert.Equal(t, normalize([]string{"\tx :=  1 // a", "", "  }  "}), []string{"x := 1 // a", "", "}"})
	}
}

// A fenced block is the lines between an opening and a closing fence.
type fenced struct {
	start int      // the line number of the opening fence
	raw   []string // the lines as written
	lines []string // normalized
}

// fencedBlocks returns the blocks of file between a line that is open and
// one that is end, ignoring white space around them.
func fencedBlocks(t *testing.T, file, open, end string) []fenced {
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var blocks []fenced
	var cur *fenced
	for i, line := range strings.Split(string(b), "\n") {
		switch fence := strings.TrimSpace(line); {
		case cur == nil && fence == open:
			cur = &fenced{start: i + 1}
		case cur == nil && strings.HasPrefix(fence, open):
			t.Errorf("%s:%d: %q: only %q blocks are checked", file, i+1, fence, open)
		case cur != nil && fence == end:
			require.NotEmpty(t, cur.raw, "%s:%d: an empty block", file, cur.start)
			cur.lines = normalize(cur.raw)
			// gofmt puts a blank line between a declaration and a comment.
			for len(cur.lines) > 0 && cur.lines[len(cur.lines)-1] == "" {
				cur.lines = cur.lines[:len(cur.lines)-1]
			}
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.raw = append(cur.raw, line)
		}
	}
	require.Nil(t, cur, "%s ends inside a block", file)
	return blocks
}

func normalize(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.Join(strings.Fields(l), " ")
	}
	return out
}

// closest names the copy that shares the most leading lines with b, and
// the first line in which they differ.
func closest(b fenced, copies []fenced) string {
	best, at := -1, 0
	for i, c := range copies {
		n := 0
		for n < len(b.lines) && n < len(c.lines) && b.lines[n] == c.lines[n] {
			n++
		}
		if n > at || best < 0 {
			best, at = i, n
		}
	}
	switch {
	case best < 0:
		return "it has no copies"
	case at == 0:
		return "no copy starts with its first line"
	case at == len(b.lines):
		return fmt.Sprintf("the copy at %s:%d goes on after its last line", snippetFile, copies[best].start)
	case at == len(copies[best].lines):
		return fmt.Sprintf("the copy at %s:%d stops before README.md:%d", snippetFile, copies[best].start, b.start+1+at)
	}
	return fmt.Sprintf("the copy at %s:%d has %q for README.md:%d, %q",
		snippetFile, copies[best].start, copies[best].lines[at], b.start+1+at, b.lines[at])
}

func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return fmt.Sprintf("%dth", n)
	case n%10 == 1:
		return fmt.Sprintf("%dst", n)
	case n%10 == 2:
		return fmt.Sprintf("%dnd", n)
	case n%10 == 3:
		return fmt.Sprintf("%drd", n)
	}
	return fmt.Sprintf("%dth", n)
}
