package libvirt

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// consoleReplay bounds how much of the console's log a new console
// session is shown before what the guest prints from then on.
const consoleReplay = 8 << 10

// OpenConsole issues a single-use token for the serial console of the
// VM's domain; NotFound unless the domain is running, blocked or paused.
func (d *Driver) OpenConsole(repoID, vmID string) (string, error) {
	dom, ok, err := d.Domain(repoID, vmID)
	if err != nil {
		return "", err
	}
	if !ok || !hypervisor.HoldsMemory(dom.State) {
		return "", agentapi.Errorf(agentapi.FaultNotFound,
			"VM %s of repository %s does not run on this server; its console exists only while it runs", vmID, repoID)
	}
	return d.consoles.Issue(hypervisor.ConsoleTicket{RepoID: repoID, VMID: vmID, DomID: dom.DomID}, d.env.Now()), nil
}

// ServeConsole runs one console connection and closes it: the client
// sends a token of OpenConsole and a newline, is shown the end of the
// console's log (what the guest printed before), then is attached to the
// domain's serial console through libvirt's console stream, both ways,
// until the client hangs up or the domain ends. Each session has its own
// connection to libvirt, so that its end ends the stream.
func (d *Driver) ServeConsole(conn net.Conn) {
	defer conn.Close()
	t, br, ok := d.consoles.AcceptConsole(conn, d.env.Now)
	if !ok {
		return
	}
	dom, ok, err := d.Domain(t.RepoID, t.VMID)
	if err != nil {
		d.log.Warn("console: cannot read the domain", "vm", t.VMID, "err", err)
		fmt.Fprint(conn, "console: the hypervisor is not reachable; try again\r\n")
		return
	}
	if !ok || dom.DomID != t.DomID || !hypervisor.HoldsMemory(dom.State) {
		fmt.Fprintf(conn, "console: VM %s no longer runs (domain %d ended)\r\n", t.VMID, t.DomID)
		return
	}
	l, err := d.conn.dial()
	if err != nil {
		d.log.Warn("console: cannot reach libvirt", "vm", t.VMID, "err", err)
		fmt.Fprint(conn, "console: the hypervisor is not reachable; try again\r\n")
		return
	}
	defer l.Disconnect()
	ldom, err := l.DomainLookupByName(domainName(t.VMID))
	if err != nil || int64(ldom.ID) != t.DomID {
		fmt.Fprintf(conn, "console: VM %s no longer runs (domain %d ended)\r\n", t.VMID, t.DomID)
		return
	}
	d.replayConsoleLog(conn, ldom, l)
	typed := &hangupReader{r: br, hangup: func() { _ = l.Disconnect() }}
	err = l.DomainOpenConsoleBidirectional(ldom, golibvirt.OptString{}, typed, conn, uint32(golibvirt.DomainConsoleForce))
	if err != nil && !typed.done {
		d.log.Debug("console stream ended", "vm", t.VMID, "err", err)
	}
	fmt.Fprint(conn, "\r\nconsole: the domain's console closed\r\n")
}

// replayConsoleLog writes the last consoleReplay bytes of the domain's
// console log, from a line's start, when the domain has one.
func (d *Driver) replayConsoleLog(w io.Writer, dom golibvirt.Domain, l *golibvirt.Libvirt) {
	x, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return
	}
	path := consoleLogOf(x)
	if path == "" || filepath.Base(path) != consoleLogFile {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	from := max(fi.Size()-consoleReplay, 0)
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(io.LimitReader(f, consoleReplay))
	if from > 0 {
		_, _ = r.ReadString('\n') // start at a whole line
	}
	_, _ = io.Copy(newlineToCRLF{w}, r)
}

// hangupReader reads what the client types; when the client hangs up it
// ends the console's libvirt connection, which ends the stream.
type hangupReader struct {
	r      io.Reader
	hangup func()
	done   bool
}

func (h *hangupReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err != nil {
		h.done = true
		h.hangup()
	}
	return n, err
}

// newlineToCRLF writes bare newlines of a log as CR LF, as a terminal
// wants them.
type newlineToCRLF struct{ w io.Writer }

func (c newlineToCRLF) Write(p []byte) (int, error) {
	start := 0
	for i, b := range p {
		if b == '\n' && (i == 0 || p[i-1] != '\r') {
			if _, err := c.w.Write(p[start:i]); err != nil {
				return start, err
			}
			if _, err := c.w.Write([]byte("\r\n")); err != nil {
				return i, err
			}
			start = i + 1
		}
	}
	if _, err := c.w.Write(p[start:]); err != nil {
		return start, err
	}
	return len(p), nil
}
