package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/xmlrpcwire"
	"xenmanager/backend/agentclient"
)

// typed returns the manager's client for the agent, pinned to its
// certificate.
func (a *testAgent) typed(t *testing.T) *agentclient.Client {
	t.Helper()
	host, port, _ := net.SplitHostPort(a.addr.String())
	p, _ := strconv.Atoi(port)
	c, err := agentclient.New(agentclient.Config{Address: host, Port: p, Password: testPassword, PinSHA256: a.SPKISHA256(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// wantCallFault fails unless err is an agent fault of code containing sub.
func wantCallFault(t *testing.T, err error, code agentapi.FaultCode, sub string) {
	t.Helper()
	f, ok := agentapi.AsFault(err)
	if !ok {
		t.Fatalf("err = %v, want a %s fault containing %q", err, code.Kind(), sub)
	}
	if f.Code != code || !strings.Contains(f.Message, sub) {
		t.Fatalf("fault = %v, want %s containing %q", f, code.Kind(), sub)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// withRepoVM creates repository r1 and VM vm1 (uuid u-vm1) of memory MiB.
func withRepoVM(t *testing.T, c *agentclient.Client, memory int64) string {
	t.Helper()
	ctx := t.Context()
	fsLoc := filepath.Join(t.TempDir(), "repo")
	must(t, c.CreateRepository(ctx, fsLoc, "/OVS/Repositories/r1", "r1", "repo one"))
	must(t, c.CreateVM(ctx, "r1", "vm1", agentapi.VMParams{"name": "vm1", "uuid": "u-vm1", "memory": memory, "vcpus": 1, "maxmem": 2 * memory, "on_crash": "preserve"}))
	return fsLoc
}

func TestPoolCalls(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.typed(t)
	ctx := t.Context()

	// The empty shape: empty strings, members an empty array, nothing absent.
	body, _ := xmlrpc.EncodeMethodCall(agentapi.MethodDiscoverServerPool)
	resp, err := (&http.Client{Transport: pinnedTransport(a.SPKISHA256())}).Post(a.url(testPassword, agentapi.Path), "text/xml", bytes.NewReader(body))
	must(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"<name>alias</name><value><string></string></value>",
		"<name>master</name><value><string></string></value>",
		"<name>members</name><value><array><data></data></array></value>",
		"<name>pool_uuid</name><value><string></string></value>",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("discover_server_pool in no pool lacks %s:\n%s", want, got)
		}
	}
	wantCallFault(t, c.LeaveServerPool(ctx, "p1"), agentapi.FaultNotFound, "is in no pool")

	pool := agentapi.PoolParams{Alias: "Pool 1", PoolUUID: "p1", VIP: "192.0.2.100", Num: 1, Name: "xen-test", Host: "127.0.0.1", Roles: "xen,utility"}
	must(t, c.CreateServerPool(ctx, pool))
	pool.PoolUUID = "p2"
	wantCallFault(t, c.JoinServerPool(ctx, pool), agentapi.FaultInvalidState, "already in pool p1")
	must(t, c.SetPoolMemberIPList(ctx, []string{"127.0.0.1", "127.0.0.2"}))
	must(t, c.UpdateServerRoles(ctx, "xen"))
	wantCallFault(t, c.UpdateServerRoles(ctx, "xen,dom0"), agentapi.FaultInvalidArgument, `unknown role "dom0"`)
	info, err := c.DiscoverServerPool(ctx)
	must(t, err)
	if want := (agentapi.PoolInfo{PoolUUID: "p1", Alias: "Pool 1", Master: "xen-test", Members: []string{"127.0.0.1", "127.0.0.2"}}); !reflect.DeepEqual(info, want) {
		t.Errorf("discover_server_pool = %+v, want %+v", info, want)
	}
	srv, err := c.DiscoverServer(ctx)
	must(t, err)
	if !srv.IsCurrentMaster || srv.PoolUniqueID != "p1" || srv.MembershipState != agentapi.MembershipPooled || !reflect.DeepEqual(srv.ServerRoles, []string{"xen", "master"}) {
		t.Errorf("discover_server = %+v", srv)
	}

	withRepoVM(t, c, 512)
	must(t, c.StartVM(ctx, "r1", "vm1"))
	wantCallFault(t, c.LeaveServerPool(ctx, "p1"), agentapi.FaultInvalidState, "stop or migrate them before leaving pool p1")
	must(t, c.StopVM(ctx, "r1", "vm1", true))
	wantCallFault(t, c.LeaveServerPool(ctx, "p2"), agentapi.FaultInvalidState, "is in pool p1")
	must(t, c.LeaveServerPool(ctx, "p1"))
	if info, _ := c.DiscoverServerPool(ctx); info.PoolUUID != "" || info.Members == nil {
		t.Errorf("after leaving: %+v", info)
	}
}

func TestDomainOperations(t *testing.T) {
	a := startAgent(t, Config{CPUs: 4, MemoryMiB: 8192, SimControl: true})
	c := a.typed(t)
	ctx := t.Context()
	fsLoc := withRepoVM(t, c, 64)

	wantCallFault(t, c.PauseVM(ctx, "r1", "vm1"), agentapi.FaultNotFound, "not running")
	must(t, c.StartVM(ctx, "r1", "vm1"))

	// configure_vm merges and changes memory live within maxmem.
	must(t, c.ConfigureVM(ctx, "r1", "vm1", agentapi.VMParams{"memory": 128, "OVM_description": "resized"}))
	cfg, err := c.GetVMConfig(ctx, "r1", "vm1")
	must(t, err)
	if m, _ := cfg.Int("memory"); m != 128 || cfg.String("OVM_description") != "resized" || cfg.String("name") != "vm1" {
		t.Errorf("vm.cfg after configure_vm = %#v", cfg)
	}
	wantCallFault(t, c.ConfigureVM(ctx, "r1", "vm1", agentapi.VMParams{"memory": 256}), agentapi.FaultInvalidState, "runs with maxmem 128 MiB")
	must(t, c.ConfigureVMHA(ctx, "r1", "vm1", true))
	if cfg, _ := c.GetVMConfig(ctx, "r1", "vm1"); cfg[agentapi.KeyHA] != true {
		t.Errorf("OVM_high_availability = %#v, want true", cfg[agentapi.KeyHA])
	}

	must(t, c.PauseVM(ctx, "r1", "vm1"))
	wantCallFault(t, c.PauseVM(ctx, "r1", "vm1"), agentapi.FaultInvalidState, "is paused")
	must(t, c.UnpauseVM(ctx, "r1", "vm1"))
	must(t, c.RebootVM(ctx, "r1", "vm1", 30))
	dom, err := c.ListVM(ctx, "r1", "vm1")
	must(t, err)
	if dom.DomID != 2 || dom.State != agentapi.StateRunning || dom.MemoryMiB != 128 {
		t.Errorf("after reboot_vm: %+v", dom)
	}

	// save_vm / restore_vm through a real file.
	must(t, c.SaveVM(ctx, "r1", "vm1", false))
	if fi, err := os.Stat(filepath.Join(fsLoc, "VirtualMachines", "vm1", "save.img")); err != nil || fi.Size() != 4096+128<<20 {
		t.Fatalf("save file: %v", err)
	}
	prog, err := c.GetOperationProgress(ctx, "save:vm1")
	must(t, err)
	if prog.State != agentapi.ProgressDone || prog.Done != 128 || prog.Total != 128 {
		t.Errorf("progress = %+v", prog)
	}
	_, err = c.GetOperationProgress(ctx, "save:other")
	wantCallFault(t, err, agentapi.FaultNotFound, `no operation "save:other"`)
	if dom, _ := c.ListVM(ctx, "r1", "vm1"); dom.State != agentapi.StateSuspended {
		t.Errorf("after save_vm: %+v, want suspended", dom)
	}
	must(t, c.RestoreVM(ctx, "r1", "vm1", false))
	wantCallFault(t, c.RestoreVM(ctx, "r1", "vm1", false), agentapi.FaultInvalidState, "restore_vm needs it suspended or stopped")
	if dom, _ := c.ListVM(ctx, "r1", "vm1"); dom.State != agentapi.StateRunning || dom.DomID != 3 {
		t.Errorf("after restore_vm: %+v", dom)
	}

	// Statistics.
	st, err := c.GetStatistics(ctx)
	must(t, err)
	if len(st.VMs) != 1 || st.VMs[0].UUID != "u-vm1" || st.VMs[0].CPUPercent != 25 || st.MemoryFreeMiB != 7168-128 || st.Time < time.Now().Unix()-60 ||
		st.VMs[0].Guest.IP == "" || st.VMs[0].Guest.Processes == 0 {
		t.Errorf("get_statistics = %+v", st)
	}

	// Events: a crash and a guest shutdown, not the calls above.
	ev, err := c.GetEvents(ctx, 0)
	must(t, err)
	if ev.Next != 0 || len(ev.Events) != 0 {
		t.Errorf("events before any = %+v", ev)
	}
	mustCall(t, a.client(t), agentapi.MethodSimSet, []any{map[string]any{"crash_vm": "u-vm1"}}, nil)
	ev, err = c.GetEvents(ctx, ev.Next)
	must(t, err)
	if len(ev.Events) != 1 || ev.Events[0].Kind != agentapi.EventVMCrashed || ev.Events[0].VMUUID != "u-vm1" || ev.Events[0].RepoID != "r1" || ev.Events[0].State != "crashed" {
		t.Errorf("events after a crash = %+v", ev)
	}
	must(t, c.StopVM(ctx, "r1", "vm1", true))
	must(t, c.StartVM(ctx, "r1", "vm1"))
	mustCall(t, a.client(t), agentapi.MethodSimSet, []any{map[string]any{"guest_shutdown": "vm1"}}, nil)
	ev, err = c.GetEvents(ctx, ev.Next)
	must(t, err)
	if len(ev.Events) != 1 || ev.Events[0].Kind != agentapi.EventVMShutdown || ev.Events[0].Seq != 2 || ev.Next != 2 {
		t.Errorf("events after a guest shutdown = %+v", ev)
	}
	if doms, _ := c.ListVMs(ctx); len(doms) != 0 {
		t.Errorf("domains after the guest shut down: %+v", doms)
	}

	// Parameter types are checked as for every method.
	var b bool
	wantFault(t, a.client(t).Call(agentapi.MethodRebootVM, []any{"r1", "vm1", "soon"}, &b), agentapi.FaultInvalidArgument, "reboot_vm: parameter 3 (wait) must be a int")
	wantFault(t, a.client(t).Call(agentapi.MethodCreateServerPool, []any{"a", "p"}, &b), agentapi.FaultInvalidArgument,
		"create_server_pool takes 7 parameters (alias str, pool_uuid str, vip str, num int, name str, host str, roles str), got 2")
}

// TestStatisticsShapes checks the wire types of get_statistics: doubles for
// cpu_percent and load1, integers elsewhere.
func TestStatisticsShapes(t *testing.T) {
	var b bytes.Buffer
	st := agentapi.Statistics{Time: 1, CPUPercent: 12, VMs: []agentapi.VMStats{{UUID: "u", CPUPercent: 50, NetRxBytes: 5 << 30, Guest: agentapi.GuestStats{Load1: 1}}}}
	if err := xmlrpcwire.EncodeResponse(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<name>cpu_percent</name><value><double>12</double>",
		"<name>cpu_percent</name><value><double>50</double>",
		"<name>load1</name><value><double>1</double>",
		"<name>net_rx_bytes</name><value><i8>5368709120</i8>",
		"<name>time</name><value><int>1</int>",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("get_statistics response lacks %s:\n%s", want, b.String())
		}
	}
}

func TestDisksAndRepositories(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.typed(t)
	ctx := t.Context()
	fsLoc := withRepoVM(t, c, 256)
	must(t, c.CreateVirtualDisk(ctx, "r1", "d1", 2048, true))
	must(t, c.CreateVirtualDisk(ctx, "r1", "d2", 4, false))
	wantCallFault(t, c.CreateVirtualDisk(ctx, "r1", "d2", 4, false), agentapi.FaultInvalidState, "already exists")
	if fi, err := os.Stat(filepath.Join(fsLoc, "VirtualDisks", "d1.img")); err != nil || fi.Size() != 2048<<20 {
		t.Fatalf("sparse disk: %v", err)
	}
	if p, err := c.GetOperationProgress(ctx, "disk:d2"); err != nil || p.State != agentapi.ProgressDone || p.Total != 4 {
		t.Errorf("progress of the non-sparse disk = %+v, %v", p, err)
	}
	must(t, c.ConfigureVM(ctx, "r1", "vm1", agentapi.VMParams{"disk": []string{"file:" + filepath.Join(fsLoc, "VirtualDisks", "d1.img") + ",xvda,w"}}))
	must(t, c.StartVM(ctx, "r1", "vm1"))
	wantCallFault(t, c.DeleteVirtualDisk(ctx, "r1", "d1"), agentapi.FaultInvalidState, "is used by VM vm1")
	wantCallFault(t, c.DeleteRepository(ctx, "r1", false), agentapi.FaultInvalidState, "stop it first")
	must(t, c.DeleteVirtualDisk(ctx, "r1", "d2"))
	must(t, c.StopVM(ctx, "r1", "vm1", true))
	must(t, c.DeleteVirtualDisk(ctx, "r1", "d1"))
	wantCallFault(t, c.DeleteRepository(ctx, "r1", true), agentapi.FaultInvalidState, "still holds 1 entries in VirtualMachines")
	must(t, c.DeleteVM(ctx, "r1", "vm1"))
	must(t, c.DeleteRepository(ctx, "r1", true))
	if repos, _ := c.DiscoverRepositories(ctx); len(repos) != 0 {
		t.Errorf("repositories after delete: %+v", repos)
	}
	if _, err := os.Stat(filepath.Join(fsLoc, ".ovsrepo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".ovsrepo after erase: %v", err)
	}
}

func TestDiscoverNetwork(t *testing.T) {
	a := startAgent(t, Config{})
	nets, err := a.typed(t).DiscoverNetwork(t.Context())
	must(t, err)
	if len(nets) != 1 || nets[0].Name != "xenbr0" || nets[0].Device != "eth0" || nets[0].Address != "127.0.0.1" || nets[0].MTU != 1500 || len(nets[0].MAC) != 17 {
		t.Errorf("discover_network = %+v", nets)
	}
}

func TestConsoleOverTCP(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.typed(t)
	ctx := t.Context()
	withRepoVM(t, c, 256)
	_, err := c.OpenConsole(ctx, "r1", "vm1")
	wantCallFault(t, err, agentapi.FaultNotFound, "its console exists only while it runs")
	must(t, c.StartVM(ctx, "r1", "vm1"))
	con, err := c.OpenConsole(ctx, "r1", "vm1")
	must(t, err)
	if host, _, _ := net.SplitHostPort(con.Address); host != "127.0.0.1" || len(con.Token) != 32 {
		t.Fatalf("open_console = %+v", con)
	}
	conn, err := net.DialTimeout("tcp", con.Address, 10*time.Second)
	must(t, err)
	defer conn.Close()
	must(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "%s\n", con.Token)
	readTo := func(suffix string) string {
		t.Helper()
		var b strings.Builder
		for !strings.HasSuffix(b.String(), suffix) {
			ch, err := r.ReadByte()
			if err != nil {
				t.Fatalf("console %q ended: %v", b.String(), err)
			}
			b.WriteByte(ch)
		}
		return b.String()
	}
	if out := readTo("vm1 login: "); !strings.Contains(out, "Linux version") {
		t.Errorf("boot log = %q", out)
	}
	fmt.Fprint(conn, "admin\n")
	if got := readTo("login: "); got != "admin\r\nvm1 login: " {
		t.Errorf("echo = %q", got)
	}
	// A second connection with the used token is turned away.
	conn2, err := net.DialTimeout("tcp", con.Address, 10*time.Second)
	must(t, err)
	defer conn2.Close()
	fmt.Fprintf(conn2, "%s\n", con.Token)
	line, _ := bufio.NewReader(conn2).ReadString('\n')
	if !strings.Contains(line, "invalid, used or expired token") {
		t.Errorf("reused token: %q", line)
	}
	// Stopping the domain ends the session.
	must(t, c.StopVM(ctx, "r1", "vm1", true))
	if _, err := r.ReadByte(); err == nil {
		t.Error("console still open after the domain stopped")
	}
}

// TestSysReboot checks that a rebooting host answers nothing, then comes
// back with no domains, the same certificate and its state.
func TestSysReboot(t *testing.T) {
	a := startAgent(t, Config{RebootDelay: 200 * time.Millisecond})
	hold := make(chan struct{})
	a.mu.Lock()
	a.rebootHold = hold // keeps the host down until the checks below are done
	a.mu.Unlock()
	c := a.typed(t)
	ctx := t.Context()
	withRepoVM(t, c, 256)
	must(t, c.StartVM(ctx, "r1", "vm1"))
	must(t, c.SysReboot(ctx))

	if _, err := c.Echo(ctx, "anyone?"); !errors.Is(err, agentclient.ErrUnreachable) {
		t.Errorf("echo during the reboot: %v, want unreachable", err)
	}
	if _, err := a.typed(t).ListVMs(ctx); !errors.Is(err, agentclient.ErrUnreachable) {
		t.Errorf("list_vms on a new connection during the reboot: %v, want unreachable", err)
	}
	close(hold)
	waitBack(t, c)
	doms, err := c.ListVMs(ctx)
	must(t, err)
	if len(doms) != 0 {
		t.Errorf("domains after the reboot: %+v", doms)
	}
	if repos, _ := c.DiscoverRepositories(ctx); len(repos) != 1 {
		t.Errorf("repositories after the reboot: %+v", repos)
	}
	must(t, c.StartVM(ctx, "r1", "vm1"))

	// Without a hold, the host comes back by itself after the delay.
	a.mu.Lock()
	a.rebootHold = nil
	a.mu.Unlock()
	must(t, c.SysReboot(ctx))
	waitBack(t, c)
	if doms, _ := c.ListVMs(ctx); len(doms) != 0 {
		t.Errorf("domains after the second reboot: %+v", doms)
	}
}

// waitBack polls until the agent answers again.
func waitBack(t *testing.T, c *agentclient.Client) {
	t.Helper()
	waitFor(t, "the host to come back", func() bool {
		cctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := c.Echo(cctx, "back?")
		return err == nil
	})
}

// TestSysShutdown checks that a powered-off host answers nothing until its
// agent is started again on the same data directory.
func TestSysShutdown(t *testing.T) {
	dir := t.TempDir()
	a := startAgent(t, Config{DataDir: dir})
	c := a.typed(t)
	ctx := t.Context()
	withRepoVM(t, c, 256)
	must(t, c.StartVM(ctx, "r1", "vm1"))
	must(t, c.SysShutdown(ctx))
	if !a.PoweredOff() {
		t.Error("PoweredOff is false after sys_shutdown")
	}
	if _, err := c.Echo(ctx, "anyone?"); !errors.Is(err, agentclient.ErrUnreachable) {
		t.Errorf("echo after power off: %v, want unreachable", err)
	}

	b := startAgent(t, Config{DataDir: dir})
	if b.SPKISHA256() != a.SPKISHA256() {
		t.Errorf("certificate changed across the power cycle")
	}
	c2 := b.typed(t)
	if doms, err := c2.ListVMs(ctx); err != nil || len(doms) != 0 {
		t.Errorf("domains after power on: %+v, %v", doms, err)
	}
	if repos, err := c2.DiscoverRepositories(ctx); err != nil || len(repos) != 1 {
		t.Errorf("repositories after power on: %+v, %v", repos, err)
	}
}
