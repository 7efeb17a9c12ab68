package bench

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lafgo/laf/bench/internal/load"
	"github.com/lafgo/laf/bench/internal/servers"
)

// keepaliveInterval is the ping interval of TestKeepalive: long enough
// that a loaded machine answers every ping within it.
const keepaliveInterval = time.Second

// TestKeepalive checks what the idle scenario relies on, for every
// contender's keepalive server: it pings idle sockets every interval, the
// idle clients answer, and sockets that answer stay open while sockets
// that do not are closed.
func TestKeepalive(t *testing.T) {
	for _, l := range servers.Libs {
		if l.NewKeepalive == nil {
			continue
		}
		t.Run(l.Name, func(t *testing.T) {
			t.Parallel()
			s := l.NewKeepalive(keepaliveInterval)
			srv := httptest.NewServer(s)
			defer srv.Close()
			target, err := load.NewTarget([]string{strings.TrimPrefix(srv.URL, "http://")})
			if err != nil {
				t.Fatal(err)
			}
			defer target.CloseIdle()

			const n, silentN = 20, 5
			ic, err := target.DialIdle(n, false, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer ic.Stop()
			silent, err := target.DialIdle(silentN, true, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Stop()

			// Every answering socket gets two pings; every silent one is
			// closed by the server.
			deadline := time.Now().Add(time.Minute)
			for ic.MinPings() < 2 || silent.Closed() < silentN {
				if time.Now().After(deadline) {
					t.Fatalf("after a minute: answering sockets got at least %d pings each, %d of %d silent sockets closed",
						ic.MinPings(), silent.Closed(), silentN)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if c := ic.Closed(); c != 0 {
				t.Fatalf("the server closed %d sockets that answered every ping", c)
			}
			if e := ic.Errors(); e != 0 {
				t.Fatalf("%d pongs not written or frames not understood", e)
			}
			if silent.Pings() < silentN {
				t.Fatalf("silent sockets got %d pings before being closed, want at least one each", silent.Pings())
			}
			for deadline := time.Now().Add(30 * time.Second); s.Conns() != n; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("Conns() = %d, want the %d answering sockets", s.Conns(), n)
				}
			}
		})
	}
}
