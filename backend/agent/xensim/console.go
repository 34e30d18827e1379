package xensim

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"

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
// guest's serial console, which prints a short boot log (its banner names
// the OS type the VM booted with) and a login prompt, and echoes each line
// typed, until the client hangs up or the domain ends. A bad, used or
// expired token gets one line saying so.
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
	gone, name, osType := d.gone, d.name, d.osType
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
	runGuestConsole(conn, &typedLines{br: br}, name, osType)
}

// runGuestConsole is the simulated guest's side of a serial console.
func runGuestConsole(conn net.Conn, lines *typedLines, name, osType string) {
	prompt := name + " login: "
	if _, err := fmt.Fprintf(conn, "%s\r\n%s", strings.Join(bootLog(name, osType), "\r\n"), prompt); err != nil {
		return
	}
	for {
		typed, err := lines.next()
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(conn, "%s\r\n%s", typed, prompt); err != nil {
			return
		}
	}
}

// maxTypedLine bounds a line typed on the console; a longer one is cut
// there, as the agent's console protocol says (docs/agent-protocol.md).
const maxTypedLine = 4096

// typedLines reads what is typed on the simulated serial console as lines,
// the way a Linux tty in canonical mode with ICRNL (the kernel's default
// for a serial port, which getty keeps) reads them: a terminal's Enter
// sends CR, which ends a line, and so does LF (Ctrl-J). A client that
// sends CR LF for Enter gets one line end, not a line and an empty one.
type typedLines struct {
	br      *bufio.Reader
	afterCR bool // the last line ended at a CR: an LF right after it ends nothing
}

// next returns the next line typed, without its end.
func (t *typedLines) next() (string, error) {
	var line []byte
	for {
		c, err := t.br.ReadByte()
		if err != nil {
			return "", err
		}
		afterCR := t.afterCR
		t.afterCR = false
		switch {
		case c == '\n' && afterCR && len(line) == 0:
			continue // the LF of a CR LF
		case c == '\r':
			t.afterCR = true
			return string(line), nil
		case c == '\n':
			return string(line), nil
		}
		line = append(line, c)
		if len(line) == maxTypedLine {
			return string(line), nil
		}
	}
}

// bootLog is what the simulated guest prints when the console attaches.
// Its banner names osType, the OS type the VM booted with (vm.cfg's
// OVM_os_type, which show Vm shows as its Operating System), or says it is
// a simulated guest when the VM has none: it must not name another OS
// than the one the manager shows.
func bootLog(name, osType string) []string {
	banner := "Simulated guest"
	if osType != "" {
		banner = osType + " (simulated)"
	}
	return []string{
		"[    0.000000] Linux version 4.14.35-xensim (builder@xensim) #1 SMP",
		"[    0.000000] Command line: ro root=/dev/xvda1 console=hvc0",
		"[    0.412331] Xen: using vcpuop timer interface",
		"[    1.002113] blkfront: xvda: flush diskcache: enabled",
		"[    2.318002] xen_netfront: Initialising Xen virtual ethernet driver",
		"",
		banner,
		"Kernel 4.14.35-xensim on an x86_64",
		"",
		name + " ready",
		"",
	}
}

// maxBannerText bounds the OS type a banner shows (and a save file's
// header and a migration's final message carry).
const maxBannerText = 128

// bannerText is s as the console's banner may show it: printable
// characters only, at most maxBannerText bytes, blanks trimmed. vm.cfg is
// a file anyone with access to the repository may edit, and the console
// goes to an operator's terminal raw.
func bannerText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxBannerText {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
