package main

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSoak is the soak's test form, for CI: it runs the soak for
// $LAF_SOAK (such as 60s) with the command's defaults and fails on any
// invariant that fails, listing the goroutines left over, as goleak would.
// It writes summary.md, rss.svg and samples.csv to $LAF_SOAK_OUT if set.
// Without LAF_SOAK it is skipped.
//
//	LAF_SOAK=60s go test -race -count=1 -run '^TestSoak$' -timeout 10m ./cmd/soak
func TestSoak(t *testing.T) {
	env := os.Getenv("LAF_SOAK")
	if env == "" {
		t.Skip("set LAF_SOAK to a duration (LAF_SOAK=60s) to run the soak")
	}
	d, err := time.ParseDuration(env)
	if err != nil {
		t.Fatalf("LAF_SOAK=%q: %v", env, err)
	}
	cfg := defaultConfig()
	cfg.Duration = d
	cfg.Out = os.Getenv("LAF_SOAK_OUT")
	if raceEnabled {
		// The race detector makes every goroutine several times slower and
		// costlier: lighten the steady load, not the close paths.
		cfg.Echo /= 2
		cfg.NoRead = 2
		cfg.RSSNotJudged = "under -race, whose shadow memory grows with every goroutine created"
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	res, err := run(t.Context(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	md := res.markdown("rss.svg")
	if cfg.Out != "" {
		if err := res.write(cfg.Out, md); err != nil {
			t.Error(err)
		}
	}
	for _, c := range res.checks {
		if c.OK {
			t.Logf("pass: %s: %s", c.Name, c.Detail)
		} else {
			t.Errorf("FAIL: %s: %s", c.Name, c.Detail)
		}
	}
	if len(res.examples) > 0 {
		t.Logf("violations, first examples:\n%s", strings.Join(res.examples, "\n"))
	}
	if res.leaked != "" {
		t.Errorf("goroutines left over:\n%s", res.leaked)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestShortRun runs the whole soak for a few seconds with a light load, so
// that `go test ./...` checks that it runs, drains and reports. The close
// paths that take longer than the run are not required to show.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cfg := defaultConfig()
	cfg.Duration = 3 * time.Second
	cfg.Echo, cfg.Churn, cfg.NoRead, cfg.Flood = 4, 20, 1, 1
	cfg.Out = t.TempDir()
	res, err := run(context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.write(cfg.Out, res.markdown("rss.svg")); err != nil {
		t.Fatal(err)
	}
	for _, c := range res.checks {
		// RSS is not flat over the second half of a 3-second run: it
		// is still climbing.
		if !c.OK && !strings.HasPrefix(c.Name, "RSS flat") {
			t.Errorf("FAIL: %s: %s", c.Name, c.Detail)
		}
	}
	if res.connEvents == 0 || res.closeEvents != res.connEvents {
		t.Errorf("opened %d, closed %d", res.connEvents, res.closeEvents)
	}
	for _, name := range []string{"summary.md", "rss.svg", "samples.csv"} {
		if _, err := os.Stat(filepath.Join(cfg.Out, name)); err != nil {
			t.Error(err)
		}
	}
	svg, _ := os.ReadFile(filepath.Join(cfg.Out, "rss.svg"))
	checkXML(t, svg)
}

func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := d.Token()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("SVG is not well-formed XML: %v", err)
			}
			return
		}
	}
}

func TestRSSTrend(t *testing.T) {
	var flat, growing []sample
	for i := range 100 {
		ts := time.Duration(i) * time.Second
		flat = append(flat, sample{T: ts, RSS: 100 << 20})
		growing = append(growing, sample{T: ts, RSS: 100<<20 + int64(i)*(1<<20)})
	}
	if tr := rssTrend(flat, 50*time.Second, 100*time.Second); tr.N != 50 || tr.Slope != 0 || tr.Growth != 0 || tr.QuarterRatio != 1 {
		t.Errorf("flat: %+v", tr)
	}
	tr := rssTrend(growing, 50*time.Second, 100*time.Second)
	if d := tr.Slope - (1 << 20); d > 1 || d < -1 {
		t.Errorf("slope %f, want 1 MiB/s", tr.Slope)
	}
	if d := tr.Growth - 49*(1<<20); d > 1 || d < -1 {
		t.Errorf("growth %f, want 49 MiB", tr.Growth)
	}
}

func TestPlot(t *testing.T) {
	var s []sample
	for i := range 5000 {
		s = append(s, sample{T: time.Duration(i) * time.Second, RSS: int64(20+i%7) << 20, HeapAlloc: 3 << 20, Goroutines: 200 + i%50, Live: 80})
	}
	svg := plotSVG(s, `a <title> & "quotes"`, 2500*time.Second, 4990*time.Second, rssTrend(s, 2500*time.Second, 4990*time.Second))
	checkXML(t, []byte(svg))
	if n := strings.Count(svg, "<polyline"); n != 5 {
		t.Errorf("%d polylines, want 5", n)
	}
	if len(svg) > 200<<10 {
		t.Errorf("SVG of %d bytes: decimation did not work", len(svg))
	}
}

func TestKinds(t *testing.T) {
	for k := range numKinds {
		if kinds[k].name == "" || kindOf(kinds[k].name) != k {
			t.Errorf("kind %d: name %q does not round-trip", k, kinds[k].name)
		}
	}
	if got := num(1234567); got != "1,234,567" {
		t.Errorf("num = %q", got)
	}
	if err := func() error { c := defaultConfig(); return c.validate() }(); err != nil {
		t.Errorf("default config: %v", err)
	}
}
