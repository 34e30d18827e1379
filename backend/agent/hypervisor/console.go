package hypervisor

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Console tickets and sessions, the same for every driver.
const (
	// ConsoleTokenTTL is how long a token of open_console stays usable.
	ConsoleTokenTTL = 60 * time.Second
	// ConsoleTokenWait is how long a console connection may take to send
	// its token (wall time, whatever the host's clock).
	ConsoleTokenWait = 10 * time.Second
	// MaxConsoleLine bounds a token line and a typed line.
	MaxConsoleLine = 4096
)

// ConsoleTickets holds the tokens open_console issued and no connection
// has used yet. The zero value is ready to use.
type ConsoleTickets struct {
	mu sync.Mutex               // guards m
	m  map[string]ConsoleTicket // by token
}

// ConsoleTicket is what a token grants: the console of one domain.
type ConsoleTicket struct {
	RepoID, VMID string
	DomID        int64
	expires      time.Time
}

// Issue records a ticket valid for ConsoleTokenTTL from now and returns
// its single-use token, forgetting expired tickets.
func (c *ConsoleTickets) Issue(t ConsoleTicket, now time.Time) string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	token := hex.EncodeToString(raw[:])
	t.expires = now.Add(ConsoleTokenTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]ConsoleTicket{}
	}
	for k, old := range c.m {
		if !now.Before(old.expires) {
			delete(c.m, k)
		}
	}
	c.m[token] = t
	return token
}

// Take removes and returns the ticket of token when it has not expired.
func (c *ConsoleTickets) Take(token string, now time.Time) (ConsoleTicket, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[token]
	delete(c.m, token)
	return t, ok && now.Before(t.expires)
}

// Clear forgets every ticket (the host went down).
func (c *ConsoleTickets) Clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// AcceptConsole reads the token line a console connection must send first
// (within ConsoleTokenWait) and takes its ticket. On a missing, bad, used
// or expired token it tells the client in one line and returns false; the
// caller then closes conn. The reader it returns holds what the client
// typed after the token.
func (c *ConsoleTickets) AcceptConsole(conn net.Conn, now func() time.Time) (ConsoleTicket, *bufio.Reader, bool) {
	_ = conn.SetReadDeadline(time.Now().Add(ConsoleTokenWait))
	br := bufio.NewReaderSize(conn, MaxConsoleLine)
	line, err := br.ReadSlice('\n')
	if err != nil {
		fmt.Fprint(conn, "console: send the token of open_console and a newline first\r\n")
		return ConsoleTicket{}, nil, false
	}
	t, ok := c.Take(strings.TrimSpace(string(line)), now())
	if !ok {
		fmt.Fprint(conn, "console: invalid, used or expired token; call open_console again\r\n")
		return ConsoleTicket{}, nil, false
	}
	_ = conn.SetReadDeadline(time.Time{})
	return t, br, true
}
