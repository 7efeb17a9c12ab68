// Command server runs one contender's echo-and-broadcast WebSocket server
// for the load client, in its own process so that its memory and CPU can
// be read from /proc.
//
//	server -lib laf -addr 127.0.0.1:0 -listeners 4 [-notsent-lowat 4096] [-compress] [-ping 5s] [-nofile 110000]
//
// It prints "listening ADDR,ADDR,..." on its first line of output, then
// serves on every listener:
//
//	GET  /ws                          the WebSocket endpoint
//	POST /broadcast?size=1024&seq=N[&payload=chat]
//	                                  broadcast one text message of size bytes
//	GET  /stats[?gc=1|free=1|lite=1]  {"conns","goroutines",...} as JSON
//	GET  /latest[?slow=1]             the latest-state room's WebSocket endpoint
//	GET  /latest/stats                the room's servers.LatestStats as JSON
//	/debug/pprof/                     profiles
//
// The broadcast payload holds seq and the time the broadcast began, so
// the client can tell when every socket has it. /stats?gc=1 runs
// runtime.GC first; free=1 runs debug.FreeOSMemory (a GC that also
// returns freed memory to the OS, for RSS readings); lite=1 reports only
// conns, goroutines and, from runtime/metrics, the GC cycles, the heap
// goal and the bytes of heap objects (live and not yet swept), without
// stopping the world (the idle scenario polls it every 100 ms). With payload=chat,
// the broadcast is JSON-like chat traffic (wire.NewChat) rather than
// padding.
//
// With -compress, it runs the contender's compressing server (laf with
// WithCompression, gws with PermessageDeflate; the others have none),
// and /stats also has "compressed", the messages laf compressed. The /latest routes
// exist for the contenders that have a latest-state server (laf, gws):
// while the room has sockets, it gets a frame 30 times a second.
//
// With -ping D, it runs the contender's keepalive server instead
// (servers.Lib.NewKeepalive: a ping every D, by the library's lightest
// documented pattern), as the idle scenarios do. -nofile N raises the
// open-file limit to N, the hard limit too if the process may.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lafgo/laf/bench/internal/proc"
	"github.com/lafgo/laf/bench/internal/servers"
	"github.com/lafgo/laf/bench/internal/wire"
)

func main() {
	lib := flag.String("lib", "laf", "contender: "+names())
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on; with port 0, each listener gets its own port")
	listeners := flag.Int("listeners", 4, "number of listeners (ports)")
	lowat := flag.Int("notsent-lowat", 0, "TCP_NOTSENT_LOWAT of accepted connections, bytes (0: the kernel's default); the latest-state scenario sets it")
	compress := flag.Bool("compress", false, "run the contender's server with permessage-deflate (laf and gws only); the compression scenarios set it")
	ping := flag.Duration("ping", 0, "run the contender's keepalive server, pinging every socket at this interval (the idle scenarios set it)")
	nofile := flag.Uint64("nofile", 0, "raise RLIMIT_NOFILE to this many open files (the hard limit too, if permitted)")
	flag.Parse()
	if *nofile > 0 {
		if _, err := proc.RaiseNofile(*nofile); err != nil {
			log.Fatal(err)
		}
	}

	l, err := servers.Find(*lib)
	if err != nil {
		log.Fatal(err)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		log.Fatalf("refusing to listen on %s: loopback addresses only", host)
	}
	srv := l.New()
	if *ping > 0 {
		if l.NewKeepalive == nil {
			log.Fatalf("%s has no keepalive server", l.Name)
		}
		srv = l.NewKeepalive(*ping)
	}
	if *compress {
		if l.NewCompressed == nil {
			log.Fatalf("%s has no compressing server", l.Name)
		}
		srv = l.NewCompressed()
	}

	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv)
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.Atoi(r.URL.Query().Get("size"))
		if err != nil || size < wire.HeaderLen || size > servers.ReadLimit {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		seq, _ := strconv.ParseUint(r.URL.Query().Get("seq"), 10, 64)
		var p []byte
		if r.URL.Query().Get("payload") == "chat" {
			p = wire.NewChat(wire.Broadcast, size, seq, 0)
		} else {
			p = wire.New(wire.Broadcast, size, seq, 0)
		}
		wire.Stamp(p, seq, time.Now().UnixNano())
		srv.Broadcast(p)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("lite") == "1" {
			ms := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/goal:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
			metrics.Read(ms)
			json.NewEncoder(w).Encode(map[string]any{"conns": srv.Conns(), "goroutines": runtime.NumGoroutine(),
				"gcs": ms[0].Value.Uint64(), "heap_goal": ms[1].Value.Uint64(), "heap_objects": ms[2].Value.Uint64()})
			return
		}
		switch {
		case r.URL.Query().Get("free") == "1":
			debug.FreeOSMemory()
		case r.URL.Query().Get("gc") == "1":
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := map[string]any{
			"lib":         l.Name,
			"conns":       srv.Conns(),
			"goroutines":  runtime.NumGoroutine(),
			"heap_inuse":  ms.HeapInuse,
			"stack_inuse": ms.StackInuse,
			"sys":         ms.Sys,
			"num_gc":      ms.NumGC,
		}
		if c, ok := srv.(servers.Compressor); ok {
			st["compressed"] = c.Compressed()
		}
		json.NewEncoder(w).Encode(st)
	})
	if l.NewLatest != nil {
		lt := l.NewLatest()
		mux.Handle("GET /latest", lt)
		mux.HandleFunc("GET /latest/stats", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(lt.Stats())
		})
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)

	var addrs []string
	for i := 0; i < *listeners; i++ {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		if *lowat > 0 {
			ln = servers.NotSentLowat(ln, *lowat)
		}
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(discard{}, "", 0)}
		go hs.Serve(ln)
		if !strings.HasSuffix(*addr, ":0") {
			break // a fixed port can be listened on once
		}
	}
	fmt.Printf("listening %s\n", strings.Join(addrs, ","))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	os.Exit(0)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func names() string {
	var n []string
	for _, l := range servers.Libs {
		n = append(n, l.Name)
	}
	return strings.Join(n, ", ")
}
