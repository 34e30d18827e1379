package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rpcConn counts an answer only when it is a whole methodResponse of HTTP
// 200 framed by its Content-Length, and sends the request a Go client
// would, credentials included.
func TestRPCConnCall(t *testing.T) {
	const ok = `<?xml version="1.0"?><methodResponse><params><param><value><string>x</string></value></param></params></methodResponse>`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string // "" for success
	}{
		{"answer", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, ok) }, ""},
		{"large answer", func(w http.ResponseWriter, r *http.Request) {
			body := strings.Replace(ok, "x", strings.Repeat("y", 20000), 1)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			io.WriteString(w, body)
		}, ""},
		{"fault", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<?xml version="1.0"?><methodResponse><fault><value><struct></struct></value></fault></methodResponse>`)
		}, "<fault>"},
		{"HTTP error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) }, "401"},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, ok)
			w.(http.Flusher).Flush()
		}, "without Content-Length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			var gotBody []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				gotBody, _ = io.ReadAll(r.Body)
				tt.handler(w, r)
			}))
			defer srv.Close()
			u, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			u.User, u.Path = url.UserPassword("oracle", "pw"), "/api/3/"
			c, err := dialRPC(u)
			if err != nil {
				t.Fatal(err)
			}
			defer c.c.Close()
			if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			req := rpcRequest(u, "echo")
			for i := range 2 { // twice: the connection is kept alive
				err = c.call(req)
				if tt.wantErr == "" && err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("call: %v, want an error with %q", err, tt.wantErr)
					}
					return
				}
			}
			user, pw, _ := got.BasicAuth()
			if got.URL.Path != "/api/3/" || user != "oracle" || pw != "pw" || !bytes.Equal(gotBody, callBody("echo")) {
				t.Errorf("server saw %s as %q:%q, body %q", got.URL.Path, user, pw, gotBody)
			}
		})
	}
}

// TestRaiseLoadProcs: one P becomes loadProcs, more stay, and GOMAXPROCS
// in the environment is left alone.
func TestRaiseLoadProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(1)
	raiseLoadProcs(func(string) string { return "" })
	if got := runtime.GOMAXPROCS(0); got != loadProcs {
		t.Errorf("from 1 P: %d, want %d", got, loadProcs)
	}
	runtime.GOMAXPROCS(loadProcs + 1)
	raiseLoadProcs(func(string) string { return "" })
	if got := runtime.GOMAXPROCS(0); got != loadProcs+1 {
		t.Errorf("from %d Ps: %d", loadProcs+1, got)
	}
	runtime.GOMAXPROCS(1)
	raiseLoadProcs(func(k string) string {
		if k == "GOMAXPROCS" {
			return "1"
		}
		return ""
	})
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS=1 in the environment: %d Ps", got)
	}
}
