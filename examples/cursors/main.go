// Command cursors is a multiplayer cursor board: everyone on a board sees
// everyone else's pointer, live. It shows laf's real-time state pattern:
//
//   - each socket's latest position kept on the socket (Socket.Set);
//   - a 30 Hz ticker per board, started by WithRoomHook when the board
//     gets its first member and stopped when it loses its last;
//   - cursor frames sent with laf.Latest, so that a client that reads
//     slowly gets the newest frame in place of the one still queued for
//     it, never a backlog (and is not closed as a slow consumer);
//   - member lists sent as plain messages, which are never replaced or
//     dropped: every client gets every one, in order;
//   - WithReadIdleTimeout to close clients that stopped sending while
//     the board keeps streaming to them.
//
// Run it and open the board in two windows:
//
//	go run ./examples/cursors -addr localhost:8080
//	open 'http://localhost:8080/?board=demo&name=alice'
//
// # Protocol
//
// Connect to /ws?board=B&name=N, each 1 to 32 bytes (else 400). Numbers
// are little-endian.
//
// Client to server: binary messages of 8 bytes, the pointer's position,
//
//	offset 0  x  float32  fraction of the board's width,  0 (left) to 1
//	offset 4  y  float32  fraction of the board's height, 0 (top) to 1
//
// up to 60 a second. Values outside [0, 1] are clamped. Anything else
// (text, another length, NaN) closes the socket with 1003. A client that
// sends nothing for -read-idle (10 s) is closed with 1000 "idle"; the page
// sends its position again every 2 s while it is open.
//
// Server to client, in this order per socket:
//
//	text {"type":"hello","id":7,"board":"B","name":"N"}
//	    first: the id of the socket's own cursor.
//	text {"type":"members","board":"B","members":[{"id":7,"name":"N"},...]}
//	    the board's members, by id, each time one joins or leaves.
//	binary cursor frames, 30 a second while the board has members:
//	    offset 0  seq    uint32  frame number on this board, from 1
//	    offset 4  count  uint32  cursors that follow
//	    offset 8  count records of 12 bytes:
//	              id uint32, x float32, y float32
//	    Only members that have sent a position have a record.
//
// Frames and member lists interleave. A client that falls behind skips
// frames: the frame it gets is the newest, and its seq jumps. Member
// lists are never skipped; one that would take a socket over its send
// queue budget (256 messages or 1 MiB) closes it as a slow consumer with
// 1008 instead.
package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lafgo/laf"
)

const (
	frameRate = 30 // cursor frames per second per board
	maxName   = 32 // longest board or user name, bytes
	posSize   = 8  // bytes of a position message
	recSize   = 12 // bytes of a cursor record in a frame
	frameHead = 8  // bytes of a frame's header
)

// Keys of the values kept on each socket with Socket.Set.
const (
	keyMember = "member" // member, set once on connection
	keyPos    = "pos"    // pos, the latest position, set on every message
)

type member struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
}

type pos struct{ x, y float32 }

type helloMsg struct {
	Type  string `json:"type"` // "hello"
	ID    uint32 `json:"id"`
	Board string `json:"board"`
	Name  string `json:"name"`
}

type membersMsg struct {
	Type    string   `json:"type"` // "members"
	Board   string   `json:"board"`
	Members []member `json:"members"`
}

// app is the cursor board server.
type app struct {
	ep   *laf.Endpoint
	mux  *http.ServeMux
	tick time.Duration // between frames

	ids atomic.Uint32 // the last cursor id given

	mu      sync.Mutex
	tickers map[string]*ticker // by board
	running atomic.Int64       // ticker goroutines running

	// membersMu orders the member lists: each is computed and queued
	// after the previous, so the last one a client gets is current.
	membersMu sync.Mutex
}

// ticker is a board's frame loop.
type ticker struct {
	stop chan struct{} // closed to stop it
	done chan struct{} // closed once it has stopped
}

func newApp(opts ...laf.Option) *app {
	a := &app{tick: time.Second / frameRate, tickers: make(map[string]*ticker)}
	base := []laf.Option{
		laf.WithAuth(identify),
		laf.WithRoomHook(a.roomHook),
		laf.WithReadLimit(1 << 10), // positions are 8 bytes
	}
	a.ep = laf.Handler(a.ws, append(base, opts...)...)
	a.mux = http.NewServeMux()
	a.mux.Handle("GET /ws", a.ep)
	a.mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			Endpoint laf.Stats `json:"endpoint"`
			Tickers  int64     `json:"tickers"`
		}{a.ep.Stats(), a.running.Load()})
	})
	a.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	return a
}

// identify takes the board and the user's name from the URL; a real app
// would check a session here and refuse with 401.
func identify(r *http.Request) (string, error) {
	q := r.URL.Query()
	board, name := q.Get("board"), q.Get("name")
	if board == "" || len(board) > maxName || name == "" || len(name) > maxName {
		return "", &laf.HTTPError{Status: http.StatusBadRequest, Message: "board and name must be 1 to 32 bytes"}
	}
	return name, nil
}

func (a *app) ws(ctx *laf.FunctionContext) error {
	s := ctx.Socket
	switch ctx.Method {
	case laf.MethodConnection:
		board := ctx.Request.URL.Query().Get("board")
		m := member{ID: a.ids.Add(1), Name: s.Identity()}
		s.Set(keyMember, m)
		// The hello goes first: nothing reaches the socket before it joins.
		if err := s.SendJSON(helloMsg{Type: "hello", ID: m.ID, Board: board, Name: m.Name}); err != nil {
			return err
		}
		s.Join(board) // the board's first member starts its ticker (roomHook)
		a.sendMembers(board)
	case laf.MethodMessage:
		d := ctx.Params.Data
		if !ctx.Params.IsBinary || len(d) != posSize {
			s.Close(1003, "want 8-byte binary positions")
			return nil
		}
		x := math.Float32frombits(binary.LittleEndian.Uint32(d[0:]))
		y := math.Float32frombits(binary.LittleEndian.Uint32(d[4:]))
		if math.IsNaN(float64(x)) || math.IsNaN(float64(y)) {
			s.Close(1003, "position is NaN")
			return nil
		}
		s.Set(keyPos, pos{clamp(x), clamp(y)})
	case laf.MethodClose:
		// The socket has left its board by now (and if it was the last,
		// the ticker has stopped): tell the others.
		for _, board := range s.Rooms() {
			a.sendMembers(board)
		}
	}
	return nil
}

func clamp(v float32) float32 { return min(max(v, 0), 1) }

// sendMembers sends the board's member list to the board, as a plain
// message: Latest never replaces it, and no slow policy drops it.
func (a *app) sendMembers(board string) {
	a.membersMu.Lock()
	defer a.membersMu.Unlock()
	var ms []member
	a.ep.RangeRoom(board, func(s *laf.Socket) bool {
		if m, ok := s.Get(keyMember); ok {
			ms = append(ms, m.(member))
		}
		return true
	})
	if len(ms) == 0 {
		return
	}
	slices.SortFunc(ms, func(a, b member) int { return cmp.Compare(a.ID, b.ID) })
	msg, err := laf.JSON(membersMsg{Type: "members", Board: board, Members: ms})
	if err != nil {
		return
	}
	// ErrNotFound only if everyone left meanwhile; their close events
	// send lists of their own.
	a.ep.SendRoom(context.Background(), board, msg)
}

// roomHook starts a board's ticker when it gets its first member and
// stops it when it loses its last. laf calls it one change at a time, in
// order, so a board's stop always comes before its next start.
func (a *app) roomHook(board string, occupied bool) {
	if occupied {
		t := &ticker{stop: make(chan struct{}), done: make(chan struct{})}
		a.mu.Lock()
		a.tickers[board] = t
		a.mu.Unlock()
		a.running.Add(1)
		go a.stream(board, t)
		return
	}
	a.mu.Lock()
	t := a.tickers[board]
	delete(a.tickers, board)
	a.mu.Unlock()
	if t != nil {
		close(t.stop)
		<-t.done // promptly: a tick only queues
	}
}

// stream sends the board a frame of every cursor each tick until stopped.
func (a *app) stream(board string, t *ticker) {
	defer close(t.done)
	defer a.running.Add(-1)
	tk := time.NewTicker(a.tick)
	defer tk.Stop()
	var seq uint32
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
		}
		seq++
		frame := a.frame(board, seq)
		// The frame goes to every member as the board's latest state: a
		// member whose previous frame is still queued gets this one in
		// its place. Owned hands the slice over: it is not touched again.
		a.ep.SendRoom(context.Background(), board, laf.Latest("cursors", laf.Owned(frame, true /* binary */)))
	}
}

// frame encodes the board's cursors (see the package doc).
func (a *app) frame(board string, seq uint32) []byte {
	f := make([]byte, frameHead, frameHead+recSize*a.ep.RoomLen(board))
	var n uint32
	a.ep.RangeRoom(board, func(s *laf.Socket) bool {
		m, ok1 := s.Get(keyMember)
		p, ok2 := s.Get(keyPos)
		if !ok1 || !ok2 {
			return true // no position yet
		}
		c := p.(pos)
		f = binary.LittleEndian.AppendUint32(f, m.(member).ID)
		f = binary.LittleEndian.AppendUint32(f, math.Float32bits(c.x))
		f = binary.LittleEndian.AppendUint32(f, math.Float32bits(c.y))
		n++
		return true
	})
	binary.LittleEndian.PutUint32(f[0:], seq)
	binary.LittleEndian.PutUint32(f[4:], n)
	return f
}

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	origins := flag.String("origins", "", "comma-separated origin patterns allowed to connect cross-origin")
	readIdle := flag.Duration("read-idle", 10*time.Second, "close clients that send nothing for this long (0 disables)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := []laf.Option{laf.WithLogger(logger), laf.WithReadIdleTimeout(*readIdle)}
	if *origins != "" {
		opts = append(opts, laf.WithOriginPatterns(strings.Split(*origins, ",")...))
	}
	a := newApp(opts...)
	srv := &http.Server{
		Addr:              *addr,
		Handler:           a.mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second, // keep-alive HTTP connections, not WebSockets
		MaxHeaderBytes:    16 << 10,
		// No ReadTimeout or WriteTimeout: they would cut WebSockets,
		// which have the read idle timeout and pings instead.
	}
	// http.Server.Shutdown does not wait for hijacked connections: the
	// endpoint's own Shutdown sends 1001 and waits for the close events,
	// which stop the boards' tickers.
	shutdownDone := make(chan struct{})
	srv.RegisterOnShutdown(func() {
		defer close(shutdownDone)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.ep.Shutdown(ctx)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	logger.Info("listening", "url", "http://"+*addr+"/?board=demo&name=alice")
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
	// RegisterOnShutdown's function runs in its own goroutine: wait for it.
	<-shutdownDone
	logger.Info("stopped", "tickers", a.running.Load())
}
