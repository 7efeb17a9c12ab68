package lafprom_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/lafprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// An application serves its Endpoint at /ws and its metrics at /metrics.
// A real one registers on the default registry, in one line, and serves
// promhttp.Handler():
//
//	prometheus.MustRegister(lafprom.NewCollector(ep))
//	http.Handle("/metrics", promhttp.Handler())
//
// This example uses a registry of its own, so that it can run again.
func Example() {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.Send(ctx.Params.Data.String()) // echo
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(lafprom.NewCollector(ep))

	mux := http.NewServeMux()
	mux.Handle("/ws", ep)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer ep.Shutdown(ctx)

	// A client says hello, reads the echo and leaves.
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Write(ctx, websocket.MessageText, []byte("hello"))
	conn.Read(ctx)
	conn.Close(websocket.StatusNormalClosure, "bye")
	// The server counts the close once its side of it is done.
	for ep.Stats().Closes[laf.CausePeer] == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}

	// Scrape, and show the laf series that are not zero.
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "laf_") && !strings.HasSuffix(line, " 0") {
			fmt.Println(line)
		}
	}
	// Output:
	// laf_messages_received_total 1
	// laf_messages_sent_total 1
	// laf_received_bytes_total 5
	// laf_sent_bytes_total 5
	// laf_sockets_closed_total{cause="peer"} 1
	// laf_upgrades_accepted_total 1
}
