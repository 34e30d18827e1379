package agent

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
)

// TestParseCommon checks the common request's parser against net/http's:
// every request it takes, http.ReadRequest and checkRequest take too and
// read the same (method, path, connection, credentials, body length); the
// others it leaves to them (0), hostile ones included.
func TestParseCommon(t *testing.T) {
	const body = "<methodCall/>"
	const line = "POST " + agentapi.Path + " HTTP/1.1\r\n"
	common := "Host: 127.0.0.1:8899\r\nUser-Agent: xenmanager\r\nAuthorization: " + rightAuth + "\r\nContent-Type: text/xml\r\nContent-Length: 13\r\n"
	tests := []struct {
		name   string
		raw    string
		common bool // parseCommon reads it
	}{
		{"as the manager writes it", line + common + "\r\n" + body, true},
		{"as Python writes it", "POST /RPC2 HTTP/1.1\r\nHost: localhost:8000\r\nAccept-Encoding: gzip\r\nContent-Type: text/xml\r\n" +
			"User-Agent: Python-xmlrpc/3.11\r\nContent-Length: 13\r\nAuthorization: " + rightAuth + "\r\n\r\n" + body, true},
		{"names in other cases, spaces around values", line + "HOST:  h \r\ncontent-length:\t13\t\r\nauthorization: x\r\n\r\n" + body, true},
		{"no credentials", line + "Host: h\r\nContent-Length: 13\r\n\r\n" + body, true},
		{"Connection: close", line + common + "Connection: close\r\n\r\n" + body, true},
		{"Connection: keep-alive", line + common + "Connection: Keep-Alive\r\n\r\n" + body, true},
		{"zero length", line + "Host: h\r\nContent-Length: 0\r\n\r\n", true},
		{"Connection: upgrade", line + common + "Connection: upgrade\r\n\r\n" + body, false},
		{"header not all here", line + common, false},
		{"other path", "POST /api/2/ HTTP/1.1\r\n" + common + "\r\n" + body, false},
		{"path with a query", "POST " + agentapi.Path + "?x=1 HTTP/1.1\r\n" + common + "\r\n" + body, false},
		{"GET", "GET " + agentapi.Path + " HTTP/1.1\r\n" + common + "\r\n", false},
		{"HTTP/1.0", "POST " + agentapi.Path + " HTTP/1.0\r\n" + common + "\r\n" + body, false},
		{"lower-case method", "post " + agentapi.Path + " HTTP/1.1\r\n" + common + "\r\n" + body, false},
		{"two spaces in the line", "POST  " + agentapi.Path + " HTTP/1.1\r\n" + common + "\r\n" + body, false},
		{"no Host", line + "Content-Length: 13\r\n\r\n" + body, false},
		{"two Hosts", line + common + "Host: h\r\n\r\n" + body, false},
		{"empty Host", line + "Host:\r\nContent-Length: 13\r\n\r\n" + body, false},
		{"Host with a space", line + "Host: a b\r\nContent-Length: 13\r\n\r\n" + body, false},
		{"Host with a slash", line + "Host: a/b\r\nContent-Length: 13\r\n\r\n" + body, false},
		{"no length", line + "Host: h\r\n\r\n", false},
		{"two lengths", line + common + "Content-Length: 13\r\n\r\n" + body, false},
		{"length with a sign", line + "Host: h\r\nContent-Length: +13\r\n\r\n" + body, false},
		{"length with a comma", line + "Host: h\r\nContent-Length: 13,13\r\n\r\n" + body, false},
		{"length too long", line + "Host: h\r\nContent-Length: 9999999999999999999\r\n\r\n" + body, false},
		{"two Authorizations", line + common + "Authorization: x\r\n\r\n" + body, false},
		{"chunked", line + "Host: h\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n" + body + "\r\n0\r\n\r\n", false},
		{"chunked and a length", line + common + "Transfer-Encoding: chunked\r\n\r\nd\r\n" + body + "\r\n0\r\n\r\n", false},
		{"Expect", line + common + "Expect: 100-continue\r\n\r\n" + body, false},
		{"continuation line", line + common + "X-A: b\r\n c\r\n\r\n" + body, false},
		{"space before the colon", line + common + "X-A : b\r\n\r\n" + body, false},
		{"space in a name", line + common + "X A: b\r\n\r\n" + body, false},
		{"no name", line + common + ": b\r\n\r\n" + body, false},
		{"no colon", line + common + "X-A\r\n\r\n" + body, false},
		{"NUL in a value", line + common + "X-A: a\x00b\r\n\r\n" + body, false},
		{"DEL in a value", line + common + "X-A: a\x7fb\r\n\r\n" + body, false},
		{"bare LF in a value", line + common + "X-A: a\nb\r\n\r\n" + body, false},
		{"bare CR in a value", line + common + "X-A: a\rb\r\n\r\n" + body, false},
		{"bare LF line ends", strings.ReplaceAll(line+common, "\r\n", "\n") + "\n" + body, false},
		{"non-ASCII value", line + common + "X-A: caf\xc3\xa9\r\n\r\n" + body, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r request
			n, length := parseCommon([]byte(tt.raw), &r)
			if (n > 0) != tt.common {
				t.Fatalf("parseCommon took %d bytes, want it to read the request: %v", n, tt.common)
			}
			if n == 0 {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
			if err != nil {
				t.Fatalf("parseCommon read what http.ReadRequest refuses: %v", err)
			}
			if ans, bad := checkRequest(req); bad {
				t.Fatalf("parseCommon read what checkRequest refuses: %d %s", ans.status, ans.text)
			}
			want := fromHTTP(req)
			rest, _ := io.ReadAll(req.Body)
			if r.method != want.method || r.path != want.path || r.http11 != want.http11 || r.close != want.close ||
				r.expect != want.expect || r.nAuth != want.nAuth || !bytes.Equal(r.auth, want.auth) || length != int64(len(rest)) ||
				tt.raw[n:] != string(rest) {
				t.Errorf("parseCommon read %+v (length %d, body %q), net/http %+v (body %q)", r, length, tt.raw[n:], *want, rest)
			}
		})
	}
}
