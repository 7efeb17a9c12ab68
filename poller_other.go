//go:build !linux

package laf

// canPark: elsewhere than on Linux, an idle socket keeps its goroutine.
const canPark = false

type poller struct{}

func (*poller) park(*Socket) bool { return false }
func (*poller) unpark(*Socket)    {}
func (*poller) forget(*Socket)    {}
