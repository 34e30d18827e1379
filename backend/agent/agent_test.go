package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/xmlrpcwire"
	"xenmanager/backend/agentclient"
)

const testPassword = "s3cret-test-password"

// testLogger sends the agent's log to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type testAgent struct {
	*Agent
	addr net.Addr
	dir  string
}

// waitFor spins (yielding, not sleeping) until cond holds, failing after a
// generous deadline.
var waitFor = testkit.WaitFor

func startAgent(t *testing.T, cfg Config) *testAgent {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Password == "" {
		cfg.Password = testPassword
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "xen-test"
	}
	cfg.Logger = testLogger(t)
	a, addr, err := Start(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &testAgent{Agent: a, addr: addr, dir: cfg.DataDir}
}

// pinnedTransport trusts exactly the certificate whose SPKI hash is pin, the
// way the manager does.
func pinnedTransport(pin string) *http.Transport {
	return &http.Transport{
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // replaced by the pin check below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no peer certificate")
				}
				if got := SPKISHA256(cs.PeerCertificates[0]); got != pin {
					return fmt.Errorf("agent certificate %s does not match the pinned %s", got, pin)
				}
				return nil
			},
		},
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

func (a *testAgent) url(password, path string) string {
	return fmt.Sprintf("https://%s:%s@%s%s", agentapi.AgentUser, password, a.addr, path)
}

func (a *testAgent) client(t *testing.T) *xmlrpc.Client {
	t.Helper()
	return a.clientWith(t, testPassword, agentapi.Path, a.SPKISHA256())
}

func (a *testAgent) clientWith(t *testing.T, password, path, pin string) *xmlrpc.Client {
	t.Helper()
	c, err := xmlrpc.NewClient(a.url(password, path), pinnedTransport(pin))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var faultRE = regexp.MustCompile(`^Fault\((\d+)\): (.*)$`)

// wantFault fails unless err is the XML-RPC fault code whose string
// contains sub.
func wantFault(t *testing.T, err error, code agentapi.FaultCode, sub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want fault %d (%s)", code, sub)
	}
	m := faultRE.FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("err = %v, want an XML-RPC fault", err)
	}
	got, _ := strconv.Atoi(m[1])
	if agentapi.FaultCode(got) != code || !strings.HasPrefix(m[2], code.Kind()+": ") || !strings.Contains(m[2], sub) {
		t.Fatalf("fault = %v, want code %d (%s) containing %q", err, code, code.Kind(), sub)
	}
}

func mustCall(t *testing.T, c *xmlrpc.Client, method string, args []any, reply any) {
	t.Helper()
	if reply == nil {
		reply = new(bool)
	}
	if err := c.Call(method, args, reply); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if b, ok := reply.(*bool); ok && !*b {
		t.Fatalf("%s returned false, want true", method)
	}
}

func TestAuth(t *testing.T) {
	a := startAgent(t, Config{})
	tr := pinnedTransport(a.SPKISHA256())
	body, _ := xmlrpc.EncodeMethodCall(agentapi.MethodEcho, "hi")
	tests := []struct {
		name string
		url  string
		want int
	}{
		{"wrong password", a.url("nope", agentapi.Path), http.StatusUnauthorized},
		{"no credentials", "https://" + a.addr.String() + agentapi.Path, http.StatusUnauthorized},
		{"wrong user", fmt.Sprintf("https://root:%s@%s%s", testPassword, a.addr, agentapi.Path), http.StatusUnauthorized},
		{"right", a.url(testPassword, agentapi.Path), http.StatusOK},
		{"RPC2 path", a.url(testPassword, agentapi.PathRPC2), http.StatusOK},
		{"other path", a.url(testPassword, "/api/2/"), http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := (&http.Client{Transport: tr}).Post(tt.url, "text/xml", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized && (len(got) != 0 || resp.Header.Get("WWW-Authenticate") == "") {
				t.Errorf("401 with body %q and WWW-Authenticate %q; want no body and a challenge", got, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// Through kolo, as the manager sees it.
	var s string
	err := a.clientWith(t, "nope", agentapi.Path, a.SPKISHA256()).Call(agentapi.MethodEcho, "hi", &s)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("kolo with a wrong password: %v, want a 401 error", err)
	}
	// A client pinning another key refuses the agent.
	err = a.clientWith(t, testPassword, agentapi.Path, strings.Repeat("0", 64)).Call(agentapi.MethodEcho, "hi", &s)
	if err == nil || !strings.Contains(err.Error(), "does not match the pinned") {
		t.Errorf("wrong pin: %v, want a pin mismatch", err)
	}
}

// Every form of the Authorization header is checked, the one Go's client
// writes (recognised by its hash) and the others basic auth allows.
func TestAuthHeaderForms(t *testing.T) {
	a := startAgent(t, Config{})
	client := &http.Client{Transport: pinnedTransport(a.SPKISHA256())}
	body, _ := xmlrpc.EncodeMethodCall(agentapi.MethodEcho, "hi")
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	right := agentapi.AgentUser + ":" + testPassword
	tests := []struct {
		name   string
		values []string // Authorization headers, in order
		want   int
	}{
		{"as Go writes it", []string{"Basic " + b64(right)}, http.StatusOK},
		{"scheme in lower case", []string{"basic " + b64(right)}, http.StatusOK},
		{"scheme in upper case", []string{"BASIC " + b64(right)}, http.StatusOK},
		{"wrong password", []string{"Basic " + b64(agentapi.AgentUser+":"+testPassword+"x")}, http.StatusUnauthorized},
		{"password's prefix", []string{"Basic " + b64(agentapi.AgentUser+":"+testPassword[:len(testPassword)-1])}, http.StatusUnauthorized},
		{"right header twice", []string{"Basic " + b64(right), "Basic " + b64(right)}, http.StatusOK},
		{"wrong, then right", []string{"Basic " + b64("oracle:nope"), "Basic " + b64(right)}, http.StatusUnauthorized},
		{"not base64", []string{"Basic " + right}, http.StatusUnauthorized},
		{"bearer", []string{"Bearer " + b64(right)}, http.StatusUnauthorized},
		{"empty", []string{""}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "https://"+a.addr.String()+agentapi.Path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header["Authorization"] = tt.values
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			// Every answer has its length (one write of header and body), none is chunked.
			if resp.StatusCode == http.StatusOK && (resp.ContentLength != n || len(resp.TransferEncoding) > 0) {
				t.Errorf("answer of %d bytes with Content-Length %d, Transfer-Encoding %q; want its length, not chunked", n, resp.ContentLength, resp.TransferEncoding)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.client(t)
	var s string
	wantFault(t, c.Call("no_such_method", nil, &s), agentapi.FaultInvalidArgument, "unknown method no_such_method")
	wantFault(t, c.Call(agentapi.MethodSimSet, map[string]any{"hang": true}, &s), agentapi.FaultInvalidArgument, "unknown method sim_set")
	wantFault(t, c.Call(agentapi.MethodEcho, nil, &s), agentapi.FaultInvalidArgument, "echo takes 1 parameters (msg str), got 0")
	wantFault(t, c.Call(agentapi.MethodStopVM, []any{"r", "v", "yes"}, &s), agentapi.FaultInvalidArgument, `stop_vm: parameter 3 (force) must be a bool, got str "yes"`)
	wantFault(t, c.Call(agentapi.MethodCreateVM, []any{"r", 5, map[string]any{}}, &s), agentapi.FaultInvalidArgument, "create_vm: parameter 2 (vm_id) must be a str, got int 5")
	wantFault(t, c.Call(agentapi.MethodDiscoverRepositories, []any{[]any{"a", 1}}, &s), agentapi.FaultInvalidArgument, "parameter 1 (ids) must be a array of str")

	// Malformed XML is a fault too, not an HTTP error.
	resp, err := (&http.Client{Transport: pinnedTransport(a.SPKISHA256())}).Post(a.url(testPassword, agentapi.Path), "text/xml", strings.NewReader("<methodCall>"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantFault(t, xmlrpc.Response(body).Err(), agentapi.FaultInvalidArgument, "malformed XML-RPC call")

	// A panic in a method becomes fault 1000 and the agent carries on.
	a.methods["boom"] = method{fn: func(*call) (any, error) { panic("kaboom") }}
	wantFault(t, c.Call("boom", nil, &s), agentapi.FaultInternalError, "internal error in boom")
	mustCall(t, c, agentapi.MethodEcho, []any{"still here"}, &s)
	if s != "still here" {
		t.Errorf("echo = %q", s)
	}
}

// TestLifecycle drives a server the way the manager does: discover, take
// ownership, create a repository, create, start, list, stop and delete VMs.
func TestLifecycle(t *testing.T) {
	a := startAgent(t, Config{CPUs: 4, MemoryMiB: 8192})
	c := a.client(t)

	var ver agentapi.VersionInfo
	mustCall(t, c, agentapi.MethodGetAPIVersion, nil, &ver)
	if ver.APIVersion != "3" || ver.AgentVersion == "" {
		t.Errorf("version = %+v", ver)
	}
	var echo string
	mustCall(t, c, agentapi.MethodEcho, []any{"hello <&>"}, &echo)
	if echo != "hello <&>" {
		t.Errorf("echo = %q", echo)
	}
	var srv agentapi.ServerInfo
	mustCall(t, c, agentapi.MethodDiscoverServer, nil, &srv)
	if srv.Hostname != "xen-test" || srv.UniqueID == "" || srv.Address != "127.0.0.1" || srv.MembershipState != agentapi.MembershipUnowned {
		t.Errorf("server = %+v", srv)
	}
	var hw agentapi.Hardware
	mustCall(t, c, agentapi.MethodDiscoverHardware, nil, &hw)
	if hw.Manufacturer != "Xen Simulator" || hw.Threads() != 4 || hw.TotalMemoryMiB != 8192 || hw.FreeMemoryMiB != 7168 || hw.Dom0MemoryMiB != 1024 {
		t.Errorf("hardware = %+v", hw)
	}

	mustCall(t, c, agentapi.MethodTakeOwnership, []any{"mgr-1", "manager one"}, nil)
	var b bool
	wantFault(t, c.Call(agentapi.MethodTakeOwnership, []any{"mgr-2", "other"}, &b), agentapi.FaultNotOwner, "owned by manager")
	// A fresh value: kolo cannot decode an array into a non-empty slice.
	var owned agentapi.ServerInfo
	mustCall(t, c, agentapi.MethodDiscoverServer, nil, &owned)
	if owned.MembershipState != agentapi.MembershipOwned || owned.ManagerUniqueID != "mgr-1" {
		t.Errorf("after take_ownership: %+v", owned)
	}

	fsLoc := filepath.Join(t.TempDir(), "repo1")
	mustCall(t, c, agentapi.MethodCreateRepository, []any{fsLoc, "/OVS/Repositories/r1", "r1", "Repo One"}, nil)
	wantFault(t, c.Call(agentapi.MethodCreateRepository, []any{"relative", "/OVS/Repositories/r2", "r2", "x"}, &b), agentapi.FaultInvalidArgument, "not an absolute path")
	var repos []agentapi.Repository
	mustCall(t, c, agentapi.MethodDiscoverRepositories, []any{[]string{}}, &repos)
	if len(repos) != 1 || repos[0].UUID != "r1" || repos[0].Alias != "Repo One" || repos[0].TotalMiB <= 0 {
		t.Errorf("repositories = %+v", repos)
	}

	params := map[string]any{
		"name": "web1", "uuid": "u-web1", "memory": 4096, "vcpus": 2,
		"disk": []string{"file:/OVS/Repositories/r1/VirtualDisks/d1.img,xvda,w"},
	}
	mustCall(t, c, agentapi.MethodCreateVM, []any{"r1", "web1", params}, nil)
	var cfgBack map[string]any
	mustCall(t, c, agentapi.MethodGetVMConfig, []any{"r1", "web1"}, &cfgBack)
	var cfgParams agentapi.VMParams
	if err := agentapi.Decode(cfgBack, &cfgParams); err != nil {
		t.Fatal(err)
	}
	if mem, _ := cfgParams.Int(agentapi.KeyMemory); mem != 4096 || cfgParams.String(agentapi.KeyName) != "web1" {
		t.Errorf("get_vm_config = %#v", cfgBack)
	}
	big := map[string]any{"name": "big", "memory": 4096, "vcpus": 1}
	mustCall(t, c, agentapi.MethodCreateVM, []any{"r1", "big", big}, nil)

	mustCall(t, c, agentapi.MethodStartVM, []any{"r1", "web1"}, nil)
	wantFault(t, c.Call(agentapi.MethodStartVM, []any{"r1", "web1"}, &b), agentapi.FaultInvalidState, "already running")
	wantFault(t, c.Call(agentapi.MethodStartVM, []any{"r1", "big"}, &b), agentapi.FaultInsufficientResources, "needs 4096 MiB, 3072 MiB free")

	var doms []agentapi.Domain
	mustCall(t, c, agentapi.MethodListVMs, nil, &doms)
	if len(doms) != 1 || doms[0].UUID != "u-web1" || doms[0].DomID != 1 || doms[0].State != agentapi.StateRunning || doms[0].MemoryMiB != 4096 || doms[0].RepoID != "r1" {
		t.Errorf("list_vms = %+v", doms)
	}
	var dom agentapi.Domain
	mustCall(t, c, agentapi.MethodListVM, []any{"r1", "web1"}, &dom)
	if dom.Name != "web1" || dom.VCPUs != 2 {
		t.Errorf("list_vm = %+v", dom)
	}
	wantFault(t, c.Call(agentapi.MethodDeleteVM, []any{"r1", "web1"}, &b), agentapi.FaultInvalidState, "stop it first")
	mustCall(t, c, agentapi.MethodStopVM, []any{"r1", "web1", false}, nil)
	wantFault(t, c.Call(agentapi.MethodListVM, []any{"r1", "web1"}, &dom), agentapi.FaultNotFound, "not running")
	var none []agentapi.Domain
	mustCall(t, c, agentapi.MethodListVMs, nil, &none)
	if len(none) != 0 {
		t.Errorf("list_vms after stop = %+v", none)
	}
	mustCall(t, c, agentapi.MethodStartVM, []any{"r1", "big"}, nil)
	mustCall(t, c, agentapi.MethodStopVM, []any{"r1", "big", true}, nil)
	mustCall(t, c, agentapi.MethodDeleteVM, []any{"r1", "web1"}, nil)
	wantFault(t, c.Call(agentapi.MethodGetVMConfig, []any{"r1", "web1"}, &cfgBack), agentapi.FaultNotFound, "not found")
	if _, err := os.Stat(filepath.Join(fsLoc, "VirtualMachines", "web1")); !os.IsNotExist(err) {
		t.Errorf("VM directory still there: %v", err)
	}
	mustCall(t, c, agentapi.MethodReleaseOwnership, []any{"mgr-1"}, nil)
}

func TestSimControl(t *testing.T) {
	a := startAgent(t, Config{SimControl: true})
	c := a.client(t)
	var s string
	mustCall(t, c, agentapi.MethodSimSet, []any{map[string]any{"fail_next": map[string]string{"echo": "injected failure"}}}, nil)
	wantFault(t, c.Call(agentapi.MethodEcho, "x", &s), agentapi.FaultInternalError, "injected failure")
	mustCall(t, c, agentapi.MethodEcho, []any{"x"}, &s)
	wantFault(t, c.Call(agentapi.MethodSimSet, []any{map[string]any{"bogus": 1}}, new(bool)), agentapi.FaultInvalidArgument, `unknown setting "bogus"`)

	// While hung, calls block; another client lifts the hang and they return.
	mustCall(t, c, agentapi.MethodSimSet, []any{map[string]any{"hang": true}}, nil)
	done := make(chan error, 1)
	go func() {
		var r string
		done <- a.client(t).Call(agentapi.MethodEcho, "late", &r)
	}()
	waitFor(t, "the call to block", func() bool { return a.Sim().HungCalls() == 1 })
	select {
	case err := <-done:
		t.Fatalf("call returned during a hang: %v", err)
	default:
	}
	mustCall(t, a.client(t), agentapi.MethodSimSet, []any{map[string]any{"hang": false}}, nil)
	if err := <-done; err != nil {
		t.Fatalf("call after the hang: %v", err)
	}
}

// TestShutdownEndsHang checks that Shutdown abandons calls blocked by a hang
// instead of waiting for them forever.
func TestShutdownEndsHang(t *testing.T) {
	a := startAgent(t, Config{SimControl: true})
	c := a.client(t)
	mustCall(t, c, agentapi.MethodSimSet, []any{map[string]any{"hang": true}}, nil)
	done := make(chan error, 1)
	go func() {
		var r string
		done <- a.client(t).Call(agentapi.MethodEcho, "x", &r)
	}()
	waitFor(t, "the call to block", func() bool { return a.Sim().HungCalls() == 1 })
	if err := a.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wantFault(t, <-done, agentapi.FaultInternalError, "call to echo abandoned")
}

func TestConcurrentClients(t *testing.T) {
	a := startAgent(t, Config{CPUs: 8, MemoryMiB: 65536})
	setup := a.client(t)
	fsLoc := t.TempDir()
	mustCall(t, setup, agentapi.MethodCreateRepository, []any{fsLoc, "/OVS/Repositories/r1", "r1", "shared"}, nil)

	const clients, perClient = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for i := range clients {
		c := a.client(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				id := fmt.Sprintf("vm-%d-%d", i, j)
				var ok bool
				var s string
				steps := []struct {
					method string
					args   []any
					reply  any
				}{
					{agentapi.MethodCreateVM, []any{"r1", id, map[string]any{"memory": 256, "vcpus": 1}}, &ok},
					{agentapi.MethodStartVM, []any{"r1", id}, &ok},
					{agentapi.MethodEcho, []any{id}, &s},
					{agentapi.MethodListVMs, nil, new([]agentapi.Domain)},
					{agentapi.MethodStopVM, []any{"r1", id, true}, &ok},
					{agentapi.MethodDeleteVM, []any{"r1", id}, &ok},
				}
				for _, st := range steps {
					if err := c.Call(st.method, st.args, st.reply); err != nil {
						errs <- fmt.Errorf("%s %s: %w", st.method, id, err)
						return
					}
				}
				if s != id {
					errs <- fmt.Errorf("echo %s returned %q", id, s)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var doms []agentapi.Domain
	mustCall(t, setup, agentapi.MethodListVMs, nil, &doms)
	if len(doms) != 0 {
		t.Errorf("domains left: %d", len(doms))
	}
}

func TestCertificateKept(t *testing.T) {
	dir := t.TempDir()
	a1, err := New(Config{DataDir: dir, Password: "p", Hostname: "xen-cert", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := New(Config{DataDir: dir, Password: "p", Hostname: "xen-cert", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if a1.SPKISHA256() != a2.SPKISHA256() || len(a1.SPKISHA256()) != 64 {
		t.Errorf("SPKI changed across New on one directory: %s -> %s", a1.SPKISHA256(), a2.SPKISHA256())
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	leaf, err := x509.ParseCertificate(a1.cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("xen-cert"); err != nil {
		t.Errorf("hostname SAN: %v", err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("127.0.0.1 SAN: %v", err)
	}
	if err := leaf.VerifyHostname("::1"); err != nil {
		t.Errorf("::1 SAN: %v", err)
	}
	if years := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24 / 365; years < 9.9 {
		t.Errorf("certificate valid %.1f years, want 10", years)
	}
	if _, err := New(Config{DataDir: dir, Hostname: "x"}); err == nil {
		t.Error("New without a password succeeded")
	}
	if err := os.Remove(filepath.Join(dir, CertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{DataDir: dir, Password: "p", Hostname: "x", Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Errorf("New with the key but no certificate: %v", err)
	}
}

// TestResultShapes checks the wire types the protocol fixes: <i8> for
// integers beyond 32 bits, <double> for cpu_time_s.
func TestResultShapes(t *testing.T) {
	var b bytes.Buffer
	if err := xmlrpcwire.EncodeResponse(&b, []agentapi.Domain{{UUID: "u", DomID: 3, CPUTimeS: 1.5, MemoryMiB: 1 << 40}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "<i8>1099511627776</i8>") || !strings.Contains(b.String(), "<double>1.5</double>") {
		t.Errorf("response %s lacks <i8> for big memory or <double> for cpu_time_s", b.String())
	}
}

// discover_server names the hypervisor: the simulated host says so, and
// leaves out the version it does not have rather than sending it empty.
func TestDiscoverServerNamesTheHypervisor(t *testing.T) {
	a := startAgent(t, Config{})
	body, _ := xmlrpc.EncodeMethodCall(agentapi.MethodDiscoverServer)
	resp, err := (&http.Client{Transport: pinnedTransport(a.SPKISHA256())}).Post(a.url(testPassword, agentapi.Path), "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "<name>hypervisor_type</name><value><string>simulated</string></value>"; !strings.Contains(string(got), want) {
		t.Errorf("discover_server lacks %s:\n%s", want, got)
	}
	if strings.Contains(string(got), "hypervisor_version") {
		t.Errorf("discover_server sends hypervisor_version, which the simulated host does not know:\n%s", got)
	}
}

// Wrong passwords from one address make the agent refuse that address's
// calls, unchecked, for a wait that doubles up to a cap; another address is
// not affected; a right password once the wait is over clears it. The
// manager's client reports the refusal as ErrTooManyFailures.
func TestAuthBackoff(t *testing.T) {
	a := startAgent(t, Config{})
	var clock sync.Mutex // guards now
	now := time.Unix(1e9, 0)
	a.authFailures.mu.Lock()
	a.authFailures.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	a.authFailures.mu.Unlock()
	advance := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }

	body, _ := xmlrpc.EncodeMethodCall(agentapi.MethodEcho, "hi")
	clients := map[string]*http.Client{}
	for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
		tr := pinnedTransport(a.SPKISHA256())
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext
		clients[src] = &http.Client{Transport: tr}
	}
	call := func(src, password string) (status int, retryAfter string) {
		t.Helper()
		resp, err := clients[src].Post(a.url(password, agentapi.Path), "text/xml", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	want := func(src, password string, wantStatus int, wantRetry string) {
		t.Helper()
		if st, ra := call(src, password); st != wantStatus || ra != wantRetry {
			t.Fatalf("from %s with password %q: %d, Retry-After %q; want %d, %q", src, password, st, ra, wantStatus, wantRetry)
		}
	}

	for range freeAuthFailures + 1 {
		want("127.0.0.1", "guess", http.StatusUnauthorized, "")
	}
	// Waiting now: even the right password is not checked.
	want("127.0.0.1", testPassword, http.StatusTooManyRequests, "1")
	want("127.0.0.1", "guess", http.StatusTooManyRequests, "1")
	// Another address is not affected.
	want("127.0.0.2", testPassword, http.StatusOK, "")
	// The manager's client says what happened.
	host, port, _ := net.SplitHostPort(a.addr.String())
	p, _ := strconv.Atoi(port)
	c, err := agentclient.New(agentclient.Config{Address: host, Port: p, Password: testPassword, PinSHA256: a.SPKISHA256()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Echo(context.Background(), "hi"); !errors.Is(err, agentclient.ErrTooManyFailures) {
		t.Fatalf("agentclient during the wait: %v, want ErrTooManyFailures", err)
	}
	// Each further failure doubles the wait, up to the cap.
	for _, wait := range []int{2, 4, 8, 16, 30, 30} {
		advance(time.Minute) // past the wait before, within the failure window
		want("127.0.0.1", "guess", http.StatusUnauthorized, "")
		want("127.0.0.1", testPassword, http.StatusTooManyRequests, strconv.Itoa(wait))
	}
	// Once the wait is over the right password is checked, and clears the address.
	advance(maxAuthBackoff)
	want("127.0.0.1", testPassword, http.StatusOK, "")
	for range freeAuthFailures {
		want("127.0.0.1", "guess", http.StatusUnauthorized, "")
	}
	want("127.0.0.1", testPassword, http.StatusOK, "")
}
