package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lafgo/laf"
)

// TestReply checks the status of each outcome of a send.
func TestReply(t *testing.T) {
	refused := errors.New("connection refused")
	timeout := fmt.Errorf("%w: i/o timeout", laf.ErrOutcomeUnknown)
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{nil, http.StatusAccepted, "queued"},
		{laf.ErrNotFound, http.StatusNotFound, "no socket"},
		{&laf.BrokerError{Err: refused}, http.StatusServiceUnavailable, "retry is safe"},
		{&laf.BrokerError{Err: laf.ErrNoSubscriber}, http.StatusServiceUnavailable, "retry is safe"},
		{&laf.OutcomeUnknownError{Err: timeout}, http.StatusGatewayTimeout, "outcome unknown"},
		{&laf.BrokerError{Local: 2, Err: refused}, http.StatusMultiStatus, `"outcome":"not delivered"`},
		{&laf.OutcomeUnknownError{Local: 2, Err: timeout}, http.StatusMultiStatus, `"outcome":"unknown"`},
	} {
		w := httptest.NewRecorder()
		reply(w, tc.err)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("reply(%v): %d %q, want %d with %q", tc.err, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
}
