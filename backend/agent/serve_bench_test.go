package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// benchDomains is how many live domains the agent of BenchmarkServeTLS
// runs, as in figure 7 of make bench (list_vms then answers about 14 kB).
const benchDomains = 20

// startBenchAgent starts an agent on a loopback port with benchDomains
// running domains; logging is off, as in xenagent without --debug.
func startBenchAgent(b *testing.B) net.Addr {
	b.Helper()
	dir := b.TempDir()
	a, addr, err := Start(Config{DataDir: dir, Password: testPassword, Hostname: "xen-bench",
		CPUs: 64, MemoryMiB: 262144, Logger: slog.New(slog.DiscardHandler)}, "127.0.0.1:0")
	if err != nil {
		b.Fatalf("Start: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	populateBenchHost(b, a)
	return addr
}

// populateBenchHost gives a's host benchDomains running domains.
func populateBenchHost(b *testing.B, a *Agent) {
	h := a.Host()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(h.TakeOwnership("0004fb0000010000aaaaaaaaaaaaaaaa", "bench"))
	must(h.CreateRepository(b.TempDir(), "/OVS/Repositories/r1", "r1", "bench"))
	for i := range benchDomains {
		id := fmt.Sprintf("0004fb00000600000000000000%06d", i)
		must(h.CreateVM("r1", id, agentapi.VMParams{
			agentapi.KeyName: id, agentapi.KeyUUID: id, agentapi.KeySimpleName: fmt.Sprintf("bench-vm-%d", i),
			agentapi.KeyDomainType: "XEN_HVM", agentapi.KeyMemory: int64(512), agentapi.KeyMaxMem: int64(512),
			agentapi.KeyVCPUs: int64(1), agentapi.KeyMaxVCPUs: int64(1), agentapi.KeyDisk: []string{},
			agentapi.KeyVif: []string{}, agentapi.KeyBoot: "c", agentapi.KeyOnPoweroff: "destroy",
			agentapi.KeyOnReboot: "restart", agentapi.KeyOnCrash: "restart",
		}))
		must(h.StartVM("r1", id))
	}
}

// rawConn is a minimal keep-alive HTTPS client: it writes a prepared
// request and reads the answer by its Content-Length, so that the client
// costs as little CPU as possible beside the server it measures.
type rawConn struct {
	c    *tls.Conn
	r    *bufio.Reader
	body []byte
}

func dialRaw(addr net.Addr) (*rawConn, error) {
	c, err := tls.Dial("tcp", addr.String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, r: bufio.NewReaderSize(c, 32<<10)}, nil
}

// roundTrip sends req and returns the body of the answer, checked to be a
// methodResponse that is not a fault.
func (rc *rawConn) roundTrip(req []byte) ([]byte, error) {
	if _, err := rc.c.Write(req); err != nil {
		return nil, err
	}
	status, err := rc.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return nil, fmt.Errorf("status %q", status)
	}
	n := -1
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			n, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return nil, err
			}
		}
	}
	if n < 0 {
		return nil, fmt.Errorf("no Content-Length")
	}
	if cap(rc.body) < n {
		rc.body = make([]byte, n)
	}
	rc.body = rc.body[:n]
	if _, err := io.ReadFull(rc.r, rc.body); err != nil {
		return nil, err
	}
	if !bytes.Contains(rc.body, []byte("<methodResponse>")) || bytes.Contains(rc.body, []byte("<fault>")) {
		return nil, fmt.Errorf("not a result: %.300s", rc.body)
	}
	return rc.body, nil
}

// benchRequest is the HTTP request of figure 7's call of method.
func benchRequest(addr net.Addr, method string) []byte {
	params := ""
	if method == agentapi.MethodEcho {
		params = "<param><value><string>xenbench</string></value></param>"
	}
	body := fmt.Sprintf(`<?xml version="1.0"?><methodCall><methodName>%s</methodName><params>%s</params></methodCall>`, method, params)
	auth := base64.StdEncoding.EncodeToString([]byte(agentapi.AgentUser + ":" + testPassword))
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: %d\r\n"+
		"Authorization: Basic %s\r\nContent-Type: text/xml\r\nAccept-Encoding: identity\r\n\r\n%s",
		agentapi.Path, addr, len(body), auth, body)
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServeTLS drives the real agent over real TLS loopback
// connections, with 8 keep-alive clients as figure 7 of make bench. ns/op
// is wall time per call over all clients; the CPU profile (-cpuprofile) of
// this benchmark is mostly the server's, the client being minimal; so is
// cpu-ns/op, the CPU time of the whole process per call.
func BenchmarkServeTLS(b *testing.B) {
	addr := startBenchAgent(b)
	for _, method := range []string{agentapi.MethodEcho, agentapi.MethodListVMs} {
		b.Run(method, func(b *testing.B) {
			req := benchRequest(addr, method)
			const clients = 8
			conns := make(chan *rawConn, clients)
			for range clients {
				rc, err := dialRaw(addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := rc.roundTrip(req); err != nil {
					b.Fatal(err)
				}
				conns <- rc
			}
			b.Cleanup(func() {
				close(conns)
				for rc := range conns {
					rc.c.Close()
				}
			})
			var mu sync.Mutex
			var failure error
			b.ReportAllocs()
			b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0))) // about 8 goroutines
			cpu0 := processCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rc := <-conns
				defer func() { conns <- rc }()
				for pb.Next() {
					if _, err := rc.roundTrip(req); err != nil {
						mu.Lock()
						failure = err
						mu.Unlock()
						return
					}
				}
			})
			if failure != nil {
				b.Fatal(failure)
			}
			// CPU time is steadier than wall time on a shared machine.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkHandler runs the agent's handler alone on figure 7's calls: no
// network, no TLS, no net/http; authentication, decoding, dispatch and
// encoding; without metrics, then with them (--metrics-listen: the clock
// read and the call's histogram).
func BenchmarkHandler(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", withMetrics), func(b *testing.B) { benchHandler(b, withMetrics) })
	}
}

func benchHandler(b *testing.B, withMetrics bool) {
	dir := b.TempDir()
	var mx *Metrics
	if withMetrics {
		mx = NewMetrics()
	}
	a, err := New(Config{DataDir: dir, Password: testPassword, Hostname: "xen-bench",
		CPUs: 64, MemoryMiB: 262144, Logger: slog.New(slog.DiscardHandler), Metrics: mx})
	if err != nil {
		b.Fatal(err)
	}
	populateBenchHost(b, a)
	for _, method := range []string{agentapi.MethodEcho, agentapi.MethodListVMs} {
		b.Run(method, func(b *testing.B) {
			raw := benchRequest(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8899}, method)
			_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			br := bytes.NewReader(body)
			r, err := http.NewRequest(http.MethodPost, "https://127.0.0.1:8899"+agentapi.Path, br)
			if err != nil {
				b.Fatal(err)
			}
			r.SetBasicAuth(agentapi.AgentUser, testPassword)
			req := fromHTTP(r)
			cc := &agentConn{a: a}
			buf := make([]byte, 0, 4<<10)
			var ans answer
			b.ReportAllocs()
			for b.Loop() {
				br.Reset(body)
				ans = a.answer(cc, req, &buf)
			}
			if len(buf) <= answerHeadroom || ans.status != http.StatusOK || ans.ctype == "" {
				b.Fatal("no answer")
			}
		})
	}
}
