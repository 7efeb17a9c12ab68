package servers

import (
	"context"
	"net/http"

	"github.com/lafgo/laf"
)

type lafServer struct{ ep *laf.Endpoint }

func newLaf() Server {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method != laf.MethodMessage {
			return nil
		}
		if ctx.Params.IsBinary {
			ctx.Socket.SendBinary(ctx.Params.Data)
		} else {
			ctx.Socket.Send(ctx.Params.Data.String())
		}
		return nil
	}) // defaults: 32 KiB read limit, ping every 30 s, 256 messages / 1 MiB queue, CloseSlow
	return &lafServer{ep: ep}
}

func (s *lafServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.ep.ServeHTTP(w, r) }

func (s *lafServer) Broadcast(p []byte) {
	s.ep.Broadcast(context.Background(), laf.Text(string(p)))
}

func (s *lafServer) Conns() int { return s.ep.Len() }
