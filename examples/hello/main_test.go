package main

import (
	"context"
	"net"
	"testing"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHello(t *testing.T) {
	srv := laftest.NewServer(t, hello)
	c := srv.Dial(t)
	c.ExpectText("hi connection succeed")
	c.Send("hi")
	c.ExpectText("I have received your message")
	c.Send("again")
	c.ExpectText("I have received your message")
}

func TestServeShutsDownWhenTheContextEnds(t *testing.T) {
	ep := laf.Handler(hello)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, ep, ep) }()

	ws, _, err := websocket.Dial(context.Background(), "ws://"+ln.Addr().String(), nil)
	require.NoError(t, err)
	c := laftest.Wrap(t, ws)
	c.ExpectText("hi connection succeed")
	cancel()
	c.ExpectClose(websocket.StatusGoingAway)
	require.NoError(t, <-served)
	assert.Equal(t, uint64(1), ep.Stats().Closes[laf.CauseShutdown])
}
