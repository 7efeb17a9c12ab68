package main

import (
	"testing"

	"github.com/lafgo/laf/laftest"
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
