module github.com/lafgo/laf/bench

go 1.26.8

require github.com/lafgo/laf v0.0.0-00010101000000-000000000000

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/klauspost/compress v1.17.9 // indirect
	github.com/lxzan/gws v1.8.9 // indirect
	github.com/olahol/melody v1.1.4 // indirect
)

replace github.com/lafgo/laf => ../
