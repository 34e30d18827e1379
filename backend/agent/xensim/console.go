package xensim

import (
	"bufio"
	"fmt"
	"net"
	"strings"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// OpenConsole issues a single-use token, valid for ConsoleTokenTTL, for the
// serial console of the VM's domain; NotFound unless the domain is running,
// blocked or paused. The caller (the agent) tells the client where to
// connect and passes connections to ServeConsole.
func (h *Sim) OpenConsole(repoID, vmID string) (string, error) {
	h.mu.Lock()
	d, ok := h.domains[domainKey(repoID, vmID)]
	if !ok || !d.holdsMemory() {
		h.mu.Unlock()
		return "", agentapi.Errorf(agentapi.FaultNotFound,
			"VM %s of repository %s does not run on this server; its console exists only while it runs", vmID, repoID)
	}
	domID := d.domID
	h.mu.Unlock()
	return h.consoles.Issue(hypervisor.ConsoleTicket{RepoID: repoID, VMID: vmID, DomID: domID}, h.now()), nil
}

// ServeConsole runs one console connection and closes it: the client sends
// a token of OpenConsole and a newline, then is attached to the simulated
// guest's serial console, which prints a short boot log and a login prompt
// and echoes each line typed, until the client hangs up or the domain ends.
// A bad, used or expired token gets one line saying so.
func (h *Sim) ServeConsole(conn net.Conn) {
	defer conn.Close()
	t, br, ok := h.consoles.AcceptConsole(conn, h.now)
	if !ok {
		return
	}
	h.mu.Lock()
	d, ok := h.domains[domainKey(t.RepoID, t.VMID)]
	if !ok || d.domID != t.DomID || !d.holdsMemory() {
		h.mu.Unlock()
		fmt.Fprintf(conn, "console: VM %s no longer runs (domain %d ended)\r\n", t.VMID, t.DomID)
		return
	}
	gone, name := d.gone, d.name
	h.mu.Unlock()

	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-gone:
			conn.Close() // ends the read below
		case <-done:
		}
	}()
	runGuestConsole(conn, br, name)
}

// runGuestConsole is the simulated guest's side of a serial console.
func runGuestConsole(conn net.Conn, br *bufio.Reader, name string) {
	prompt := name + " login: "
	if _, err := fmt.Fprintf(conn, "%s\r\n%s", strings.Join(bootLog(name), "\r\n"), prompt); err != nil {
		return
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
		typed := strings.TrimRight(string(line), "\r\n")
		if _, err := fmt.Fprintf(conn, "%s\r\n%s", typed, prompt); err != nil {
			return
		}
	}
}

// bootLog is what the simulated guest prints when the console attaches.
func bootLog(name string) []string {
	return []string{
		"[    0.000000] Linux version 4.14.35-xensim (builder@xensim) #1 SMP",
		"[    0.000000] Command line: ro root=/dev/xvda1 console=hvc0",
		"[    0.412331] Xen: using vcpuop timer interface",
		"[    1.002113] blkfront: xvda: flush diskcache: enabled",
		"[    2.318002] xen_netfront: Initialising Xen virtual ethernet driver",
		"",
		"Oracle Linux Server 7.9 (simulated)",
		"Kernel 4.14.35-xensim on an x86_64",
		"",
		name + " ready",
		"",
	}
}
