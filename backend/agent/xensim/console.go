package xensim

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
)

// Console tickets and sessions.
const (
	// ConsoleTokenTTL is how long a token of open_console stays usable.
	ConsoleTokenTTL = 60 * time.Second
	// consoleTokenWait is how long a console connection may take to send
	// its token (wall time, whatever the host's clock).
	consoleTokenWait = 10 * time.Second
	// maxConsoleLine bounds a token line and a typed line.
	maxConsoleLine = 4096
)

// consoleTickets holds the tokens open_console issued and no connection has
// used yet.
type consoleTickets struct {
	mu sync.Mutex               // guards m
	m  map[string]consoleTicket // by token
}

// consoleTicket is what a token grants: the console of one domain.
type consoleTicket struct {
	repoID, vmID string
	domID        int64
	expires      time.Time
}

// take removes and returns the ticket of token when it has not expired.
func (c *consoleTickets) take(token string, now time.Time) (consoleTicket, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[token]
	delete(c.m, token)
	return t, ok && now.Before(t.expires)
}

// add records a ticket, forgetting expired ones.
func (c *consoleTickets) add(token string, t consoleTicket, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]consoleTicket{}
	}
	for k, old := range c.m {
		if !now.Before(old.expires) {
			delete(c.m, k)
		}
	}
	c.m[token] = t
}

func (c *consoleTickets) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

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
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	token := hex.EncodeToString(raw[:])
	now := h.now()
	h.consoles.add(token, consoleTicket{repoID: repoID, vmID: vmID, domID: domID, expires: now.Add(ConsoleTokenTTL)}, now)
	return token, nil
}

// ServeConsole runs one console connection and closes it: the client sends
// a token of OpenConsole and a newline, then is attached to the simulated
// guest's serial console, which prints a short boot log and a login prompt
// and echoes each line typed, until the client hangs up or the domain ends.
// A bad, used or expired token gets one line saying so.
func (h *Sim) ServeConsole(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(consoleTokenWait))
	br := bufio.NewReaderSize(conn, maxConsoleLine)
	line, err := br.ReadSlice('\n')
	if err != nil {
		fmt.Fprint(conn, "console: send the token of open_console and a newline first\r\n")
		return
	}
	t, ok := h.consoles.take(strings.TrimSpace(string(line)), h.now())
	if !ok {
		fmt.Fprint(conn, "console: invalid, used or expired token; call open_console again\r\n")
		return
	}
	h.mu.Lock()
	d, ok := h.domains[domainKey(t.repoID, t.vmID)]
	if !ok || d.domID != t.domID || !d.holdsMemory() {
		h.mu.Unlock()
		fmt.Fprintf(conn, "console: VM %s no longer runs (domain %d ended)\r\n", t.vmID, t.domID)
		return
	}
	gone, name := d.gone, d.name
	h.mu.Unlock()
	_ = conn.SetReadDeadline(time.Time{})

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
