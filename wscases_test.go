package laf_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/internal/wscases"
)

// TestWSCases runs the protocol case suite of internal/wscases (raw-TCP
// cases in the spirit of Autobahn|Testsuite, derived from RFC 6455 and
// RFC 7692) against a laf echo endpoint: every case as a subtest, failing
// with the RFC section it checks.
//
// The general target has a read limit of 1 MiB (section 9's largest
// message) and compression; the second has the default 32 KiB limit, for
// the limit cases. Both keep the default cap of 32 KiB on the URL and
// header bytes of an upgrade request (DefaultMaxRequestBytes), which the
// X.7 cases check.
func TestWSCases(t *testing.T) {
	t.Run("general", func(t *testing.T) {
		wscases.RunAll(t, wscases.Target{
			URL:             wscasesServer(t, laf.WithReadLimit(1<<20), laf.WithCompression(1)),
			ReadLimit:       1 << 20,
			MaxRequestBytes: 32 << 10,
			Compression:     true,
		})
	})
	t.Run("limit32k", func(t *testing.T) {
		tg := wscases.Target{
			URL:         wscasesServer(t, laf.WithCompression(1)),
			ReadLimit:   laf.DefaultReadLimit,
			Compression: true,
		}
		wscases.RunCases(t, tg, wscases.Filter(wscases.Cases(), "9", "13.7", "X.4", "X.5", "X.6"))
	})
}

// wscasesServer starts an echo endpoint with opts: every text message
// back as text, every binary one as binary. It returns its ws:// URL and
// stops it when the test and its subtests are done.
func wscasesServer(t *testing.T, opts ...laf.Option) string {
	ep := laf.Handler(func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodMessage {
			return ctx.Socket.SendMessage(laf.Owned(ctx.Params.Data, ctx.Params.IsBinary))
		}
		return nil
	}, opts...)
	mux := http.NewServeMux()
	mux.Handle("/ws", ep)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ep.Shutdown(ctx)
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}
