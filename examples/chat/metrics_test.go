package main

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// GET /metrics serves valid Prometheus text with laf's counters.
func TestMetrics(t *testing.T) {
	ep, handler := newChat(chat)
	srv := laftest.ServeHandler(t, handler, ep)
	alice := dial(t, srv, "lobby", "alice")
	next(alice)
	bob := dial(t, srv, "lobby", "bob")
	next(bob)
	bob.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool { return ep.Stats().Closes[laf.CausePeer] == 1 }, laftest.DefaultTimeout, time.Millisecond)

	err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(`
# HELP laf_sockets_live WebSocket connections open now.
# TYPE laf_sockets_live gauge
laf_sockets_live 1
# HELP laf_upgrades_accepted_total WebSocket upgrades accepted.
# TYPE laf_upgrades_accepted_total counter
laf_upgrades_accepted_total 2
`), "laf_sockets_live", "laf_upgrades_accepted_total")
	require.NoError(t, err)

	// The whole page parses, and says why bob's socket closed.
	require.NoError(t, testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(`
# HELP laf_sockets_closed_total WebSocket connections closed, by the cause of their close.
# TYPE laf_sockets_closed_total counter
laf_sockets_closed_total{cause="abnormal"} 0
laf_sockets_closed_total{cause="handler_error"} 0
laf_sockets_closed_total{cause="idle"} 0
laf_sockets_closed_total{cause="lifetime"} 0
laf_sockets_closed_total{cause="peer"} 1
laf_sockets_closed_total{cause="ping_timeout"} 0
laf_sockets_closed_total{cause="policy"} 0
laf_sockets_closed_total{cause="protocol"} 0
laf_sockets_closed_total{cause="read_limit"} 0
laf_sockets_closed_total{cause="server"} 0
laf_sockets_closed_total{cause="shutdown"} 0
laf_sockets_closed_total{cause="slow_consumer"} 0
`), "laf_sockets_closed_total"))
}
