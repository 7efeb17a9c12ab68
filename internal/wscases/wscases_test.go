package wscases

import (
	"bytes"
	"strings"
	"testing"
)

// The suite's own checks: unique IDs, every case described, and the
// helpers that judge a server: the extension grammar, RFC 7692's rules for
// a response, and the RFC's example payloads.

func TestCasesWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Cases() {
		if seen[c.ID] {
			t.Errorf("case ID %s twice", c.ID)
		}
		seen[c.ID] = true
		if c.Section == "" || c.Desc == "" || c.Run == nil {
			t.Errorf("case %s lacks a section, a description or a Run", c.ID)
		}
		if !strings.HasPrefix(c.Section, "RFC ") {
			t.Errorf("case %s: section %q names no RFC", c.ID, c.Section)
		}
	}
	if len(seen) < 200 {
		t.Errorf("only %d cases", len(seen))
	}
}

func TestNegotiated(t *testing.T) {
	for _, tc := range []struct {
		offer, response string
		ok, declined    bool
	}{
		{"permessage-deflate", "", true, true},
		{"permessage-deflate", "permessage-deflate", true, false},
		{"permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, false},
		{"permessage-deflate", "permessage-deflate; client_max_window_bits=10", false, false},
		{"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=10", true, false},
		{"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits", false, false},
		{"permessage-deflate; server_max_window_bits=15", "permessage-deflate", false, false},
		{"permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=13", false, false},
		{"permessage-deflate; server_max_window_bits=12", `permessage-deflate; server_max_window_bits="12"`, true, false},
		{"permessage-deflate; server_no_context_takeover", "permessage-deflate", false, false},
		{"permessage-deflate", "permessage-deflate; foo", false, false},
		{"permessage-deflate", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", false, false},
		{"permessage-deflate", "permessage-deflate, permessage-deflate", false, false},
		{"permessage-deflate", "x-other", false, false},
		{"permessage-deflate; server_max_window_bits=7, permessage-deflate", "permessage-deflate", true, false},
	} {
		var resp []string
		if tc.response != "" {
			resp = []string{tc.response}
		}
		ps, err := negotiated(tc.offer, resp)
		if (err == nil) != tc.ok || tc.ok && (ps == nil) != tc.declined {
			t.Errorf("negotiated(%q, %q) = %v, %v", tc.offer, tc.response, ps, err)
		}
	}
	if i := acceptedOffer("permessage-deflate, permessage-deflate; client_max_window_bits", params{{"client_max_window_bits", "9", true}}); i != 1 {
		t.Errorf("acceptedOffer = %d, want 1", i)
	}
	if i := acceptedOffer("x-webkit-deflate-frame, permessage-deflate", nil); i != 1 {
		t.Errorf("acceptedOffer = %d, want 1", i)
	}
}

func TestRFC7692Examples(t *testing.T) {
	for _, p := range [][]byte{rfcHello, rfcHelloStored, rfcHelloBFINAL, rfcHelloTwo} {
		if out, err := inflate(p, nil, 100); err != nil || string(out) != "Hello" {
			t.Errorf("inflate(% x) = %q, %v", p, out, err)
		}
	}
	if out, err := inflate(rfcHelloAgain, []byte("Hello"), 100); err != nil || string(out) != "Hello" {
		t.Errorf("inflate with the window of the first = %q, %v", out, err)
	}
	if out, _ := inflate(truncatedStream, nil, 100); bytes.Equal(out, []byte(truncatedText)) {
		t.Error("the truncated stream inflates to the whole text")
	}
	if got := compress([]byte(truncatedText)); !bytes.HasPrefix(got, truncatedStream) || len(got) != 16 {
		t.Logf("compress/flate now compresses %q differently: % x (the case keeps its bytes)", truncatedText, got)
	}
	if out, err := inflate(bfinalHello, nil, 100); string(out) != "hello" {
		t.Errorf("bfinalHello inflates to %q, %v", out, err)
	}
}
