// Package servers holds one echo-and-broadcast WebSocket server per
// contender, all with the same behaviour: every message is echoed back
// with the same type, and Broadcast sends one text message to every open
// socket the way the library is idiomatically used for it.
package servers

import (
	"fmt"
	"net/http"
	"time"
)

// ReadLimit is the largest message every contender accepts, set to
// laf's and coder/websocket's default so that all refuse the same sizes.
const ReadLimit = 32 << 10

// PingInterval is the keepalive period of the contenders whose library
// (or whose idiomatic hub) pings.
const PingInterval = 30 * time.Second

// QueueLimit is the per-socket outbound budget, in messages, of the
// hand-written hubs (coder, gorilla); laf and melody use their defaults,
// which are also 256.
const QueueLimit = 256

// Server is one contender.
type Server interface {
	// ServeHTTP upgrades the request and serves the socket.
	http.Handler
	// Broadcast queues p as one text message on every open socket and
	// returns without waiting for any socket to write it. p is not
	// modified afterwards.
	Broadcast(p []byte)
	// Conns returns the number of sockets in the broadcast registry.
	Conns() int
}

// Lib describes a contender.
type Lib struct {
	Name string
	// Baseline marks raw coder/websocket, the first ratio columns of the
	// report (laf was built on it once; it is a peer now).
	Baseline bool
	// Peer marks another library than laf: the best peer is the best of
	// these.
	Peer bool
	// EchoOnly marks a variant that runs only in the echo scenarios: in
	// the others it is the same server as the one it varies.
	EchoOnly bool
	// Notes says how the server is built: goroutines per socket,
	// keepalive, broadcast.
	Notes string
	New   func() Server
	// NewLatest, if set, makes the contender's latest-state server (see
	// Latest); LatestNotes says how it is built.
	NewLatest   func() Latest
	LatestNotes string
	// NewCompressed, if set, makes the contender's server with
	// permessage-deflate on (no context takeover, messages of
	// CompressThreshold bytes or more compressed), for the compression
	// scenarios; CompressedNotes says how it is configured.
	NewCompressed   func() Server
	CompressedNotes string
	// NewKeepalive, if set, makes the contender's server with keepalive
	// on, for the idle scenarios: the server pings every socket every
	// interval, the library's lightest documented way, and closes a socket
	// whose pong has not come within KeepaliveWait(interval) of the ping
	// (for a read deadline: of interval+KeepaliveWait after the last pong).
	// KeepaliveNotes says how.
	NewKeepalive   func(interval time.Duration) Server
	KeepaliveNotes string
}

// KeepaliveWait is how long the keepalive servers wait for a pong: one
// ping interval, so that every contender closes a silent peer within two
// intervals of its last pong.
func KeepaliveWait(interval time.Duration) time.Duration { return interval }

// CompressThreshold is the smallest message the compressing servers
// compress: laf's and gws's default alike.
const CompressThreshold = 512

// Compressor is a Server that counts the messages it compressed.
type Compressor interface {
	Compressed() uint64
}

// Libs lists the contenders in report order.
var Libs = []Lib{
	{Name: "laf", New: newLaf, NewLatest: newLafLatest, NewCompressed: newLafCompressed,
		CompressedNotes: "the same server with laf.WithCompression(512): permessage-deflate without context takeover, klauspost/compress flate at BestSpeed, messages of 512 B or more compressed, a broadcast compressed once for every socket",
		LatestNotes:     "sockets Join the room on connection; WithRoomHook starts the 30 Hz ticker with the room's first member and stops it with its last; each frame is SendRoom(laf.Latest(\"state\", laf.Owned(frame, true))): a frame still queued is replaced in place; default queue budget and CloseSlow; no goroutine per socket beyond laf's own",
		NewKeepalive:    newLafPing,
		KeepaliveNotes:  "laf.WithPing(interval, interval): laf's own keepalive, whatever laf does (see laf's keepalive.go)",
		Notes:           "laf.Handler on laf's own protocol engine (internal/wsconn); echo with SendMessage(laf.Owned(Data, IsBinary)) (the Func owns Data: no copy); Endpoint.Broadcast(laf.Text); default ping every 30 s; 1 goroutine per socket while it has something to read or run, none once it has been idle for 0.25-0.5 s (Linux: it parks in an epoll set), writer goroutine only while its queue is non-empty"},
	{Name: "laf-lent", EchoOnly: true, New: NewLafLent,
		Notes: "laf with WithLentData: each message event and its Data are lent to the Func and reused, as coder-reader reuses its buffer; the same echo. Echo scenarios only: elsewhere it is laf"},
	{Name: "coder-read", Baseline: true, Peer: true, New: func() Server { return newCoder(false) },
		NewKeepalive:   func(d time.Duration) Server { return newCoderPing(false, d, KeepaliveWait(d)) },
		KeepaliveNotes: "coder/websocket has no keepalive, and Conn.Ping blocks until the handler's Read has read the pong: one goroutine for all sockets starts, every interval, one goroutine per socket that calls Conn.Ping with a timeout of one interval and closes the socket if it fails",
		Notes:          "raw coder/websocket v1.8.15: Conn.Read then Conn.Write on the handler goroutine, context.Background (no per-frame timer); broadcast by a registry loop into a per-socket queue whose writer goroutine runs only while the queue is non-empty (256 messages, then close); no keepalive (the library has none); 1 goroutine per socket"},
	{Name: "coder-reader", Baseline: true, Peer: true, New: func() Server { return newCoder(true) },
		NewKeepalive:   func(d time.Duration) Server { return newCoderPing(true, d, KeepaliveWait(d)) },
		KeepaliveNotes: "as coder-read",
		Notes:          "as coder-read, but Conn.Reader into a buffer reused across messages"},
	{Name: "gorilla", Peer: true, New: newGorilla,
		NewKeepalive:   func(d time.Duration) Server { return newGorillaPing(d, KeepaliveWait(d)) },
		KeepaliveNotes: "the chat example's: each socket's writePump goroutine has a ticker and writes a ping every interval; the pong handler pushes the read deadline to 2 intervals ahead",
		Notes:          "gorilla/websocket v1.5.3: ReadMessage then WriteMessage under a per-socket mutex; broadcast by a registry loop into each socket's buffered channel (256, close when full) drained by its writePump goroutine, which also pings every 30 s (the chat example's hub); 2 goroutines per socket"},
	{Name: "gws", Peer: true, New: newGws, NewLatest: newGwsLatest, NewCompressed: newGwsCompressed,
		NewKeepalive:    func(d time.Duration) Server { return newGwsPing(d, KeepaliveWait(d)) },
		KeepaliveNotes:  "gws's heartbeat pattern (SetDeadline in OnOpen and at each heartbeat), server-driven: one goroutine for all sockets calls WritePing on each every interval, and OnPong pushes the read deadline to 2 intervals ahead",
		CompressedNotes: "the same server with ServerOption.PermessageDeflate{Enabled, Threshold: 512, ServerContextTakeover: false, ClientContextTakeover: false}: klauspost/compress flate at BestSpeed (gws's default level), messages of 512 B or more compressed, gws.Broadcaster compressing a broadcast once for every socket",
		LatestNotes:     "hand-written, the idiomatic way to conflate with gws (whose WriteAsync queue and Broadcaster keep every message): a registry from OnOpen/OnClose is the room; per socket a \"latest frame\" slot (mutex, pointer) and a writer goroutine that writes what the slot holds with WriteMessage; the ticker puts each frame in every slot, replacing one not yet taken; 1 extra goroutine per socket",
		Notes:           "lxzan/gws v1.8.9: Upgrader + `go ReadLoop()`, echo with WriteMessage in OnMessage; broadcast with gws.Broadcaster over a registry (frame built once, per-socket async write queue); no keepalive (gws has none built in: its idiom is client pings plus read deadlines); 1 goroutine per socket"},
	{Name: "melody", Peer: true, New: newMelody,
		NewKeepalive:   func(d time.Duration) Server { return newMelodyPing(d, KeepaliveWait(d)) },
		KeepaliveNotes: "its built-in ping: Config.PingPeriod = interval, PongWait = 2 intervals (its writePump goroutine's ticker per socket)",
		Notes:          "olahol/melody v1.1.4 (on gorilla): HandleMessage → Session.Write / WriteBinary, Melody.Broadcast; built-in ping (default 54 s period, 60 s pong wait); MaxMessageSize raised from 512 B to 32 KiB; 2 goroutines per socket plus the hub"},
}

// Find returns the contender named name.
func Find(name string) (Lib, error) {
	for _, l := range Libs {
		if l.Name == name {
			return l, nil
		}
	}
	return Lib{}, fmt.Errorf("unknown lib %q", name)
}
