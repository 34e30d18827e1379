package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// testISO is a minimal ISO 9660 image: its volume descriptor's identifier
// CD001 at byte 32769, then some data.
func testISO() []byte {
	b := make([]byte, 32768, 50000)
	b = append(b, "\x01CD001\x01"...)
	for len(b) < cap(b) {
		b = append(b, byte(len(b)*13))
	}
	return b
}

// web is the option of an import from the tests' web servers (httptest,
// on 127.0.0.1), whose network imports refuse unless allowed.
func web(kind string) agentapi.ImportOption {
	return agentapi.ImportOption{Kind: kind, AllowedNetworks: []string{"127.0.0.0/8"}}
}

// within receives from ch, failing the test if nothing comes in a generous
// while (a regression would otherwise hang the test).
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestImportVirtualDisk runs import_virtual_disk through HTTPS XML-RPC with
// the manager's client: an ISO lands byte for byte and its progress says
// so, faults keep the protocol's messages, the call outlasts the client's
// Timeout, and dropping the call stops the download at the agent.
func TestImportVirtualDisk(t *testing.T) {
	a := startAgent(t, Config{SimControl: true})
	c := a.typed(t)
	ctx := t.Context()
	fsLoc := filepath.Join(t.TempDir(), "repo")
	must(t, c.CreateRepository(ctx, fsLoc, "/OVS/Repositories/r1", "r1", "repo one"))

	iso := testISO()
	var noMem bytes.Buffer // a template whose vm.cfg gives no memory
	tw := tar.NewWriter(&noMem)
	cfg := "name = 'x'\nvcpus = 1\ndisk = ['file:/OVS/Repositories/r1/Templates/t1/System.img,xvda,w']\n"
	must(t, tw.WriteHeader(&tar.Header{Name: "vm.cfg", Mode: 0o644, Size: int64(len(cfg))}))
	_, err := tw.Write([]byte(cfg))
	must(t, err)
	must(t, tw.Close())
	started, dropped := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(iso)))
		switch r.URL.Path {
		case "/nomem.tar":
			w.Header().Set("Content-Length", strconv.Itoa(noMem.Len()))
			w.Write(noMem.Bytes())
		case "/a.iso":
			w.Write(iso)
		case "/held.iso": // half of it, then wait for the agent to give up
			w.Write(iso[:len(iso)/2])
			w.(http.Flusher).Flush()
			close(started)
			<-r.Context().Done()
			close(dropped)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	t.Run("iso", func(t *testing.T) {
		must(t, c.ImportVirtualDisk(ctx, srv.URL+"/a.iso", "i1", "r1", web(agentapi.ImportKindISO)))
		got, err := os.ReadFile(filepath.Join(fsLoc, "ISOs", "i1.iso"))
		must(t, err)
		if !bytes.Equal(got, iso) {
			t.Errorf("imported ISO has %d bytes unlike the %d served", len(got), len(iso))
		}
		p, err := c.GetOperationProgress(ctx, agentapi.ProgressImport+"i1")
		must(t, err)
		if want := (agentapi.Progress{Key: "import:i1", Phase: "done", Done: int64(len(iso)), Total: int64(len(iso)), State: agentapi.ProgressDone}); p != want {
			t.Errorf("progress = %+v, want %+v", p, want)
		}
		repos, err := c.DiscoverRepositories(ctx, "r1")
		must(t, err)
		if repos[0].ISOs != 1 {
			t.Errorf("discover_repositories counts %d ISOs, want 1", repos[0].ISOs)
		}
	})

	faults := []struct {
		name, url, id, kind string
		code                agentapi.FaultCode
		msg                 string
	}{
		{"existing", srv.URL + "/a.iso", "i1", agentapi.ImportKindISO, agentapi.FaultInvalidState, "ISO i1 already exists in repository r1"},
		{"scheme", "ftp://127.0.0.1/a.iso", "i2", agentapi.ImportKindISO, agentapi.FaultInvalidArgument, "only http:// and https:// URLs are accepted"},
		{"404", srv.URL + "/gone.iso", "i2", agentapi.ImportKindISO, agentapi.FaultNotFound, "HTTP 404 Not Found"},
		{"kind", srv.URL + "/a.iso", "i2", "floppy", agentapi.FaultInvalidArgument, `give "disk", "iso", "template" or "ova"`},
		{"not a template", srv.URL + "/a.iso", "t1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, "holds no vm.cfg"},
		{"template vm.cfg", srv.URL + "/nomem.tar", "t1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, "Cannot obtain memory size from vm.cfg"},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			err := c.ImportVirtualDisk(ctx, tc.url, tc.id, "r1", web(tc.kind))
			wantCallFault(t, err, tc.code, tc.msg)
			if f, _ := agentapi.AsFault(err); tc.name == "template vm.cfg" && f.Message != tc.msg {
				t.Errorf("fault message %q, want exactly %q", f.Message, tc.msg)
			}
		})
	}

	t.Run("option", func(t *testing.T) {
		raw := a.client(t)
		call := func(option any) error {
			return raw.Call(agentapi.MethodImportVirtualDisk, []any{srv.URL + "/a.iso", "i3", "r1", option}, new(bool))
		}
		wantFault(t, call(map[string]any{}), agentapi.FaultInvalidArgument, `option.kind is missing: give "disk", "iso", "template" or "ova"`)
		wantFault(t, call(map[string]any{"kind": 3}), agentapi.FaultInvalidArgument, "option.kind must be a str")
		wantFault(t, call("iso"), agentapi.FaultInvalidArgument, "parameter 4 (option) must be a struct")
		for _, tc := range []struct {
			networks any
			msg      string
		}{
			{"127.0.0.0/8", "option.allowed_networks must be an array of str (networks in CIDR form), got str"},
			{[]any{"127.0.0.0/8", 7}, "option.allowed_networks element 1 must be a str (a network in CIDR form), got int 7"},
			{[]string{"127.0.0.0/8", "localhost"}, `option.allowed_networks is not valid: "localhost" is not a network: give a network in CIDR form`},
			{[]string{"127.0.0.1/8"}, `"127.0.0.1/8" has bits set past its prefix length: did you mean 127.0.0.0/8?`},
		} {
			wantFault(t, call(map[string]any{"kind": "iso", "allowed_networks": tc.networks}), agentapi.FaultInvalidArgument, tc.msg)
		}
	})

	t.Run("outlasts the client timeout", func(t *testing.T) {
		const timeout = 100 * time.Millisecond
		host, port, _ := net.SplitHostPort(a.addr.String())
		p, _ := strconv.Atoi(port)
		short, err := agentclient.New(agentclient.Config{Address: host, Port: p, Password: testPassword, PinSHA256: a.SPKISHA256(), Timeout: timeout})
		must(t, err)
		t.Cleanup(short.Close)
		lat := map[string]any{agentapi.MethodEcho: 5 * timeout.Milliseconds(), agentapi.MethodImportVirtualDisk: 5 * timeout.Milliseconds()}
		mustCall(t, a.client(t), agentapi.MethodSimSet, []any{map[string]any{"latency_ms": lat}}, nil)
		defer mustCall(t, a.client(t), agentapi.MethodSimSet, []any{map[string]any{"latency_ms": map[string]any{
			agentapi.MethodEcho: 0, agentapi.MethodImportVirtualDisk: 0}}}, nil)
		if _, err := short.Echo(ctx, "x"); !errors.Is(err, agentclient.ErrUnreachable) {
			t.Fatalf("echo slower than the timeout: %v, want ErrUnreachable", err)
		}
		must(t, short.ImportVirtualDisk(ctx, srv.URL+"/a.iso", "i4", "r1", web(agentapi.ImportKindISO)))
	})

	t.Run("dropped call", func(t *testing.T) {
		callCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		result := make(chan error, 1)
		go func() {
			result <- c.ImportVirtualDisk(callCtx, srv.URL+"/held.iso", "i5", "r1", web(agentapi.ImportKindISO))
		}()
		within(t, "the download to start", started)
		waitFor(t, "half of the ISO", func() bool {
			p, err := c.GetOperationProgress(ctx, "import:i5")
			return err == nil && p.Done == int64(len(iso)/2)
		})
		cancel()
		if err := within(t, "the cancelled call to return", result); !errors.Is(err, context.Canceled) || !errors.Is(err, agentclient.ErrUnreachable) {
			t.Fatalf("cancelled import: %v, want ErrUnreachable and context.Canceled", err)
		}
		within(t, "the agent to drop the download", dropped) // it does when the call goes
		waitFor(t, "the import to fail", func() bool {
			p, err := c.GetOperationProgress(ctx, "import:i5")
			return err == nil && p.State == agentapi.ProgressFailed
		})
		if _, err := os.Lstat(filepath.Join(fsLoc, "ISOs", "i5.iso")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("i5.iso after a dropped import: %v", err)
		}
		entries, _ := os.ReadDir(filepath.Join(fsLoc, "ISOs"))
		for _, e := range entries {
			if e.Name()[0] == '.' {
				t.Errorf("temporary %s left behind", e.Name())
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		must(t, c.CreateVM(ctx, "r1", "vm1", agentapi.VMParams{"name": "vm1", "memory": int64(128), "vcpus": int64(1),
			"disk": []string{"file:/OVS/Repositories/r1/ISOs/i1.iso,hdc:cdrom,r"}}))
		must(t, c.StartVM(ctx, "r1", "vm1"))
		wantCallFault(t, c.DeleteVirtualDisk(ctx, "r1", "i1"), agentapi.FaultInvalidState, "ISO i1 of repository r1 is used by VM vm1")
		must(t, c.StopVM(ctx, "r1", "vm1", true))
		must(t, c.DeleteVirtualDisk(ctx, "r1", "i1"))
		wantCallFault(t, c.DeleteVirtualDisk(ctx, "r1", "i1"), agentapi.FaultNotFound, "disk i1 not found in repository r1")
	})
}

// TestImportAllowedNetworks runs the address checks through XML-RPC: the
// agent says it has them (get_api_version), refuses loopback without
// option.allowed_networks, a name that resolves to it, and a redirect from
// an allowed address to one that is not; the refused server gets no
// request.
func TestImportAllowedNetworks(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.typed(t)
	ctx := t.Context()
	fsLoc := filepath.Join(t.TempDir(), "repo")
	must(t, c.CreateRepository(ctx, fsLoc, "/OVS/Repositories/r1", "r1", "repo one"))
	ver, err := c.GetAPIVersion(ctx)
	must(t, err)
	if !ver.Has(agentapi.ExtImportAllowedNetworks) {
		t.Fatalf("get_api_version = %+v, want extension %s", ver, agentapi.ExtImportAllowedNetworks)
	}

	iso := testISO()
	serve := func(addr string, hits *atomic.Int64, target string) string {
		l, err := net.Listen("tcp", addr)
		must(t, err)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if r.URL.Path == "/redirect" {
				http.Redirect(w, r, target, http.StatusFound)
				return
			}
			w.Write(iso)
		}))
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	var firstHits, secondHits atomic.Int64
	second := serve("127.0.0.2:0", &secondHits, "") // Linux answers on all of 127/8
	first := serve("127.0.0.1:0", &firstHits, second+"/a.iso")
	_, firstPort, _ := net.SplitHostPort(strings.TrimPrefix(first, "http://"))

	tests := []struct {
		name, url string
		allowed   []string
		msg       string // "" for an import that succeeds
		hits      [2]int64
	}{
		{"loopback without allowed networks", first + "/a.iso", nil, "127.0.0.1 is a loopback address, and no allowed network holds it", [2]int64{0, 0}},
		{"a name that resolves to loopback", "http://localhost:" + firstPort + "/a.iso", nil, "is a loopback address, and no allowed network holds it", [2]int64{0, 0}},
		{"redirect to an address not allowed", first + "/redirect", []string{"127.0.0.1/32"},
			"it leads to an address imports may not reach: 127.0.0.2 is a loopback address, and no allowed network holds it", [2]int64{1, 0}},
		{"redirect inside the allowed networks", first + "/redirect", []string{"127.0.0.1/32", "127.0.0.2/32"}, "", [2]int64{1, 1}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			firstHits.Store(0)
			secondHits.Store(0)
			err := c.ImportVirtualDisk(ctx, tc.url, fmt.Sprintf("n%d", i), "r1",
				agentapi.ImportOption{Kind: agentapi.ImportKindISO, AllowedNetworks: tc.allowed})
			if tc.msg == "" {
				must(t, err)
			} else {
				wantCallFault(t, err, agentapi.FaultInvalidArgument, tc.msg)
			}
			if got := [2]int64{firstHits.Load(), secondHits.Load()}; got != tc.hits {
				t.Errorf("requests to 127.0.0.1 and 127.0.0.2: %v, want %v", got, tc.hits)
			}
		})
	}
}
