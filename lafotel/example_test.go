package lafotel_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/lafotel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// An application registers its Endpoint on its MeterProvider, whose
// reader (an OTLP exporter's, or Prometheus's) collects laf's metrics with
// the rest. This example reads them back with a manual reader.
func Example() {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.Send(ctx.Params.Data.String()) // echo
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)
	reg, err := lafotel.Register(ep, provider)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Unregister()

	srv := httptest.NewServer(ep)
	defer srv.Close()
	defer ep.Shutdown(ctx)

	// A client says hello, reads the echo and leaves.
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
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

	// Collect, and show the data points that are not zero.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if p.Value == 0 {
					continue
				}
				if cause, ok := p.Attributes.Value(lafotel.CauseKey); ok {
					fmt.Printf("%s{cause=%s} %d %s\n", m.Name, cause.AsString(), p.Value, m.Unit)
				} else {
					fmt.Printf("%s %d %s\n", m.Name, p.Value, m.Unit)
				}
			}
		}
	}
	// Output:
	// laf.sockets.closed{cause=peer} 1 {socket}
	// laf.upgrades.accepted 1 {upgrade}
	// laf.messages.received 1 {message}
	// laf.messages.sent 1 {message}
	// laf.payload.received 5 By
	// laf.payload.sent 5 By
}
