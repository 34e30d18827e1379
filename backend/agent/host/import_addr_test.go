package host

import (
	"bufio"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"xenmanager/backend/agentapi"
)

// countingServer serves the ISO at /a.iso and redirects /to?u=<url> to
// url, on a listener at addr ("127.0.0.2:0"), counting the requests it
// gets.
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newCountingServer(t *testing.T, addr string, iso []byte) *countingServer {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		switch r.URL.Path {
		case "/a.iso":
			w.Write(iso)
		case "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	s.Listener.Close()
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// The download connects only where importnet lets it, with the call's
// allowed networks, at every hop: the URL's host, its name's addresses,
// each redirect. A refused address gets no request, and the fault says
// which address was refused and why.
func TestImportRefusesAddresses(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	iso := isoImage("CD001")
	one := newCountingServer(t, "127.0.0.1:0", iso) // on 127.0.0.1
	two := newCountingServer(t, "127.0.0.2:0", iso) // on 127.0.0.2, another loopback address
	_, onePort, _ := net.SplitHostPort(one.Listener.Addr().String())
	nets := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, n := range s {
			out = append(out, netip.MustParsePrefix(n))
		}
		return out
	}
	via := func(s *countingServer, target string) string { return s.URL + "/to?u=" + target }
	const (
		notAllowed = ", and no allowed network holds it"
		refused    = "it leads to an address imports may not reach: "
	)

	tests := []struct {
		name, url string
		allowed   []netip.Prefix
		msg       string // "" for an import that succeeds
		hits      [2]int64
	}{
		{"loopback by default", one.URL + "/a.iso", nil, refused + "127.0.0.1 is a loopback address" + notAllowed, [2]int64{0, 0}},
		{"a name that resolves to loopback", "http://localhost:" + onePort + "/a.iso", nil, " is a loopback address" + notAllowed, [2]int64{0, 0}},
		{"loopback in IPv6 form", "http://[::ffff:127.0.0.1]:" + onePort + "/a.iso", nil, " is a loopback address" + notAllowed, [2]int64{0, 0}},
		{"outside the allowed network", two.URL + "/a.iso", nets("127.0.0.1/32"), refused + "127.0.0.2 is a loopback address" + notAllowed, [2]int64{0, 0}},
		{"redirect outside the allowed network", via(one, two.URL+"/a.iso"), nets("127.0.0.1/32"),
			refused + "127.0.0.2 is a loopback address" + notAllowed, [2]int64{1, 0}},
		{"redirect to a name that resolves to loopback", via(two, "http://localhost:"+onePort+"/a.iso"), nets("127.0.0.2/32"),
			" is a loopback address" + notAllowed, [2]int64{0, 1}},
		{"unspecified, whatever is allowed", "http://0.0.0.0:" + onePort + "/a.iso", nets("0.0.0.0/0"),
			refused + "0.0.0.0 is an unspecified address, which no download may reach", [2]int64{0, 0}},
		{"redirect to another scheme", via(one, "ftp://127.0.0.1/a.iso"), nets("127.0.0.0/8"),
			"it was redirected to a URL that is not http:// or https://", [2]int64{1, 0}},
		{"redirect loop", one.URL + "/loop", nets("127.0.0.0/8"), "it was redirected more than 10 times", [2]int64{10, 0}},
		// The same redirect, allowed: the refusals above are the check's.
		{"redirect inside the allowed network", via(one, two.URL+"/a.iso"), nets("127.0.0.0/8"), "", [2]int64{1, 1}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			one.hits.Store(0)
			two.hits.Store(0)
			id := "r" + string(rune('a'+i))
			err := h.ImportVirtualDisk(t.Context(), tc.url, id, "r1", agentapi.ImportKindISO, tc.allowed)
			iso := filepath.Join(fsLoc, DirISOs, id+ISOExt)
			if tc.msg == "" {
				mustOK(t, err)
				if _, err := os.Stat(iso); err != nil {
					t.Errorf("the allowed import left no ISO: %v", err)
				}
			} else {
				wantFault(t, err, agentapi.FaultInvalidArgument, tc.msg)
				if _, err := os.Lstat(iso); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s exists after a refused import (%v)", iso, err)
				}
			}
			if got := [2]int64{one.hits.Load(), two.hits.Load()}; got != tc.hits {
				t.Errorf("requests to 127.0.0.1 and 127.0.0.2: %v, want %v", got, tc.hits)
			}
			noLeftovers(t, fsLoc)
		})
	}
}

// rawServer answers the request of every connection on loopback with
// answer, and closes it: a service that is not HTTP, or an HTTP server
// with words of its own in its status line.
func rawServer(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustOK(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for { // the request's head
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				c.Write([]byte(answer))
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// A failed download says what the agent concluded, never what the remote
// said: no status line's words, no banner of a service that is not HTTP,
// no "connection refused" to map ports with, no read error.
func TestImportHidesRemoteWords(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	const secret = "internal-secret"
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name, url string
		code      agentapi.FaultCode
		msg       string // the whole message after "cannot download <url>: " or "download of <url> "
	}{
		{"ssh banner", rawServer(t, "SSH-2.0-OpenSSH_9.6 "+secret+"\r\n"), agentapi.FaultInternalError, "no HTTP answer from its server"},
		{"status words", rawServer(t, "HTTP/1.1 403 "+secret+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
			agentapi.FaultInvalidArgument, "the server answered HTTP 403 Forbidden"},
		{"unknown status", rawServer(t, "HTTP/1.1 599 "+secret+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
			agentapi.FaultInternalError, "the server answered HTTP 599"},
		{"connection refused", closed.URL, agentapi.FaultInternalError, "no HTTP answer from its server"},
		{"cut body", rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 40000)),
			agentapi.FaultInternalError, "broke before its end"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url + "/a.img"
			err := h.ImportVirtualDisk(t.Context(), u, "w"+string(rune('a'+i)), "r1", agentapi.ImportKindDisk, testWeb)
			wantFault(t, err, tc.code, tc.msg)
			f, _ := agentapi.AsFault(err)
			if f.Message != "cannot download "+u+": "+tc.msg && f.Message != "download of "+u+" "+tc.msg {
				t.Errorf("fault %q says more than %q", f.Message, tc.msg)
			}
			for _, w := range []string{secret, "SSH", "refused", "EOF", "malformed"} {
				if strings.Contains(f.Message, w) {
					t.Errorf("fault %q repeats %q", f.Message, w)
				}
			}
		})
	}
}

// The proxy of the environment is not used: it would connect for the
// agent, where the agent's checks do not reach. net/http reads the proxy
// environment once per process, so the import runs in a process of its
// own (this test binary again) that starts with the proxy set.
func TestImportIgnoresProxyEnvironment(t *testing.T) {
	if os.Getenv("XM_TEST_PROXY_CHILD") == "1" {
		h := newHost(t, testConfig{})
		addRepo(t, h, t.TempDir(), "r1")
		// A name that never resolves (RFC 6761): only a proxy could answer.
		err := h.ImportVirtualDisk(t.Context(), "http://mirror.invalid/a.iso", "p1", "r1", agentapi.ImportKindISO, testWeb)
		if f, ok := agentapi.AsFault(err); !ok || !strings.Contains(f.Message, "host mirror.invalid") {
			t.Fatalf("import with a proxy in the environment = %v, want the host not resolved", err)
		}
		return
	}
	var hits atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(isoImage("CD001"))
	}))
	t.Cleanup(proxy.Close)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestImportIgnoresProxyEnvironment$", "-test.count=1")
	cmd.Env = append(os.Environ(), "XM_TEST_PROXY_CHILD=1", "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL,
		"NO_PROXY=", "no_proxy=", "REQUEST_METHOD=") // REQUEST_METHOD: net/http ignores HTTP_PROXY under CGI
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the import in a process with a proxy set: %v\n%s", err, out)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the environment's proxy got %d requests", n)
	}
}
