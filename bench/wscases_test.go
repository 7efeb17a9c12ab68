package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lafgo/laf/internal/wscases"
	"github.com/lxzan/gws"
)

// TestWSCases runs laf's protocol case suite (internal/wscases) against a
// gws echo server configured as laf's TestWSCases configures laf: a read
// limit of 1 MiB, and a second of 32 KiB for the limit cases;
// permessage-deflate without context takeover, compressing every
// message; UTF-8 checked; and a 32 KiB cap on the upgrade request's URL
// and headers, which for gws is net/http's MaxHeaderBytes.
//
// It is a reference, not an assertion: it never fails for a case gws
// fails. It logs a table of every case's outcome, and writes it as
// markdown to the file named by LAF_CASES_OUT if that is set.
func TestWSCases(t *testing.T) {
	ctx := context.Background()
	general := wscases.Target{URL: gwsCaseServer(t, 1<<20), ReadLimit: 1 << 20, MaxRequestBytes: 32 << 10, Compression: true}
	small := wscases.Target{URL: gwsCaseServer(t, 32<<10), ReadLimit: 32 << 10, Compression: true}
	results := wscases.Run(ctx, general, wscases.Cases())
	for _, r := range wscases.Run(ctx, small, wscases.Filter(wscases.Cases(), "9", "13.7", "X.4", "X.5", "X.6")) {
		r.Case.ID += " (32 KiB)"
		results = append(results, r)
	}
	table := wscases.Table(results)
	if n := gwsPanics.Load(); n > 0 {
		table += fmt.Sprintf("\ngws panicked %d times reading a frame (recovered here; in a server it would crash the process).\n", n)
	}
	t.Log("gws " + gwsVersion() + " against the wscases suite:\n" + table)
	if out := os.Getenv("LAF_CASES_OUT"); out != "" {
		doc := "# wscases against gws " + gwsVersion() + "\n\n" +
			"Each case is described in internal/wscases; `(32 KiB)` marks a run against the server with the smaller read limit.\n\n" + table
		if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
			t.Errorf("writing LAF_CASES_OUT: %v", err)
		}
	}
}

// gwsPanics counts the panics of gws's read loops.
var gwsPanics atomic.Int32

// gwsCaseServer starts a gws echo server with read limit limit and
// returns its ws:// URL.
func gwsCaseServer(t *testing.T, limit int) string {
	up := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{
		ReadMaxPayloadSize: limit,
		CheckUtf8Enabled:   true,
		Logger:             gwsQuiet{},
		PermessageDeflate: gws.PermessageDeflate{
			Enabled:               true,
			Threshold:             1,
			ServerContextTakeover: false,
			ClientContextTakeover: false,
		},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go func() {
			// gws v1.8.9 panics on a frame length with the top bit set
			// (case X.5): recover, so that the panic fails only that case,
			// as a dropped connection, instead of the whole test binary.
			defer func() {
				if p := recover(); p != nil {
					gwsPanics.Add(1)
					c.NetConn().Close()
				}
			}()
			c.ReadLoop()
		}()
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.MaxHeaderBytes = 32 << 10
	srv.Start()
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(c *gws.Conn, m *gws.Message) {
	c.WriteMessage(m.Opcode, m.Bytes())
	m.Close()
}

type gwsQuiet struct{}

func (gwsQuiet) Error(...any) {}

// gwsVersion is the version of gws that bench's go.mod requires.
func gwsVersion() string {
	b, _ := os.ReadFile("go.mod")
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/lxzan/gws" {
			return f[1]
		}
	}
	return "(version unknown)"
}
