package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"xenmanager/backend/agentapi"
)

// rpcLoadCmd is the argument that makes xenbench figure 7's load generator
// instead of the harness: `xenbench rpc-load --method M --clients N
// --window D`, the server's URL (with its credentials) in the environment
// variable rpcLoadURLEnv, so that the password is not on a command line.
// The harness runs it as a child process so that it can be pinned to a
// core of its own (taskset) apart from the server it loads.
//
// It opens N keep-alive connections (TLS for https), makes one call on
// each, prints "start", then calls in a loop on every connection for D and
// prints "calls N seconds S cpu C": the calls completed, the wall time and
// its own CPU time (user+system) over the window.
const rpcLoadCmd = "rpc-load"

// rpcLoadURLEnv names the environment variable holding the URL rpc-load
// calls.
const rpcLoadURLEnv = "XENBENCH_RPC_URL"

// rpcLoad is the load generator; it returns the exit status.
func rpcLoad(args []string) int {
	fs := flag.NewFlagSet(rpcLoadCmd, flag.ContinueOnError)
	method := fs.String("method", agentapi.MethodEcho, "method to call: echo or list_vms")
	clients := fs.Int("clients", rpcClients, "connections, one goroutine each")
	window := fs.Duration("window", 3*time.Second, "how long to call")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *clients < 1 || *window <= 0 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: xenbench rpc-load --method M --clients N (N >= 1) --window D (D > 0), the URL in", rpcLoadURLEnv)
		return 2
	}
	u, err := url.Parse(os.Getenv(rpcLoadURLEnv))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(os.Stderr, "rpc-load: %s must hold an http or https URL (%v)\n", rpcLoadURLEnv, err)
		return 2
	}
	raiseLoadProcs(os.Getenv)
	calls, elapsed, cpu, err := runRPCLoad(u, *method, *clients, *window, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpc-load:", err)
		return 1
	}
	fmt.Printf("calls %d seconds %.6f cpu %.6f\n", calls, elapsed.Seconds(), cpu.Seconds())
	return 0
}

// loadProcs is the fewest Ps (GOMAXPROCS) the load generator runs with.
// Pinned to one core (taskset) Go gives it one, and a thread the kernel
// stops while it holds that P stops every client with it: on the shared
// machine of figure 7 the load generator, not the agent, then set the
// pace of echo (about 40 % more agent calls per second with two, in
// manual runs alternated with one; Python's rates did not change, its
// server being the limit). Two, as xenagent (cmd/xenagent/procs.go).
const loadProcs = 2

// raiseLoadProcs sets GOMAXPROCS to loadProcs when the runtime chose
// fewer, unless the environment variable GOMAXPROCS (getenv) sets it.
func raiseLoadProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < loadProcs {
		runtime.GOMAXPROCS(loadProcs)
	}
}

// runRPCLoad opens the connections, warms them with one call each, writes
// "start" to started, then calls for window.
func runRPCLoad(u *url.URL, method string, clients int, window time.Duration, started io.Writer) (int64, time.Duration, time.Duration, error) {
	req := rpcRequest(u, method)
	conns := make([]*rpcConn, clients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.c.Close()
			}
		}
	}()
	// Every connection is open, and has made a call, before the clock starts.
	for i := range conns {
		c, err := dialRPC(u)
		if err != nil {
			return 0, 0, 0, err
		}
		conns[i] = c
		if err := c.SetDeadline(time.Now().Add(window + time.Minute)); err != nil {
			return 0, 0, 0, err
		}
		if err := c.call(req); err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", method, err)
		}
	}
	fmt.Fprintln(started, "start")
	cpu0 := selfCPU()
	var calls atomic.Int64
	var failure atomic.Value
	deadline := time.Now().Add(window)
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			defer func() { calls.Add(n) }()
			for time.Now().Before(deadline) {
				if err := c.call(req); err != nil {
					failure.Store(err)
					return
				}
				n++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cpu := selfCPU() - cpu0
	if err, ok := failure.Load().(error); ok {
		return 0, 0, 0, fmt.Errorf("%s: %w", method, err)
	}
	return calls.Load(), elapsed, cpu, nil
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rpcConn is a minimal HTTP/1.1 keep-alive client for one connection: it
// writes a prepared request and reads the answer by its Content-Length,
// so that the load generator spends as little CPU per call as it can
// beside the server it loads (no request built per call, none of
// net/http's client goroutines). It is the same for every server it
// loads, over TLS or not; figure 7's notes give its CPU.
type rpcConn struct {
	c    net.Conn
	r    *bufio.Reader
	body []byte
}

// dialRPC connects to u's host: TLS for https (the agent's certificate is
// self-signed and not pinned here), TCP for http.
func dialRPC(u *url.URL) (*rpcConn, error) {
	var c net.Conn
	var err error
	if u.Scheme == "https" {
		c, err = tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	return &rpcConn{c: c, r: bufio.NewReaderSize(c, 32<<10)}, nil
}

// SetDeadline bounds every read and write that follows.
func (rc *rpcConn) SetDeadline(t time.Time) error { return rc.c.SetDeadline(t) }

// errNoLength is an answer the client cannot frame.
var errNoLength = errors.New("answer without Content-Length (chunked answers are not read by this client)")

// call sends req and reads the answer, checked to be HTTP 200 and a
// methodResponse that is not a fault (not decoded further: the client's
// decoding is not what is measured).
func (rc *rpcConn) call(req []byte) error {
	if _, err := rc.c.Write(req); err != nil {
		return err
	}
	status, err := rc.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	ok := bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) || bytes.HasPrefix(status, []byte("HTTP/1.0 200 "))
	n := -1
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		if k, v, found := bytes.Cut(line, []byte(":")); found && bytes.EqualFold(bytes.TrimSpace(k), []byte("Content-Length")) {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil || n < 0 || n > 64<<20 {
				return fmt.Errorf("bad Content-Length %q", bytes.TrimSpace(v))
			}
		}
	}
	if n < 0 {
		return errNoLength
	}
	if cap(rc.body) < n {
		rc.body = make([]byte, n)
	}
	rc.body = rc.body[:n]
	if _, err := io.ReadFull(rc.r, rc.body); err != nil {
		return err
	}
	if !ok || !bytes.Contains(rc.body, []byte("<methodResponse>")) || bytes.Contains(rc.body, []byte("<fault>")) {
		return fmt.Errorf("%s: %s", bytes.TrimSpace(status), oneLine(string(rc.body[:min(len(rc.body), 300)])))
	}
	return nil
}

// rpcRequest is the whole HTTP request of a call of method to u, with
// basic auth when u holds credentials; the headers are those Go's
// net/http client sends without compression.
func rpcRequest(u *url.URL, method string) []byte {
	body := callBody(method)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	var auth string
	if u.User != nil {
		pw, _ := u.User.Password()
		auth = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)) + "\r\n"
	}
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: %d\r\n%s"+
		"Content-Type: text/xml\r\n\r\n%s", path, u.Host, len(body), auth, body)
}
