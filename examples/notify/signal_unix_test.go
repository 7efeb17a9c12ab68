//go:build unix

package main

import (
	"context"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On SIGTERM, as main wires it, every tab is closed with 1001 and serve
// returns once their close events have.
func TestShutdownOnSIGTERM(t *testing.T) {
	a := newApp()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, a.mux, a.ep) }()

	dial := func() *laftest.Conn {
		ws, _, err := websocket.Dial(context.Background(), "ws://"+ln.Addr().String()+"/ws?user=alice", nil)
		require.NoError(t, err)
		return greeted(t, laftest.Wrap(t, ws), "alice")
	}
	tab1, tab2 := dial(), dial()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	tab1.ExpectClose(websocket.StatusGoingAway)
	tab2.ExpectClose(websocket.StatusGoingAway)
	require.NoError(t, <-served)
	assert.Equal(t, uint64(2), a.ep.Stats().Closes[laf.CauseShutdown])
}
