package laf_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/lafgo/laf"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedBasics(t *testing.T) {
	s := laf.NewShared()
	_, ok := s.Get("k")
	assert.False(t, ok)
	s.Set("k", 1)
	v, ok := s.Get("k")
	assert.True(t, ok)
	assert.Equal(t, 1, v)

	actual, loaded := s.GetOrSet("k", 2)
	assert.True(t, loaded)
	assert.Equal(t, 1, actual)
	actual, loaded = s.GetOrSet("new", 3)
	assert.False(t, loaded)
	assert.Equal(t, 3, actual)
	assert.Equal(t, 2, s.Len())

	s.Update("k", func(old any, ok bool) (any, bool) { return nil, false }) // deletes
	_, ok = s.Get("k")
	assert.False(t, ok)
	s.Delete("new")
	s.Delete("never there")
	assert.Equal(t, 0, s.Len())
}

func TestSharedConcurrentUpdateLosesNothing(t *testing.T) {
	s := laf.NewShared()
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				s.Update("counter", func(old any, _ bool) (any, bool) {
					n, _ := old.(int)
					return n + 1, true
				})
				s.Set(fmt.Sprint(g, "-", i), i)
				s.Get("counter")
				if i%100 == 0 {
					s.Range(func(string, any) bool { return true })
				}
			}
		})
	}
	wg.Wait()
	v, _ := s.Get("counter")
	assert.Equal(t, goroutines*each, v)
	assert.Equal(t, goroutines*each+1, s.Len())
}

func TestSharedRangeMayMutate(t *testing.T) {
	s := laf.NewShared()
	for i := range 10 {
		s.Set(fmt.Sprint(i), i)
	}
	seen := 0
	s.Range(func(k string, v any) bool {
		s.Delete(k) // would deadlock if Range held the lock
		seen++
		return seen < 4
	})
	assert.Equal(t, 4, seen)
	assert.Equal(t, 6, s.Len())
}

func TestSharedAcrossEndpointsAndHandlers(t *testing.T) {
	store := laf.NewShared()
	count := func(ctx *laf.FunctionContext) error {
		if ctx.Method == laf.MethodConnection {
			ctx.Shared.Update("connections", func(old any, _ bool) (any, bool) {
				n, _ := old.(int)
				return n + 1, true
			})
			return ctx.Socket.Send("counted")
		}
		return nil
	}
	a := laftest.NewServer(t, count, laf.WithShared(store))
	b := laftest.NewServer(t, count, laf.WithShared(store))
	separate := laftest.NewServer(t, count)
	a.Dial(t).ExpectText("counted")
	b.Dial(t).ExpectText("counted")
	separate.Dial(t).ExpectText("counted")

	// A plain HTTP handler reads the same store.
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := store.Get("connections")
		fmt.Fprint(w, n)
	}))
	defer h.Close()
	resp, err := http.Get(h.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "2", string(body))
	assert.Same(t, store, a.Endpoint.Shared())
	n, _ := separate.Endpoint.Shared().Get("connections")
	assert.Equal(t, 1, n)
}

func TestNothingPrintsByDefault(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	func() {
		defer func() { os.Stdout, os.Stderr = stdout, stderr }()
		srv := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
			if ctx.Method == laf.MethodMessage {
				panic("loud")
			}
			return fmt.Errorf("an error on %s", ctx.Method)
		})
		c := srv.Dial(t)
		c.ExpectClose(1011)
		c2 := laftest.NewServer(t, func(ctx *laf.FunctionContext) error {
			if ctx.Method == laf.MethodMessage {
				panic("loud")
			}
			return nil
		}).Dial(t)
		c2.Send("x")
		c2.ExpectClose(1011)
	}()
	w.Close()
	out, _ := io.ReadAll(r)
	assert.Empty(t, string(out))
}
