package agent

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"xenmanager/backend/agentapi"
)

// request is what serving a call needs of its HTTP request. The common
// request, as the manager's client, Go's and Python's write it, is read by
// parseCommon straight from the connection's buffer; any other goes
// through net/http's http.ReadRequest (fromHTTP).
type request struct {
	method, path string
	http11       bool // HTTP/1.1; else 1.0
	close        bool // the connection closes after the answer
	expect       bool // Expect: 100-continue
	// auth is the first Authorization field's value, nAuth how many
	// there were.
	auth  []byte
	nAuth int
	body  io.Reader
}

// fromHTTP is the request of req, which checkRequest accepted.
func fromHTTP(req *http.Request) *request {
	r := &request{method: req.Method, path: req.URL.Path, http11: req.ProtoAtLeast(1, 1), close: req.Close,
		expect: len(req.Header["Expect"]) > 0 && req.ProtoAtLeast(1, 1), body: req.Body}
	if v := req.Header["Authorization"]; len(v) > 0 {
		r.auth, r.nAuth = []byte(v[0]), len(v)
	}
	return r
}

// basicAuth is the user and password of a basic-auth Authorization value,
// as net/http's Request.BasicAuth reads them.
func basicAuth(v []byte) (user, password string, ok bool) {
	return (&http.Request{Header: http.Header{"Authorization": {string(v)}}}).BasicAuth()
}

// maxCommonDigits bounds the digits of a Content-Length parseCommon reads
// (18 cannot overflow an int64); a longer one is left to net/http.
const maxCommonDigits = 18

// parseCommon reads the common request from buf, the bytes the connection
// has buffered: "POST" on the protocol's paths in HTTP/1.1, its whole
// header in buf, CRLF line ends, header fields whose names are tokens and
// values visible characters, one Host of host characters, one
// Content-Length of digits, at most one Authorization, a Connection of
// "close" or "keep-alive", no Transfer-Encoding and no Expect. It fills r
// (its body left to the caller) and returns the header's length; 0 when
// the request is anything else, which http.ReadRequest then reads (and
// judges): parseCommon never accepts what net/http's server refuses.
func parseCommon(buf []byte, r *request) (n int, length int64) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, 0
	}
	head := buf[:end+2] // each line with its CRLF
	var path string
	switch {
	case bytes.HasPrefix(head, []byte("POST "+agentapi.Path+" HTTP/1.1\r\n")):
		path = agentapi.Path
	case bytes.HasPrefix(head, []byte("POST "+agentapi.PathRPC2+" HTTP/1.1\r\n")):
		path = agentapi.PathRPC2
	default:
		return 0, 0
	}
	head = head[bytes.IndexByte(head, '\n')+1:]
	*r = request{method: http.MethodPost, path: path, http11: true, auth: r.auth[:0]}
	hosts, lengths := 0, 0
	for len(head) > 0 {
		colon := bytes.IndexByte(head, ':')
		if colon <= 0 || !validFieldName(string(head[:colon])) {
			return 0, 0 // no name, not a token, or a continuation line
		}
		name := head[:colon]
		eol := bytes.IndexByte(head, '\r')
		if eol < colon || head[eol+1] != '\n' {
			return 0, 0
		}
		value := head[colon+1 : eol]
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return 0, 0
			}
		}
		value = bytes.Trim(value, " \t")
		head = head[eol+2:]
		switch {
		case fieldIs(name, "Host"):
			hosts++
			if len(value) == 0 || !hostChars(value) {
				return 0, 0
			}
		case fieldIs(name, "Content-Length"):
			lengths++
			if len(value) == 0 || len(value) > maxCommonDigits {
				return 0, 0
			}
			length = 0
			for _, c := range value {
				if c < '0' || c > '9' {
					return 0, 0
				}
				length = length*10 + int64(c-'0')
			}
		case fieldIs(name, "Authorization"):
			if r.nAuth++; r.nAuth > 1 {
				return 0, 0
			}
			r.auth = append(r.auth, value...)
		case fieldIs(name, "Connection"):
			switch {
			case fieldIs(value, "close"):
				r.close = true
			case fieldIs(value, "keep-alive"):
			default:
				return 0, 0
			}
		case fieldIs(name, "Transfer-Encoding"), fieldIs(name, "Expect"):
			return 0, 0
		}
	}
	if hosts != 1 || lengths != 1 {
		return 0, 0
	}
	if r.nAuth == 0 {
		r.auth = nil
	}
	return end + 4, length
}

// fieldIs reports whether b is s, ignoring ASCII case.
func fieldIs(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

// hostChars reports whether a Host value has only the characters of a
// host name, an IPv4 or bracketed IPv6 address and a port.
func hostChars(v []byte) bool {
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}
