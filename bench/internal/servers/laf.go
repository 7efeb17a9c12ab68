package servers

import (
	"context"
	"net/http"
	"time"

	"github.com/lafgo/laf"
)

type lafServer struct{ ep *laf.Endpoint }

func newLaf() Server { return newLafEcho() }

// NewLafLent is laf with WithLentData: each message event, Data included,
// is lent to the Func and reused, as coder-reader reuses its buffer.
func NewLafLent() Server { return newLafEcho(laf.WithLentData()) }

func newLafEcho(opts ...laf.Option) Server {
	// The echo hands Params.Data back without a copy: the Func owns it, or
	// with WithLentData may send it back to its own socket.
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	}, opts...) // defaults: 32 KiB read limit, ping every 30 s, 256 messages / 1 MiB queue, CloseSlow
	return &lafServer{ep: ep}
}

// newLafPing is the laf server pinging every interval, a pong due within
// KeepaliveWait(interval).
func newLafPing(interval time.Duration) Server {
	return newLafEcho(laf.WithPing(interval, KeepaliveWait(interval)))
}

// newLafCompressed is the laf server with WithCompression.
func newLafCompressed() Server { return newLafEcho(laf.WithCompression(CompressThreshold)) }

// Compressed returns Stats.Compressed: messages compressed, a broadcast
// once however many sockets it went to.
func (s *lafServer) Compressed() uint64 { return s.ep.Stats().Compressed }

// NewLafCopy is laf with an echo that copies the payload it sends
// (Socket.Send(Data.String())), to tell a handler's allocation from the
// library's. It has no broadcast.
func NewLafCopy() Server {
	return &lafServer{ep: laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method != laf.MethodMessage {
			return nil
		}
		if ctx.Params.IsBinary {
			return ctx.Socket.SendBinary(ctx.Params.Data)
		}
		return ctx.Socket.Send(ctx.Params.Data.String())
	})}
}

func (s *lafServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.ep.ServeHTTP(w, r) }

func (s *lafServer) Broadcast(p []byte) {
	s.ep.Broadcast(context.Background(), laf.Text(string(p)))
}

func (s *lafServer) Conns() int { return s.ep.Len() }
