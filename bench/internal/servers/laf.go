package servers

import (
	"context"
	"net/http"

	"github.com/lafgo/laf"
)

type lafServer struct{ ep *laf.Endpoint }

func newLaf() Server {
	// The Func owns Params.Data, so the echo hands it back without a copy.
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	}) // defaults: 32 KiB read limit, ping every 30 s, 256 messages / 1 MiB queue, CloseSlow
	return &lafServer{ep: ep}
}

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
