package libvirt

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"xenmanager/backend/agent"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// startAgent runs a whole agent (HTTPS XML-RPC) on the test driver and
// returns a client of it; hostPower is Config.HostPower.
func startAgent(t *testing.T, hostPower func(bool) error) *agentclient.Client {
	t.Helper()
	requireLibvirtd(t)
	dir := t.TempDir()
	node := filepath.Join(dir, "node.xml")
	mustOK(t, os.WriteFile(node, []byte(testNode), 0o644))
	a, addr, err := agent.Start(agent.Config{DataDir: filepath.Join(dir, "data"), Password: "pw", Hostname: "lv-agent",
		Driver: NewDriver(Config{URI: "test://" + node}), HostPower: hostPower,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, "127.0.0.1:0")
	mustOK(t, err)
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: addr.(*net.TCPAddr).Port, Password: "pw"})
	mustOK(t, err)
	return c
}

// On a host whose driver runs real guests, sys_reboot and sys_shutdown
// reboot or power off the machine: refused, saying how to allow it, unless
// the agent was started to allow it; then the machine goes down once the
// answer is sent.
func TestHostPowerOnARealHost(t *testing.T) {
	ctx := t.Context()
	c := startAgent(t, nil)
	wantFault(t, c.SysReboot(ctx), agentapi.FaultInvalidState, "--allow-host-power")
	wantFault(t, c.SysShutdown(ctx), agentapi.FaultInvalidState, "--allow-host-power")
	if _, err := c.ListVMs(ctx); err != nil {
		t.Fatalf("the agent went down on a refused power call: %v", err)
	}

	asked := make(chan bool, 2)
	c = startAgent(t, func(reboot bool) error { asked <- reboot; return nil })
	mustOK(t, c.SysReboot(ctx))
	if reboot := <-asked; !reboot {
		t.Error("sys_reboot powered off instead of rebooting")
	}
	mustOK(t, c.SysShutdown(ctx))
	if reboot := <-asked; reboot {
		t.Error("sys_shutdown rebooted instead of powering off")
	}
}

// discover_server says the hypervisor behind the agent.
func TestDiscoverServerSaysTheHypervisor(t *testing.T) {
	c := startAgent(t, nil)
	info, err := c.DiscoverServer(t.Context())
	mustOK(t, err)
	if info.HypervisorType != "test" || info.HypervisorVersion == "" {
		t.Errorf("discover_server: type %q version %q", info.HypervisorType, info.HypervisorVersion)
	}
}
