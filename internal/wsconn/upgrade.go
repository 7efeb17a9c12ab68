package wsconn

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// UpgradeOptions are what Upgrade negotiates.
type UpgradeOptions struct {
	// Subprotocols, in the server's order of preference.
	Subprotocols []string
	// OriginPatterns allow cross-origin requests: host patterns matched
	// with path.Match ("*.example.com"), or "scheme://host" patterns.
	// Requests with no Origin header, or a same-host one, always pass.
	OriginPatterns []string
	// Compression accepts permessage-deflate offers (no context takeover).
	Compression bool
	// MaxRequestBytes, if positive, caps the bytes of the request's URL
	// and headers: a larger request gets 431, so that no peer chooses how
	// much a socket keeps of its request.
	MaxRequestBytes int
	// Config is the Conn's.
	Config Config
}

// An UpgradeError is a request that Upgrade refused, with the status it
// answered.
type UpgradeError struct {
	Status int
	Reason string
}

func (e *UpgradeError) Error() string {
	return fmt.Sprintf("wsconn: upgrade refused: %d %s", e.Status, e.Reason)
}

// Upgrade checks a WebSocket upgrade request (RFC 6455 §4.2.1), answers a
// bad one with its status and returns an *UpgradeError: 505 for HTTP/1.0
// (§4.1), 405 for a method
// other than GET, 426 for a request without the Upgrade and Connection
// tokens or with a version other than 13, 400 for a bad key, 431 for a
// request over MaxRequestBytes, 403 for a cross-origin request no pattern
// allows. Otherwise it hijacks the connection, writes the 101 response and
// returns the Conn.
func Upgrade(w http.ResponseWriter, r *http.Request, o *UpgradeOptions) (*Conn, error) {
	if err := checkRequest(r, o); err != nil {
		var ue *UpgradeError
		if errors.As(err, &ue) {
			// The connection closes after a refusal: it is no use to a
			// client that wanted a WebSocket.
			w.Header().Set("Connection", "close")
			if ue.Status == http.StatusUpgradeRequired {
				w.Header().Set("Sec-WebSocket-Version", "13")
				w.Header().Set("Upgrade", "websocket")
				w.Header().Set("Connection", "Upgrade, close")
			}
			http.Error(w, ue.Reason, ue.Status)
		}
		return nil, err
	}
	sub := pickSubprotocol(r, o.Subprotocols)
	ext := ""
	if o.Compression {
		ext = negotiateDeflate(r.Header.Values("Sec-WebSocket-Extensions"))
	}

	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "wsconn: cannot hijack the connection", http.StatusInternalServerError)
		return nil, err
	}
	// What the peer sent behind its request.
	var pending []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		pending = append([]byte(nil), p...)
	}
	// net/http's deadlines for the request would end the socket.
	nc.SetDeadline(time.Time{})

	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, acceptKey(r.Header.Get("Sec-WebSocket-Key"))...)
	if sub != "" {
		b = append(b, "\r\nSec-WebSocket-Protocol: "...)
		b = append(b, sub...)
	}
	if ext != "" {
		b = append(b, "\r\nSec-WebSocket-Extensions: "...)
		b = append(b, ext...)
	}
	b = append(b, "\r\n\r\n"...)
	if o.Config.WriteTimeout > 0 {
		nc.SetWriteDeadline(time.Now().Add(o.Config.WriteTimeout))
	}
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return nil, err
	}
	return newConn(nc, pending, o.Config, sub, ext != ""), nil
}

// checkRequest applies RFC 6455 §4.2.1, the origin patterns and the
// request size cap.
func checkRequest(r *http.Request, o *UpgradeOptions) error {
	switch {
	case !r.ProtoAtLeast(1, 1):
		return &UpgradeError{http.StatusHTTPVersionNotSupported, "WebSocket upgrade needs HTTP/1.1"}
	case r.Method != http.MethodGet:
		return &UpgradeError{http.StatusMethodNotAllowed, "WebSocket upgrade needs GET"}
	case !hasToken(r.Header.Values("Connection"), "upgrade"), !hasToken(r.Header.Values("Upgrade"), "websocket"):
		// A plain request: say what this resource speaks (RFC 7231 §6.5.15).
		return &UpgradeError{http.StatusUpgradeRequired, "WebSocket upgrade required"}
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return &UpgradeError{http.StatusUpgradeRequired, "unsupported WebSocket version: want 13"}
	}
	if k := r.Header.Values("Sec-WebSocket-Key"); len(k) != 1 || !validKey(k[0]) {
		return &UpgradeError{http.StatusBadRequest, "invalid Sec-WebSocket-Key"}
	}
	if o.MaxRequestBytes > 0 && requestBytes(r) > o.MaxRequestBytes {
		return &UpgradeError{http.StatusRequestHeaderFieldsTooLarge, "request headers too large"}
	}
	if err := checkOrigin(r, o.OriginPatterns); err != nil {
		return err
	}
	return nil
}

// requestBytes counts a request's URL and header bytes as sent.
func requestBytes(r *http.Request) int {
	n := len(r.RequestURI) + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func validKey(k string) bool {
	b, err := base64.StdEncoding.DecodeString(k)
	return err == nil && len(b) == 16
}

// hasToken reports whether a comma-separated header holds token, in any
// case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return &UpgradeError{http.StatusForbidden, "invalid Origin header"}
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return nil
		}
	}
	return &UpgradeError{http.StatusForbidden, fmt.Sprintf("origin %q is not allowed", origin)}
}

// pickSubprotocol returns the first of the server's subprotocols that the
// client offers, or "".
func pickSubprotocol(r *http.Request, server []string) string {
	offered := r.Header.Values("Sec-WebSocket-Protocol")
	for _, p := range server {
		for _, v := range offered {
			for _, t := range strings.Split(v, ",") {
				if strings.TrimSpace(t) == p {
					return p
				}
			}
		}
	}
	return ""
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey is Sec-WebSocket-Accept for key (§4.2.2).
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
