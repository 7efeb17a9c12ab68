package wscases

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/lafgo/laf/internal/rawws"
)

// findingCases are the X.n cases.
func findingCases() []Case {
	return slices.Concat(findingDeflateCases(), findingLimitCases(), headerCases(), upgradeCases())
}

// header is one request header field.
type header struct{ name, value string }

// request builds an upgrade request: method, protocol and the header
// fields of a valid upgrade, changed by edit (which may drop fields by
// returning fewer); "{key}" in a value is the fresh key.
func request(method, proto, uri string, edit func([]header) []header) func(string, string, string) string {
	return func(requestURI, host, key string) string {
		if uri != "" {
			requestURI = uri
		}
		hs := []header{
			{"Host", host},
			{"Upgrade", "websocket"},
			{"Connection", "Upgrade"},
			{"Sec-WebSocket-Key", "{key}"},
			{"Sec-WebSocket-Version", "13"},
		}
		if edit != nil {
			hs = edit(hs)
		}
		var sb strings.Builder
		sb.WriteString(method + " " + requestURI + " " + proto + "\r\n")
		for _, h := range hs {
			sb.WriteString(h.name + ": " + strings.ReplaceAll(h.value, "{key}", key) + "\r\n")
		}
		sb.WriteString("\r\n")
		return sb.String()
	}
}

// set replaces the value of the field name, or adds it.
func set(name, value string) func([]header) []header {
	return func(hs []header) []header {
		for i := range hs {
			if strings.EqualFold(hs[i].name, name) {
				hs[i].value = value
				return hs
			}
		}
		return append(hs, header{name, value})
	}
}

// drop removes the field name.
func drop(name string) func([]header) []header {
	return func(hs []header) []header {
		return slices.DeleteFunc(hs, func(h header) bool { return strings.EqualFold(h.name, name) })
	}
}

// refused expects the request to be refused with one of statuses, and
// check, if not nil, to pass on the response.
func refused(build func(string, string, string) string, statuses []int, check func(*http.Response) error) func(context.Context, Target) error {
	return func(ctx context.Context, tg Target) error {
		c, resp, err := rawws.DialRequest(ctx, tg.URL, build)
		if err != nil {
			return fmt.Errorf("no HTTP response: %w", err)
		}
		defer c.Close()
		if !slices.Contains(statuses, resp.StatusCode) {
			return fmt.Errorf("the server answered %q; want %s", resp.Status, statusList(statuses))
		}
		if check != nil {
			return check(resp)
		}
		return nil
	}
}

func statusList(statuses []int) string {
	var s []string
	for _, st := range statuses {
		s = append(s, fmt.Sprint(st, " ", http.StatusText(st)))
	}
	return strings.Join(s, " or ")
}

// upgraded expects the request to be upgraded with the right
// Sec-WebSocket-Accept (or exactly accept, if not empty), and the
// connection then to echo a text and close cleanly.
func upgraded(build func(string, string, string) string, accept string) func(context.Context, Target) error {
	return func(ctx context.Context, tg Target) error {
		var key string
		c, resp, err := rawws.DialRequest(ctx, tg.URL, func(uri, host, k string) string {
			if accept == "" {
				key = k
			}
			r := build(uri, host, k)
			if accept != "" {
				_, rest, _ := strings.Cut(r, "Sec-WebSocket-Key: ")
				key, _, _ = strings.Cut(rest, "\r\n")
			}
			return r
		})
		if err != nil {
			return fmt.Errorf("no HTTP response: %w", err)
		}
		s := newSession(ctx, c, nil)
		defer s.Close()
		if err := rawws.CheckUpgrade(resp, key); err != nil {
			return err
		}
		if accept != "" && resp.Header.Get("Sec-WebSocket-Accept") != accept {
			return fmt.Errorf("Sec-WebSocket-Accept %q; want %q", resp.Header.Get("Sec-WebSocket-Accept"), accept)
		}
		if v := resp.Header.Values("Sec-WebSocket-Extensions"); len(v) > 0 {
			return fmt.Errorf("unrequested extensions %q", v)
		}
		return s.run([][]byte{textFrame("upgraded")}, []msg{text("upgraded")}, closeWait)
	}
}

func needMaxRequest(tg Target) error {
	if tg.MaxRequestBytes <= 0 {
		return skipf("the target sets no MaxRequestBytes")
	}
	return nil
}

// headerCases are X.7: the size of the upgrade request.
func headerCases() []Case {
	big := func(build func(limit int) func(string, string, string) string, statuses ...int) func(context.Context, Target) error {
		return func(ctx context.Context, tg Target) error {
			if err := needMaxRequest(tg); err != nil {
				return err
			}
			return refused(build(tg.MaxRequestBytes), statuses, nil)(ctx, tg)
		}
	}
	return []Case{
		{ID: "X.7.1", Section: "RFC 6585 §5; RFC 6455 §4.2.1",
			Desc: "an upgrade request with one header field of MaxRequestBytes + 8 KiB is refused with 431 Request Header Fields Too Large, not upgraded",
			Run: big(func(limit int) func(string, string, string) string {
				return request("GET", "HTTP/1.1", "", set("X-Big", strings.Repeat("a", limit+8<<10)))
			}, 431)},
		{ID: "X.7.2", Section: "RFC 6585 §5",
			Desc: "an upgrade request with 64 header fields totalling MaxRequestBytes + 8 KiB is refused with 431, not upgraded",
			Run: big(func(limit int) func(string, string, string) string {
				return request("GET", "HTTP/1.1", "", func(hs []header) []header {
					for i := range 64 {
						hs = append(hs, header{fmt.Sprintf("X-Many-%02d", i), strings.Repeat("m", (limit+8<<10)/64)})
					}
					return hs
				})
			}, 431)},
		{ID: "X.7.3", Section: "RFC 6585 §5; RFC 9110 §15.5.15",
			Desc: "an upgrade request whose URL is MaxRequestBytes + 8 KiB long is refused with 431 (the target's limit is on URL and header bytes) or 414 URI Too Long (both pass)",
			Run: func(ctx context.Context, tg Target) error {
				if err := needMaxRequest(tg); err != nil {
					return err
				}
				return refused(func(uri, host, key string) string {
					sep := "?"
					if strings.Contains(uri, "?") {
						sep = "&"
					}
					return request("GET", "HTTP/1.1", uri+sep+"pad="+strings.Repeat("u", tg.MaxRequestBytes+8<<10), nil)(uri, host, key)
				}, []int{431, 414}, nil)(ctx, tg)
			}},
		{ID: "X.7.4", Section: "RFC 6455 §4.2.1",
			Desc: "an upgrade request with one header field of a quarter of MaxRequestBytes is upgraded (101, right Sec-WebSocket-Accept) and echoes",
			Run: func(ctx context.Context, tg Target) error {
				if err := needMaxRequest(tg); err != nil {
					return err
				}
				return upgraded(request("GET", "HTTP/1.1", "", set("X-Big", strings.Repeat("a", tg.MaxRequestBytes/4))), "")(ctx, tg)
			}},
	}
}

// upgradeCases are X.8: bad and unusual upgrade requests.
func upgradeCases() []Case {
	get := func(edit func([]header) []header) func(string, string, string) string {
		return request("GET", "HTTP/1.1", "", edit)
	}
	versionHeader := func(resp *http.Response) error {
		for _, v := range resp.Header.Values("Sec-WebSocket-Version") {
			for t := range strings.SplitSeq(v, ",") {
				if strings.TrimSpace(t) == "13" {
					return nil
				}
			}
		}
		return fmt.Errorf("the refusal has Sec-WebSocket-Version %q; it must list 13, the version the server understands (RFC 6455 §4.2.2, §4.4)",
			resp.Header.Values("Sec-WebSocket-Version"))
	}
	bad := []int{400}
	badOr426 := []int{400, 426}
	return []Case{
		{ID: "X.8.1", Section: "RFC 6455 §4.2.2, §4.4",
			Desc: "Sec-WebSocket-Version: 8 is refused with 426 Upgrade Required (or 400: the RFC asks for \"an appropriate HTTP error code (such as 426)\") and a Sec-WebSocket-Version header listing 13",
			Run:  refused(get(set("Sec-WebSocket-Version", "8")), []int{426, 400}, versionHeader)},
		{ID: "X.8.2", Section: "RFC 6455 §4.2.1, §4.4",
			Desc: "a request with no Sec-WebSocket-Version is refused with 400 or 426",
			Run:  refused(get(drop("Sec-WebSocket-Version")), badOr426, nil)},
		{ID: "X.8.3", Section: "RFC 6455 §4.2.1, §4.2.2",
			Desc: "a request with no Sec-WebSocket-Key is refused with 400",
			Run:  refused(get(drop("Sec-WebSocket-Key")), bad, nil)},
		{ID: "X.8.4", Section: "RFC 6455 §4.2.1",
			Desc: "a Sec-WebSocket-Key that is not base64 (\"not base64!!\") is refused with 400",
			Run:  refused(get(set("Sec-WebSocket-Key", "not base64!!")), bad, nil)},
		{ID: "X.8.5", Section: "RFC 6455 §4.2.1",
			Desc: "a Sec-WebSocket-Key of 15 bytes in base64 (it must decode to 16) is refused with 400",
			Run:  refused(get(set("Sec-WebSocket-Key", "AAECAwQFBgcICQoLDA0O")), bad, nil)},
		{ID: "X.8.6", Section: "RFC 6455 §4.2.1",
			Desc: "a Sec-WebSocket-Key of 17 bytes in base64 is refused with 400",
			Run:  refused(get(set("Sec-WebSocket-Key", "AAECAwQFBgcICQoLDA0ODxA=")), bad, nil)},
		{ID: "X.8.7", Section: "RFC 6455 §4.2.1; RFC 9110 §15.5.6",
			Desc: "a POST upgrade request is refused with 405 Method Not Allowed or 400 (the method must be GET)",
			Run:  refused(request("POST", "HTTP/1.1", "", set("Content-Length", "0")), []int{405, 400}, nil)},
		{ID: "X.8.8", Section: "RFC 6455 §4.2.1, §4.2.2",
			Desc: "a request with no Upgrade header is refused with 400 or 426 Upgrade Required",
			Run:  refused(get(drop("Upgrade")), badOr426, nil)},
		{ID: "X.8.9", Section: "RFC 6455 §4.2.1",
			Desc: "a request upgrading to another protocol (Upgrade: h2c) is refused with 400 or 426",
			Run:  refused(get(set("Upgrade", "h2c")), badOr426, nil)},
		{ID: "X.8.10", Section: "RFC 6455 §4.2.1",
			Desc: "a request with no Connection header is refused with 400 (or 426, both pass: the RFC asks for an appropriate error code)",
			Run:  refused(get(drop("Connection")), badOr426, nil)},
		{ID: "X.8.11", Section: "RFC 6455 §4.2.1",
			Desc: "a request whose Connection header lacks the upgrade token (Connection: keep-alive) is refused with 400 (or 426)",
			Run:  refused(get(set("Connection", "keep-alive")), badOr426, nil)},
		{ID: "X.8.12", Section: "RFC 6455 §4.1, §4.2.1",
			Desc: "an HTTP/1.0 upgrade request is not upgraded (HTTP/1.1 or higher is required): 400, 426 or 505 pass",
			Run:  refused(request("GET", "HTTP/1.0", "", nil), []int{400, 426, 505}, nil)},
		{ID: "X.8.13", Section: "RFC 6455 §4.2.1; RFC 9110 §7.6.1",
			Desc: "Connection: keep-alive, Upgrade and Upgrade: WebSocket (tokens are case-insensitive and Connection is a list) are upgraded, with the right Sec-WebSocket-Accept",
			Run: upgraded(get(func(hs []header) []header {
				return set("Upgrade", "WebSocket")(set("Connection", "keep-alive, Upgrade")(hs))
			}), "")},
		{ID: "X.8.14", Section: "RFC 6455 §1.3, §4.2.2",
			Desc: "the RFC's sample key dGhlIHNhbXBsZSBub25jZQ== is answered with Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
			Run:  upgraded(get(set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")},
	}
}
