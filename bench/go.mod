module github.com/lafgo/laf/bench

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/lafgo/laf v0.0.0-00010101000000-000000000000
	github.com/lxzan/gws v1.8.9
	github.com/olahol/melody v1.1.4
)

require (
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/lafgo/laf => ../
